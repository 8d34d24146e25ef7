"""Firmware fixtures: the cached binaries (built on first use, under a file lock shared by the test
workers) and the argv prefix that runs each one here (qemu-user for ARM)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from camlytics.firmware.build import SOURCE_ENV, ensure_firmware, firmware_argv as _argv

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO.parent / "shared" / "vendor" / "micropython-1.28.0-with-mbedtls-3.6.2.tar.xz"


def micropython_source() -> str:
    """The MicroPython source the tests build from: $CAMLYTICS_MICROPYTHON_SRC, else the vendored archive."""
    if os.environ.get(SOURCE_ENV):
        return os.environ[SOURCE_ENV]
    if VENDORED.is_file():
        return str(VENDORED)
    pytest.fail(f"no MicroPython source: set ${SOURCE_ENV} or provide {VENDORED} (see docs/firmware.md)")


@pytest.fixture(scope="session")
def firmware_binary():
    """`firmware_binary(arch) -> Path`: the cached firmware for x86_64, armv7hf or aarch64."""
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = ensure_firmware(arch, micropython_source())
        return built[arch]

    return get


@pytest.fixture(scope="session")
def firmware_argv(firmware_binary):
    """`firmware_argv(arch) -> list[str]`: the command prefix that runs that firmware on this machine."""
    return lambda arch: _argv(arch, firmware_binary(arch))
