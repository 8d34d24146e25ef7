"""Build the camera firmware: MicroPython's unix port, cross-compiled, with the camlytics C module
and the edge package frozen in as bytecode, cached by what went into it.

    path = ensure_firmware("armv7hf")           # the cached static binary (built on first use)
    argv = firmware_argv("armv7hf", path)       # ["qemu-arm", path] on an x86-64 host

The MicroPython source is pinned: version 1.28.0 and the sha256 of every archive accepted
(`PINNED_ARCHIVES`). It comes from `--source` / `$CAMLYTICS_MICROPYTHON_SRC` (an archive, a URL of an
archive, or an extracted tree of that version). Anything else is refused with one line.

Cache layout (`$CAMLYTICS_CACHE`, else `$XDG_CACHE_HOME/camlytics`, else `~/.cache/camlytics`):
    micropython-src/<sha16>/micropython-1.28.0/   extracted source (one per accepted archive)
    firmware/<arch>-<key16>/micropython           the binary; build.json beside it says what it holds
A build happens in a temporary folder and is renamed into place when complete, under a file lock,
so parallel test workers build each key once and a killed build leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from camlytics import __version__
from camlytics.errors import CamlyticsError

MICROPYTHON_VERSION = "1.28.0"
# sha256 -> what the archive is. Add an archive here only after checking it holds the v1.28.0 tree.
PINNED_ARCHIVES = {
    "d152da37412f861599e97f653d74ea0c4cc9b415d22fcd4eee7b037ee90d579a":
        "micropython-1.28.0-with-mbedtls-3.6.2.tar.xz (git tag v1.28.0 with lib/mbedtls v3.6.2)",
}
SOURCE_ENV = "CAMLYTICS_MICROPYTHON_SRC"
KEEP_BUILDS = 4  # cached builds kept per architecture (and per debug/release)
TOP_DIR = f"micropython-{MICROPYTHON_VERSION}"
CMODULE_VERSION = 1  # must equal CAMLYTICS_CMODULE_VERSION in cmodule/camlytics/camlytics.h
CMODULE_DIR = Path(__file__).resolve().parent / "cmodule"
EDGE_DIR = Path(__file__).resolve().parent.parent / "edge"


@dataclass(frozen=True)
class Arch:
    """A target: its cross-compiler prefix, Debian packages, qemu-user program and ELF identity."""

    name: str
    cross: str  # CROSS_COMPILE prefix ("" = the host compiler)
    packages: str  # Debian packages that provide the cross compiler and its C library
    qemu: str | None  # qemu-user program on a host of another architecture
    elf_machine: int  # e_machine
    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    host_machine: str  # platform.machine() of a host that runs it natively
    kernel_cflags: str = ""  # extra flags for the C module's kernels only
    static_cc: str = ""  # the C compiler of static (release) builds, when not CROSS_COMPILE's gcc
    static_packages: str = ""  # the Debian packages that provide it


ARCHES = {
    # x86_64 release builds link musl statically: glibc's static libc (NSS, locales) and libm variants
    # made 1.84 MB of the 1.5 MB budget, musl gives about 0.6 MB. The --debug build stays glibc, dynamic.
    "x86_64": Arch("x86_64", "", "gcc libc6-dev", "qemu-x86_64", 62, 2, "x86_64", static_cc="musl-gcc",
                   static_packages="musl-tools"),
    # Debian's armhf gcc leaves NEON off; the ARMv7 SoCs of Axis cameras (Cortex-A9/A7) have it, and the
    # kernels' int16 multiply-accumulate loops vectorise with it (about 1.3x faster under qemu-arm).
    "armv7hf": Arch("armv7hf", "arm-linux-gnueabihf-", "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross",
                    "qemu-arm", 40, 1, "armv7l", kernel_cflags="-mfpu=neon"),
    "aarch64": Arch("aarch64", "aarch64-linux-gnu-", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
                    "qemu-aarch64", 183, 2, "aarch64"),
}
# The unix port without what the camera app does not use, so that the static stripped binary stays
# <= 1.5 MB on the camera architectures (bench/firmware.py prints the sizes). Each one is safe because
# nothing in camlytics.edge (nor its tests) uses it; socket, select, json, struct, array, binascii
# (crc32 needs `deflate`, kept), hashlib.md5, ssl/tls (Mbed TLS), errno, os, gc, time, math, re and the
# posix VFS stay (tests/firmware/test_build.py imports the app's modules in every build):
# - FFI needs libffi; btree a submodule;
# - VFS_FAT / LFS1 / LFS2: FAT and littlefs filesystem drivers for flash block devices (the camera's
#   files go through the posix VFS);
# - TERMIOS: serial-port settings; THREAD: `_thread` (the app is single-threaded);
# - COPT: the port's own -Os -DNDEBUG -fdata-sections -ffunction-sections, plus
#   -fno-asynchronous-unwind-tables -fno-unwind-tables: no .eh_frame for MicroPython, Mbed TLS and the
#   C module (C code without exceptions, and no threads to cancel; a -g debug build keeps .debug_frame
#   for valgrind and gdb), and -D switches for modules the app never imports: framebuf (pixel drawing),
#   uctypes, asyncio, cryptolib (raw AES; TLS uses Mbed TLS directly) and DTLS (TLS over UDP; MQTT
#   runs over TCP). The C module's own -O2 (micropython.mk) still applies to its files.
MAKE_FLAGS = ("MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0", "MICROPY_VFS_FAT=0", "MICROPY_VFS_LFS1=0",
              "MICROPY_VFS_LFS2=0", "MICROPY_PY_TERMIOS=0", "MICROPY_PY_THREAD=0",
              "COPT=-Os -DNDEBUG -fdata-sections -ffunction-sections -fno-asynchronous-unwind-tables "
              "-fno-unwind-tables -DMICROPY_PY_FRAMEBUF=0 -DMICROPY_PY_UCTYPES=0 -DMICROPY_PY_ASYNCIO=0 "
              "-DMICROPY_PY_CRYPTOLIB=0 -DMICROPY_PY_SSL_DTLS=0")
EF_ARM_ABI_FLOAT_HARD = 0x400
# Decorators that need MicroPython's native emitter, which aarch64 lacks: the frozen copy runs the
# same functions as plain bytecode (the C module is the fast path in the firmware).
NATIVE_CODE_RE = re.compile(rb"^\s*@micropython\.(viper|native|asm_thumb)\b[^\n]*\n", re.M)
# Edge modules not frozen: CPython-only accelerators, and the viper kernels whose frozen, undecorated
# copy would be slower than the plain ones while claiming the "viper" name.
NOT_FROZEN = ("ops_numpy.py", "ops_viper.py")


class FirmwareError(CamlyticsError):
    """The firmware cannot be built or run: bad source, missing tool, compiler error."""


def check_arch(name: str) -> Arch:
    """The `Arch` called `name`; FirmwareError naming the choices otherwise."""
    if name not in ARCHES:
        raise FirmwareError(f"unknown architecture {name!r} (choose from {', '.join(ARCHES)})")
    return ARCHES[name]


def cache_root() -> Path:
    """Where sources and built firmware are kept."""
    if os.environ.get("CAMLYTICS_CACHE"):
        return Path(os.environ["CAMLYTICS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "camlytics"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out)
    except (OSError, ValueError) as exc:
        raise FirmwareError(f"cannot download the MicroPython source from {url}: {exc}") from None


def _tree_version(tree: Path) -> str | None:
    """The `major.minor.micro` a MicroPython tree declares in py/mpconfig.h, or None."""
    try:
        text = (tree / "py" / "mpconfig.h").read_text(errors="replace")
    except OSError:
        return None
    parts = [re.search(rf"#define MICROPY_VERSION_{p} \(?(\d+)\)?", text) for p in ("MAJOR", "MINOR", "MICRO")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def _tree_digest(tree: Path) -> str:
    """A content digest of the parts of a tree the unix-port build reads (so a tree can be cached)."""
    h = hashlib.sha256()
    for sub in ("py", "extmod", "shared", "ports/unix", "lib/mbedtls/library", "lib/mbedtls/include",
                "lib/mbedtls_errors", "lib/berkeley-db-1.xx", "lib/littlefs", "lib/uzlib", "lib/re1.5",
                "mpy-cross", "tools"):
        base = tree / sub
        if not base.is_dir():
            continue
        for dirpath, dirnames, files in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("build"))
            for f in sorted(files):
                p = Path(dirpath) / f
                h.update(str(p.relative_to(tree)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Source:
    """A verified MicroPython source tree ready to build, and what identifies its content."""

    tree: Path
    digest: str  # archive sha256, or the tree's content digest
    origin: str


def resolve_source(spec: str | None = None, progress: Callable[[str], None] | None = None) -> Source:
    """Verify and extract the pinned MicroPython source named by `spec` / $CAMLYTICS_MICROPYTHON_SRC."""
    say = progress or (lambda _msg: None)
    spec = spec or os.environ.get(SOURCE_ENV)
    if not spec:
        cached = _cached_source()
        if cached is not None:
            return cached
        raise FirmwareError(
            f"no MicroPython source: pass --source ARCHIVE|URL|DIR or set ${SOURCE_ENV} (MicroPython "
            f"{MICROPYTHON_VERSION} with Mbed TLS; see docs/firmware.md)")
    if re.match(r"^https?://", spec):
        fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".tar.xz", dir=_ensure(cache_root()))
        os.close(fd)
        try:
            say(f"downloading {spec}")
            _download(spec, Path(tmp))
            return _from_archive(Path(tmp), spec, say)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    path = Path(spec).expanduser()
    if path.is_dir():
        tree = path / TOP_DIR if (path / TOP_DIR).is_dir() else path
        version = _tree_version(tree)
        if version != MICROPYTHON_VERSION:
            raise FirmwareError(f"{spec}: not a MicroPython {MICROPYTHON_VERSION} source tree "
                                f"({'version ' + version if version else 'no py/mpconfig.h'})")
        if not (tree / "lib" / "mbedtls" / "library").is_dir():
            raise FirmwareError(f"{spec}: lib/mbedtls is missing (the firmware needs Mbed TLS for ssl and md5)")
        say("hashing the source tree")
        return Source(tree, _tree_digest(tree), str(tree))
    if not path.is_file():
        raise FirmwareError(f"{spec}: no such file or directory")
    return _from_archive(path, str(path), say)


def _cached_source() -> Source | None:
    """A pinned archive extracted into the cache by an earlier build (so later builds need no --source)."""
    for sha in PINNED_ARCHIVES:
        tree = cache_root() / "micropython-src" / sha[:16] / TOP_DIR
        if (tree / "py" / "mpconfig.h").is_file():
            return Source(tree, sha, f"{tree} (extracted earlier from the pinned archive)")
    return None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _from_archive(archive: Path, origin: str, say: Callable[[str], None]) -> Source:
    sha = _sha256_file(archive)
    if sha not in PINNED_ARCHIVES:
        raise FirmwareError(f"{origin}: sha256 {sha} is not a pinned MicroPython {MICROPYTHON_VERSION} "
                            f"archive (accepted: {', '.join(PINNED_ARCHIVES)})")
    dest = cache_root() / "micropython-src" / sha[:16]
    with _locked(dest.with_suffix(".lock")):
        if not (dest / TOP_DIR / "py" / "mpconfig.h").is_file():
            say(f"extracting {archive.name}")
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=_ensure(dest.parent)))
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")
                if not (tmp / TOP_DIR).is_dir():
                    raise FirmwareError(f"{origin}: the archive has no top folder {TOP_DIR}/")
                shutil.rmtree(dest, ignore_errors=True)
                os.replace(tmp, dest)
            except (tarfile.TarError, OSError) as exc:
                raise FirmwareError(f"{origin}: cannot extract ({exc})") from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return Source(dest / TOP_DIR, sha, origin)


def frozen_files() -> dict[str, bytes]:
    """The edge package as frozen into the firmware: `camlytics/...py` -> source, native code unwrapped."""
    files = {"camlytics/__init__.py": b'"""camlytics on the camera: only the edge package is frozen in."""\n'}
    for path in sorted(EDGE_DIR.glob("*.py")):
        if path.name in NOT_FROZEN:
            continue
        files[f"camlytics/edge/{path.name}"] = NATIVE_CODE_RE.sub(b"", path.read_bytes())
    return files


def cmodule_files() -> dict[str, bytes]:
    """The C module's sources, by path relative to the cmodule folder."""
    return {str(p.relative_to(CMODULE_DIR)): p.read_bytes()
            for p in sorted(CMODULE_DIR.rglob("*")) if p.is_file() and p.suffix in (".c", ".h", ".mk")}


