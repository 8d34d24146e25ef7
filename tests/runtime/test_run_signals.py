"""SIGTERM or SIGHUP to `camlytics run` stops the edge app it started (MicroPython, or a firmware under
qemu-user) and removes the temporary config that holds the camera password: no orphan, no secret left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from camlytics.sim.camera import SimulatedCamera

CAMLYTICS = Path(sys.executable).parent / "camlytics"


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("runtime, sig", [("micropython", signal.SIGTERM), ("micropython", signal.SIGINT),
                                          ("firmware:armv7hf", signal.SIGHUP)])
def test_a_signal_stops_the_app_and_removes_the_secret_config(runtime, sig, door_model, firmware_binary, tmp_path):
    if runtime.startswith("firmware:"):
        firmware_binary(runtime.split(":")[1])  # built (or cached) before the command needs it
    temp = tmp_path / "tmp"
    temp.mkdir()
    with SimulatedCamera(preset="office", seed=0, start=12 * 3600.0, auth=("root", "secret")) as cam:
        env = {**os.environ, "TMPDIR": str(temp), "CAMLYTICS_PASSWORD": "secret"}
        proc = subprocess.Popen([str(CAMLYTICS), "run", str(door_model), "--camera", cam.url.replace("http://", "http://root@"),
                                 "--runtime", runtime, "--fps", "5"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any("started: " in line for line in lines) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert any("started: " in line for line in lines), lines
        configs = list(temp.glob("camlytics-run-*/config.json"))
        assert len(configs) == 1 and "secret" in configs[0].read_text()
        assert processes_mentioning(str(configs[0]))  # the app is running with that config
        proc.send_signal(sig)
        assert proc.wait(30) == 128 + sig
        reader.join(5)
    assert processes_mentioning(str(temp)) == []  # no orphan MicroPython / qemu
    assert list(temp.iterdir()) == []  # the config with the password is gone
    assert not any("Traceback" in line for line in lines), lines
