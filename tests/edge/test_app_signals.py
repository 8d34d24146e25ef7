"""SIGINT, SIGTERM and SIGHUP end the edge app cleanly: the frame loop stops, close() runs (the app
logs `stopped by SIG...` after it), the exit code is 128+N and there is no traceback. Real processes:
CPython, the camlytics firmware (its C module traps SIGTERM/SIGHUP), the PyPI MicroPython (SIGINT
only: it cannot trap the others), and `camlytics run` whose app gets the signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from camlytics.sim.camera import SimulatedCamera
from tests.edge.conftest import SRC, micropython_executable

CAMLYTICS = Path(sys.executable).parent / "camlytics"
ALL = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Running:
    """A process whose stdout+stderr lines are collected by a thread."""

    def __init__(self, argv: list[str], env: dict, cwd: Path) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                                        daemon=True)
        self._reader.start()

    def wait_started(self, timeout: float = 120.0) -> None:
        """Until the app's start line (fails with the output if it ends first)."""
        deadline = time.monotonic() + timeout
        while not self.started() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        assert self.started(), self.lines

    def started(self) -> bool:
        return any("camlytics-edge: started: " in line for line in self.lines)

    def finish(self, timeout: float = 30.0) -> int:
        """Its exit code (killed if it does not end in `timeout` s: the test then fails)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running {timeout} s after the signal; output: {self.lines}") from None
        finally:
            self._reader.join(5)


def app_argv(runtime: str, firmware_argv) -> tuple[list[str], dict]:
    """argv prefix and environment that run `-m camlytics.edge.app` under `runtime`."""
    if runtime == "python":
        return [sys.executable], {**os.environ, "PYTHONPATH": str(SRC)}
    if runtime == "micropython":
        return ([str(micropython_executable()), "-X", "heapsize=4M"],
                {**os.environ, "MICROPYPATH": os.pathsep.join([".frozen", str(SRC)])})
    # the firmware runs its frozen edge package, the one this checkout built
    return [*firmware_argv(runtime.partition(":")[2]), "-X", "heapsize=4M"], {**os.environ, "MICROPYPATH": ".frozen"}


def assert_clean_stop(lines: list[str], sig: int, code: int) -> None:
    """Exit 128+N, the stop line logged after close(), no traceback."""
    name = signal.Signals(sig).name
    assert code == 128 + sig, lines
    assert any(line.strip() == f"camlytics-edge: stopped by {name}" for line in lines), lines
    assert not any("Traceback" in line for line in lines), lines


CASES = [("python", sig) for sig in ALL] + [("firmware:x86_64", sig) for sig in ALL] + \
    [("micropython", signal.SIGINT), ("firmware:armv7hf", signal.SIGTERM)]


@pytest.mark.parametrize("runtime, sig", CASES, ids=[f"{r}-{s.name}" for r, s in CASES])
def test_a_signal_stops_the_app_cleanly_with_128_plus_n(runtime, sig, door_model, firmware_argv, tmp_path):
    prefix, env = app_argv(runtime, firmware_argv)
    with SimulatedCamera(preset="office", seed=0, start=12 * 3600.0, auth=("root", "secret")) as cam:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"model": str(door_model / "model.cml"), "fps": 5,
                                      "camera": {"url": cam.url, "user": "root", "password": "secret"}}))
        app = Running([*prefix, "-m", "camlytics.edge.app", str(config)], env, tmp_path)
        try:
            app.wait_started()
            time.sleep(0.5)  # in the frame loop (fetching, decoding or waiting), not at its first line
            app.proc.send_signal(sig)
            code = app.finish()
        finally:
            if app.proc.poll() is None:
                app.proc.kill()
    assert_clean_stop(app.lines, sig, code)


def test_pypi_micropython_cannot_trap_sigterm(door_model, tmp_path):
    """The documented limitation: without the C module SIGTERM ends the process (no close(), no stop line)."""
    prefix, env = app_argv("micropython", None)
    with SimulatedCamera(preset="office", seed=0, start=12 * 3600.0, auth=("root", "secret")) as cam:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"model": str(door_model / "model.cml"), "fps": 5,
                                      "camera": {"url": cam.url, "user": "root", "password": "secret"}}))
        app = Running([*prefix, "-m", "camlytics.edge.app", str(config)], env, tmp_path)
        app.wait_started()
        app.proc.send_signal(signal.SIGTERM)
        assert app.finish() == -signal.SIGTERM
    assert not any("stopped by" in line for line in app.lines)


def app_pid(config_dir: Path) -> int:
    """The PID of the edge app that `camlytics run` started with a config under `config_dir`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"camlytics.edge.app" in cmdline and any(str(config_dir).encode() in arg for arg in cmdline):
                return int(entry.name)
    raise AssertionError(f"no edge app with a config under {config_dir}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_run_reports_the_code_of_its_app_stopped_by_a_signal(sig, door_model, tmp_path):
    """A service manager signalling the app (not `run`): the app closes, `run` exits with its code, no error."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with SimulatedCamera(preset="office", seed=0, start=12 * 3600.0, auth=("root", "secret")) as cam:
        env = {**os.environ, "TMPDIR": str(temp), "CAMLYTICS_PASSWORD": "secret"}
        run = Running([str(CAMLYTICS), "run", str(door_model), "--camera", cam.url.replace("http://", "http://root@"),
                       "--runtime", "python", "--fps", "5"], env, tmp_path)
        try:
            run.wait_started()
            os.kill(app_pid(temp), sig)
            code = run.finish()
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
    assert_clean_stop(run.lines, sig, code)
    assert not any("error" in line for line in run.lines), run.lines
    assert list(temp.iterdir()) == []  # run removed the config with the password