def build_key(arch: Arch, source: Source, debug: bool = False) -> str:
    """sha256 of everything that decides the binary: source, C module, frozen package, flags."""
    h = hashlib.sha256()
    h.update(f"{arch}\0{source.digest}\0{' '.join(MAKE_FLAGS)}\0debug={debug}\0{__version__}\0".encode())
    for group in (cmodule_files(), frozen_files()):
        for name, data in group.items():
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=EDGE_DIR, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def elf_arch(path: Path) -> str | None:
    """The `ARCHES` name an ELF executable is built for (armv7hf: 32-bit ARM, hard-float), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(52)
    except OSError:
        return None
    if len(head) < 52 or head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    machine = int.from_bytes(head[18:20], order)
    flags = int.from_bytes(head[36:40], order) if head[4] == 1 else None
    for arch in ARCHES.values():
        if arch.elf_machine == machine and arch.elf_class == head[4]:
            if arch.name == "armv7hf" and not (flags or 0) & EF_ARM_ABI_FLOAT_HARD:
                return None  # soft-float ARM: not what the cameras run
            return arch.name
    return None


def _check_tools(arch: Arch, debug: bool = False) -> None:
    for gcc, packages in ((f"{arch.cross}gcc", arch.packages),
                          (arch.static_cc, arch.static_packages) if not debug else ("", "")):
        if gcc and not shutil.which(gcc):
            raise FirmwareError(f"{gcc} not found: install the Debian package(s) {packages} "
                                f"(sudo apt-get install -y {packages})")
    if not shutil.which("make"):
        raise FirmwareError("make not found: install the Debian package make")


class BuildStopped(FirmwareError):
    """SIGTERM or SIGHUP arrived during a build: it was stopped and nothing was kept."""


@contextlib.contextmanager
def _stop_on_termination() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into BuildStopped while a build runs (main thread only), so the compilers are
    stopped and the half-finished build folder removed instead of being left behind."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise BuildStopped(f"stopped by signal {signum}; nothing was kept")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_make(args: list[str], log: Path, say: Callable[[str], None]) -> None:
    """Run make, appending to `log`; FirmwareError with the first compiler error on failure."""
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(args) + "\n").encode())
        out.flush()
        # its own process group, so that stopping it stops the compilers it started too
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        try:
            with _stop_on_termination():
                for line in proc.stdout:
                    out.write(line)
                    text = line.decode(errors="replace").strip()
                    if text.startswith(("CC ", "LINK ", "MPY ", "GEN ")):
                        say(text)
                rc = proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if rc != 0:
        text = log.read_text(errors="replace")
        errors = [ln.strip() for ln in text.splitlines() if "error:" in ln or "Error " in ln]
        first = errors[0] if errors else text.strip().splitlines()[-1] if text.strip() else f"exit {rc}"
        raise FirmwareError(f"firmware build failed: {first} (full log: {log})")


def _write_manifest(stage: Path) -> Path:
    """Frozen manifest + staged package for the unix port's FROZEN_MANIFEST."""
    for name, data in frozen_files().items():
        dest = stage / "frozen" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    # makemanifest.py insists on a micropython-lib folder (it holds a README.md); the package needs none.
    (stage / "mpy-lib").mkdir(exist_ok=True)
    (stage / "mpy-lib" / "README.md").write_text("empty: camlytics freezes no micropython-lib package\n")
    manifest = stage / "manifest.py"
    manifest.write_text(f'package("camlytics", base_path={str(stage / "frozen")!r})\n')
    return manifest


