"""`camlytics firmware build`: pinned source, cached per-architecture binaries that hold what the camera
needs, and one clear line for every way the build can be asked wrongly."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.firmware import build
from tests.conftest import one_line_error
from tests.conftest import micropython_source

ARCHES = ("x86_64", "armv7hf", "aarch64")

# What the edge app imports on the camera (docs/firmware.md), checked inside each firmware.
MODULES_SCRIPT = """
import sys, socket, select, json, struct, array, binascii, errno, os, gc, time, hashlib
import _camlytics
try:
    import ssl
except ImportError:
    import tls as ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
from camlytics.edge import app, infer, jpeg, mqtt, http
print(json.dumps({
    "md5": binascii.hexlify(hashlib.md5(b"camlytics").digest()).decode(),
    "machine": sys.implementation._machine,
    "version": list(sys.implementation.version)[:3],
    "cmodule": _camlytics.VERSION, "build": _camlytics.BUILD,
    "frozen": app.__file__,
}))
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_the_firmware_holds_the_interpreter_the_c_module_and_the_frozen_edge_app(arch, firmware_binary,
                                                                                   firmware_argv, tmp_path):
    binary = firmware_binary(arch)
    assert build.elf_arch(binary) == arch
    info = json.loads((binary.parent / "build.json").read_text())
    assert info["arch"] == arch and info["static"] is True
    assert "camlytics/edge/app.py" in info["frozen"] and "camlytics/edge/ops_viper.py" not in info["frozen"]
    # only the frozen package is on the path: nothing comes from the repository
    proc = subprocess.run([*firmware_argv(arch), "-c", MODULES_SCRIPT], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "MICROPYPATH": ".frozen"})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["md5"] == hashlib.md5(b"camlytics").hexdigest()  # Mbed TLS's md5 (Digest auth needs it)
    assert got["version"] == [1, 28, 0]
    assert got["cmodule"] == build.CMODULE_VERSION
    assert got["build"] == info["build_id"] and info["build_id"] in got["machine"]
    assert f"linux-{arch}" in got["machine"] and "commit" in got["machine"]
    assert got["frozen"].startswith("camlytics/edge/")  # a frozen module, not a file of the repo
    version = subprocess.run([*firmware_argv(arch), "-m", "camlytics.edge.app", "--version"], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path, env={**os.environ, "MICROPYPATH": ".frozen"})
    assert version.returncode == 0, version.stderr
    assert f"C module v{build.CMODULE_VERSION}, build {info['build_id']}" in version.stdout
    assert f"linux-{arch} camlytics {info['build_id']} commit " in version.stdout


def test_a_second_build_comes_from_the_cache(firmware_binary):
    first = firmware_binary("x86_64")
    again = build.build_firmware("x86_64", micropython_source())
    assert again.path == first and again.built is False


def test_the_cache_key_follows_what_goes_into_the_binary(monkeypatch):
    source = build.Source(Path("/nonexistent"), "0" * 64, "test")
    arm, x86 = build.ARCHES["armv7hf"], build.ARCHES["x86_64"]
    key = build.build_key(arm, source)
    assert key != build.build_key(x86, source)
    assert key != build.build_key(arm, source, debug=True)
    assert key != build.build_key(arm, build.Source(Path("/nonexistent"), "1" * 64, "test"))
    real = build.cmodule_files()
    monkeypatch.setattr(build, "cmodule_files", lambda: {**real, "camlytics/int8.c": b"/* changed */"})
    assert build.build_key(arm, source) != key


def test_the_frozen_copy_has_no_native_code_decorators():
    files = build.frozen_files()
    jpeg = files["camlytics/edge/jpeg.py"]
    assert re.search(rb"^\s*@micropython\.", jpeg, re.M) is None and b"def _scan(" in jpeg
    assert "camlytics/edge/ops_numpy.py" not in files


# -- bad input: one line, exit 2, nothing half-written ------------------------------------------------

def test_unknown_architecture(capsys):
    assert main(["firmware", "build", "--arch", "mips"]) == 2
    one_line_error(capsys, "unknown architecture 'mips'", "x86_64, armv7hf, aarch64")


