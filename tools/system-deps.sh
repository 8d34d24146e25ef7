#!/usr/bin/env bash
# Install the Debian packages camlytics' demo and tests use, when they are missing (called by `make`).
# Prints what it installs; installs nothing when everything is present. Uses sudo when not root.
set -euo pipefail
declare -A NEED=(
    [mosquitto]="mosquitto"
    [chromium]="chromium"
    [valgrind]="valgrind"
    [openssl]="openssl"
    [gcc]="gcc libc6-dev"
    [musl-gcc]="musl-tools"
    [arm-linux-gnueabihf-gcc]="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
    [aarch64-linux-gnu-gcc]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    [qemu-arm]="qemu-user"
    [qemu-aarch64]="qemu-user"
)
missing=()
for cmd in "${!NEED[@]}"; do
    # mosquitto lives in /usr/sbin, which is not on every user's PATH
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=(${NEED[$cmd]})
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if ! command -v apt-get >/dev/null 2>&1; then
    echo "camlytics: missing system packages (Debian names): $packages- install them with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "camlytics: need root or sudo to install: $packages" >&2; exit 1; }
    SUDO="sudo"
fi
echo "camlytics: installing the system packages the demo and tests need: $packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $packages >/dev/null