@dataclass(frozen=True)
class Firmware:
    """A built firmware binary and what it holds (build.json)."""

    path: Path
    info: dict
    built: bool = False  # True when this call compiled it, False when it came from the cache


def ensure_firmware(arch_name: str, source: str | None = None, jobs: int | None = None, debug: bool = False,
                    progress: Callable[[str], None] | None = None) -> Path:
    """The cached firmware binary for `arch_name`, built first if no build of the same inputs exists."""
    return build_firmware(arch_name, source, jobs, debug, progress).path


def _cached(out_dir: Path) -> Firmware | None:
    try:
        info = json.loads((out_dir / "build.json").read_text())
    except (OSError, ValueError):
        return None
    binary = out_dir / "micropython"
    return Firmware(binary, info) if binary.is_file() else None


def build_firmware(arch_name: str, source: str | None = None, jobs: int | None = None, debug: bool = False,
                   progress: Callable[[str], None] | None = None) -> Firmware:
    """Build (or take from the cache) the firmware for `arch_name`; returns its path and build.json."""
    arch = check_arch(arch_name)
    say = progress or (lambda _msg: None)
    src = resolve_source(source, say)
    key = build_key(arch, src, debug)
    name = f"{arch.name}{'-debug' if debug else ''}-{key[:16]}"
    out_dir = cache_root() / "firmware" / name
    found = _cached(out_dir)
    if found:
        return found
    _check_tools(arch, debug)
    # one build at a time per source tree (mpy-cross is built inside it), and per arch
    with _locked(cache_root() / "firmware" / f"source-{src.digest[:16]}.lock"):
        found = _cached(out_dir)  # another process built it while we waited
        if found:
            return found
        for stale in out_dir.parent.glob(".build-*"):  # left by a build that was killed (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        return _build(arch, src, key, out_dir, jobs or os.cpu_count() or 2, debug, say)