def test_no_source_anywhere(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv(build.SOURCE_ENV, raising=False)
    monkeypatch.setenv("CAMLYTICS_CACHE", str(tmp_path / "cache"))
    assert main(["firmware", "build", "--arch", "armv7hf"]) == 2
    one_line_error(capsys, "no MicroPython source", "--source", build.SOURCE_ENV)


def test_an_archive_with_another_checksum_is_refused(capsys, monkeypatch, tmp_path):
    fake = tmp_path / "micropython-1.28.0.tar.xz"
    with tarfile.open(fake, "w:xz") as tar:
        data = b"#define MICROPY_VERSION_MAJOR (1)\n"
        entry = tarfile.TarInfo("micropython-1.28.0/py/mpconfig.h")
        entry.size = len(data)
        tar.addfile(entry, io.BytesIO(data))
    monkeypatch.setenv("CAMLYTICS_CACHE", str(tmp_path / "cache"))
    assert main(["firmware", "build", "--arch", "aarch64", "--source", str(fake), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, str(fake), "is not a pinned MicroPython 1.28.0 archive")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache" / "micropython-src").exists() or not any((tmp_path / "cache" / "micropython-src").iterdir())


def test_a_tree_of_another_version_is_refused(capsys, tmp_path):
    tree = tmp_path / "mp"
    (tree / "py").mkdir(parents=True)
    (tree / "py" / "mpconfig.h").write_text("#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 22\n"
                                            "#define MICROPY_VERSION_MICRO 0\n")
    assert main(["firmware", "build", "--arch", "x86_64", "--source", str(tree)]) == 2
    one_line_error(capsys, "not a MicroPython 1.28.0 source tree", "version 1.22.0")


def test_no_network_for_a_download(capsys, monkeypatch, tmp_path, free_port):
    monkeypatch.setenv("CAMLYTICS_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{free_port}/micropython-1.28.0.tar.xz"  # nothing listens there
    assert main(["firmware", "build", "--arch", "armv7hf", "--source", url]) == 2
    one_line_error(capsys, f"cannot download the MicroPython source from {url}")


def test_a_missing_cross_compiler_names_the_debian_package(capsys, monkeypatch, tmp_path):
    source = build.resolve_source(micropython_source())  # extracted once into the shared cache
    monkeypatch.setenv("CAMLYTICS_CACHE", str(tmp_path / "cache"))  # an empty cache: a build is needed
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert main(["firmware", "build", "--arch", "aarch64", "--source", str(source.tree)]) == 2
    one_line_error(capsys, "aarch64-linux-gnu-gcc not found", "gcc-aarch64-linux-gnu")


def test_a_c_module_that_does_not_compile_gives_the_compiler_error_and_no_binary(capsys, monkeypatch, tmp_path):
    source = build.resolve_source(micropython_source())
    broken = tmp_path / "cmodule"
    (broken / "camlytics").mkdir(parents=True)
    for f in build.CMODULE_DIR.joinpath("camlytics").iterdir():
        (broken / "camlytics" / f.name).write_bytes(f.read_bytes())
    (broken / "camlytics" / "module.c").write_text('#include "camlytics.h"\nthis is not C;\n')
    monkeypatch.setattr(build, "CMODULE_DIR", broken)
    monkeypatch.setenv("CAMLYTICS_CACHE", str(tmp_path / "cache"))
    assert main(["firmware", "build", "--arch", "x86_64", "--source", str(source.tree), "--jobs", "2",
                 "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys, "firmware build failed:", "module.c", "error:", "full log:")
    log = Path(err.rsplit("full log: ", 1)[1].rstrip(")\n"))
    assert log.is_file() and "this is not C" in log.read_text()
    built = [p for p in (tmp_path / "cache" / "firmware").iterdir() if p.is_dir()]
    assert built == []  # no binary, no half-finished build folder
    assert not (tmp_path / "out").exists()


def test_info_reads_a_binary(firmware_binary, capsys, tmp_path):
    assert main(["firmware", "info", str(firmware_binary("armv7hf"))]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "armv7hf" and out["cmodule_version"] == build.CMODULE_VERSION
    assert out["machine"].startswith(f"linux-armv7hf camlytics {out['build_id']} commit ")
    copied = build.install(firmware_binary("aarch64"), tmp_path)  # no build.json beside it: the banner still says
    assert main(["firmware", "info", str(copied)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "aarch64" and "camlytics 0.1.0+" in out["machine"] and "cmodule v1" in out["machine"]


def test_info_refuses_what_is_not_a_firmware(tmp_path, capsys):
    (tmp_path / "x").write_text("#!/bin/sh\n")
    assert main(["firmware", "info", str(tmp_path / "x")]) == 2
    one_line_error(capsys, "not an ELF executable")


def test_without_a_source_the_pinned_archive_extracted_earlier_is_reused(monkeypatch):
    build.resolve_source(micropython_source())  # extracted into the cache once
    monkeypatch.delenv(build.SOURCE_ENV, raising=False)
    source = build.resolve_source(None)
    assert source.digest in build.PINNED_ARCHIVES and "extracted earlier" in source.origin


def test_sigterm_stops_a_build_and_leaves_no_compiler_and_no_half_build(tmp_path):
    import signal
    import sys
    import time

    from tests.runtime.test_run_signals import processes_mentioning

    source = build.resolve_source(micropython_source())
    cache = tmp_path / "cache"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "camlytics"), "firmware", "build", "--arch", "x86_64",
                             "--source", str(source.tree), "--jobs", "2"],
                            env={**os.environ, "CAMLYTICS_CACHE": str(cache)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until make compiles in the build folder
        if any(cache.glob("firmware/.build-*/build.log")) and len(processes_mentioning(str(cache))) > 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "stopped by signal" in err and "Traceback" not in err, err
    time.sleep(0.5)
    assert processes_mentioning(str(cache)) == []  # make and its compilers are gone
    assert not list(cache.glob("firmware/.build-*")) and not list(cache.glob("firmware/x86_64-*/micropython"))
