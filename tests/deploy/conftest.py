"""Fixtures for packaging and deployment: a model directory, ARM binaries, package helpers."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model directory holding a valid random int8 edge model (model.cml)."""
    from camlytics.export.testmodels import random_model_bytes

    path = tmp_path_factory.mktemp("model")
    (path / "model.cml").write_bytes(random_model_bytes(0))
    return path


@pytest.fixture(scope="session")
def arm_binaries(tmp_path_factory) -> dict[str, Path]:
    """Tiny static programs built here with the Debian cross compilers: {"armv7hf": ..., "aarch64": ...}."""
    out = tmp_path_factory.mktemp("elf")
    source = out / "hello.c"
    source.write_text("int main(void) { return 0; }\n")
    binaries = {}
    for arch, compiler in (("armv7hf", "arm-linux-gnueabihf-gcc"), ("aarch64", "aarch64-linux-gnu-gcc")):
        exe = out / f"micropython-{arch}"
        subprocess.run([shutil.which(compiler) or compiler, "-static", "-Os", str(source), "-o", str(exe)],
                       check=True, capture_output=True, timeout=120)
        binaries[arch] = exe
    return binaries


def read_eap(path: Path) -> dict[str, tarfile.TarInfo]:
    """Members of a .eap by name."""
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def eap_file(path: Path, name: str) -> bytes:
    """One member's bytes."""
    with tarfile.open(path, "r:gz") as tar:
        return tar.extractfile(name).read()


def tar_gz(entries: list[tuple[str, bytes | None, dict]]) -> bytes:
    """A gzip'd tar from (name, data or None, TarInfo attributes) entries, in order (may be malicious)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data, attrs in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if data is not None else 0o777
            for key, value in attrs.items():
                setattr(info, key, value)
            if data is not None and info.type == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def cam():
    """A simulated Axis camera (Digest root:pass); `admin_url` carries the credentials."""
    from camlytics.sim.camera import SimulatedCamera

    with SimulatedCamera(auth=("root", "pass"), prewarm=False) as camera:
        camera.admin_url = camera.url.replace("http://", "http://root:pass@")
        yield camera


@pytest.fixture(scope="module")
def package(model_dir, tmp_path_factory):
    """The .eap of `model_dir` for any architecture (no firmware: the device's own micropython)."""
    from camlytics.deploy.bundle import BundleOptions, build_bundle

    return build_bundle(model_dir, tmp_path_factory.mktemp("eap"), BundleOptions(arch="all", interpreter="camera"))


@pytest.fixture(autouse=True)
def firmware_source(monkeypatch):
    """`camlytics bundle` finds the MicroPython source as a user's shell would: $CAMLYTICS_MICROPYTHON_SRC."""
    from camlytics.firmware.build import SOURCE_ENV
    from tests.conftest import micropython_source

    monkeypatch.setenv(SOURCE_ENV, micropython_source())