def _build(arch: Arch, src: Source, key: str, out_dir: Path, jobs: int, debug: bool,
           say: Callable[[str], None]) -> Firmware:
    started = time.monotonic()
    stage = Path(tempfile.mkdtemp(prefix=f".build-{arch.name}-", dir=_ensure(out_dir.parent)))
    log = stage / "build.log"
    try:
        commit = _git_commit()
        build_id = f"{__version__}+{key[:12]}"
        manifest = _write_manifest(stage)
        if not (src.tree / "mpy-cross" / "build" / "mpy-cross").is_file():
            say("building mpy-cross (host)")
            # mpy-cross runs on the build host: never give it the cross compiler or our flags.
            _run_make(["make", "-C", str(src.tree / "mpy-cross"), f"-j{jobs}"], log, say)
        build_dir = stage / "build"
        machine = f"linux-{arch.name} camlytics {build_id} commit {commit} cmodule v{CMODULE_VERSION}"
        cflags = [f"-DCAMLYTICS_BUILD_ID='\"{build_id}\"'", f"-DMICROPY_BANNER_MACHINE='\"{machine}\"'"]
        if debug:
            cflags.append("-g")
        args = ["make", "-C", str(src.tree / "ports" / "unix"), f"-j{jobs}", *MAKE_FLAGS,
                f"BUILD={build_dir}", f"USER_C_MODULES={CMODULE_DIR}", f"FROZEN_MANIFEST={manifest}",
                f"MPY_LIB_DIR={stage / 'mpy-lib'}", f"CFLAGS_EXTRA={' '.join(cflags)}"]
        if arch.cross:
            args.append(f"CROSS_COMPILE={arch.cross}")
        if arch.static_cc and not debug:
            args.append(f"CC={arch.static_cc}")
        if arch.kernel_cflags:
            args.append(f"CAMLYTICS_KERNEL_CFLAGS={arch.kernel_cflags}")
        if not debug:
            args.append("LDFLAGS_EXTRA=-static")
        else:  # the port strips by default: keep the debug build's symbols and -g info (valgrind names functions)
            args.append("STRIP=")
        say(f"building MicroPython {MICROPYTHON_VERSION} for {arch.name}")
        _run_make(args, log, say)
        binary = build_dir / "micropython"
        if not debug:
            strip = shutil.which(f"{arch.cross}strip")
            if strip:
                subprocess.run([strip, str(binary)], check=True, capture_output=True)
        found = elf_arch(binary)
        if found != arch.name:
            raise FirmwareError(f"the build produced a {found or 'non-ELF'} binary, not {arch.name} (log: {log})")
        info = {
            "arch": arch.name, "key": key, "build_id": build_id, "camlytics_version": __version__,
            "commit": commit, "cmodule_version": CMODULE_VERSION, "micropython": MICROPYTHON_VERSION,
            "source": src.origin, "source_digest": src.digest, "static": not debug, "debug": debug,
            "size": binary.stat().st_size, "seconds": round(time.monotonic() - started, 1),
            "frozen": sorted(frozen_files()),
        }
        final = stage / "final"
        final.mkdir()
        shutil.copy2(binary, final / "micropython")
        shutil.copy2(log, final / "build.log")
        (final / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(final, out_dir)
        _prune(out_dir.parent, arch.name, keep=KEEP_BUILDS)
        return Firmware(out_dir / "micropython", info, built=True)
    except BuildStopped:
        raise
    except FirmwareError as exc:
        # keep the log for the user, outside the half-finished build folder
        kept = out_dir.parent / f"{out_dir.name}.failed.log"
        if log.exists():
            shutil.copy2(log, kept)
        raise FirmwareError(str(exc).replace(str(log), str(kept))) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _prune(folder: Path, arch_name: str, keep: int) -> None:
    """Remove all but the `keep` newest cached builds of one architecture (each edit of the edge package
    or the C module makes a new one)."""
    builds = sorted((p for p in folder.glob(f"{arch_name}-*") if p.is_dir() and len(p.name) == len(arch_name) + 17),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def firmware_argv(arch_name: str, binary: Path) -> list[str]:
    """The command prefix that runs `binary` here: itself, or under qemu-user for a foreign CPU."""
    arch = check_arch(arch_name)
    if platform.machine() == arch.host_machine:
        return [str(binary)]
    qemu = shutil.which(arch.qemu or "")
    if not qemu:
        raise FirmwareError(f"{arch.qemu} not found: install the Debian package qemu-user "
                            f"(sudo apt-get install -y qemu-user) to run {arch.name} firmware here")
    return [qemu, str(binary)]


def install(binary: Path, out_dir: Path) -> Path:
    """Copy a built binary to `out_dir/micropython-<arch>` atomically; returns the new path."""
    arch = elf_arch(binary) or "unknown"
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"micropython-{arch}"
    fd, tmp = tempfile.mkstemp(prefix=".micropython-", dir=out_dir)
    os.close(fd)
    try:
        shutil.copyfile(binary, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return dest
