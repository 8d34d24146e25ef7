"""A simulated fleet: N `camlytics simcam` processes (different presets and seeds) on free loopback ports,
and a fleet.toml naming them, with the credentials in environment variables as a real fleet has them.

    def test_something(sim_fleet):
        fleet = sim_fleet(3)                      # three cameras, one sensor each, Digest auth
        fleet.path                                # the fleet.toml (root = its directory)
        fleet.cameras[1].kill()                   # a camera goes away (SIGKILL)
        fleet.run("check", "--json")              # `camlytics fleet check --fleet PATH --json`, a subprocess

`sim_fleet(n, sensors=2, mqtt=broker, speed=600, extra_sensor="...")` changes the shape; the processes stop
when the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PRESETS = ("office", "warehouse", "home", "corridor", "glassdoor", "parking", "roller", "double", "irnight")
RESOLUTION = "320x180"  # the simulator's smallest: fast to render and to decode


@dataclass
class SimCameraProcess:
    """One `camlytics simcam` subprocess: its fleet name, URL, scene, credentials' variable names."""

    name: str
    preset: str
    seed: int
    proc: subprocess.Popen
    url: str = ""
    user_env: str = ""
    password_env: str = ""

    def kill(self) -> None:
        """The camera goes away at once (power cut): SIGKILL, no goodbye."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop it as its operator would (SIGINT), SIGKILL if it does not go."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class SimFleet:
    """The cameras and the fleet file that names them."""

    path: Path
    cameras: list[SimCameraProcess]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def run(self, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        """`camlytics fleet ARGS --fleet PATH` as a subprocess (the credentials in its environment)."""
        command = [sys.executable, "-m", "camlytics", "fleet", *args, "--fleet", str(self.path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **self.env},
                              **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """`camlytics fleet ARGS --fleet PATH` started, not waited for (stdout and stderr piped, text)."""
        command = [sys.executable, "-m", "camlytics", "fleet", *args, "--fleet", str(self.path)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **self.env}, **kwargs)


def start_simcams(specs: list[tuple[str, int]], *, speed: float, password: str, arch: str = "aarch64"
                  ) -> list[tuple[subprocess.Popen, str]]:
    """Start one simcam per (preset, seed) at once (they start in parallel), then wait for each URL."""
    procs = [subprocess.Popen([sys.executable, "-m", "camlytics", "simcam", "--port", "0", "--preset", preset,
                               "--seed", str(seed), "--speed", str(speed), "--start", "06:00",
                               "--resolution", RESOLUTION, "--password", password, "--arch", arch],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for preset, seed in specs]
    started = []
    for proc in procs:
        line = proc.stdout.readline()  # "simulated Axis camera on http://127.0.0.1:PORT  preset=..."
        if " on " not in line:
            for p in procs:
                p.kill()
            raise RuntimeError(f"simcam did not start: {line!r}")
        started.append((proc, line.split(" on ")[1].split()[0]))
    return started


def fleet_toml(cameras: list[SimCameraProcess], *, sensors: int = 1, interval: float = 0.5,
               concurrency: int = 16, budget: int = 20, mqtt: object | None = None, extra_sensor: str = "") -> str:
    """The text of a fleet file for `cameras`: `sensors` sensors each (the door's ROI left to the dataset)."""
    lines = ["[fleet]", 'root = "."', f"concurrency = {concurrency}"]
    if mqtt is not None:
        lines += ["[mqtt]", f'host = "{mqtt.host}"', f"port = {mqtt.port}", 'prefix = "camlytics"']
    for cam in cameras:
        lines += ["[[camera]]", f'name = "{cam.name}"', f'url = "{cam.url}"', f'username_env = "{cam.user_env}"',
                  f'password_env = "{cam.password_env}"', f"interval = {interval}", f'resolution = "{RESOLUTION}"']
        for s in range(sensors):
            # the second sensor watches the left half: two samplers, two ROIs, one frame
            lines += ["  [[camera.sensor]]", f'  name = "{"door" if s == 0 else f"s{s}"}"',
                      '  classes = ["closed", "open"]' if s == 0 else "  roi = [0, 0, 160, 180]",
                      f'  collect = {{ sampler = "smart", budget = {budget} }}',
                      '  train = { seed = 0, folds = 2 }']
            if extra_sensor:
                lines.append("  " + extra_sensor)
    return "\n".join(lines) + "\n"


@pytest.fixture
def sim_fleet(tmp_path, monkeypatch):
    """A factory: `sim_fleet(n, sensors=1, speed=60, interval=0.5, budget=20, mqtt=None, arch="aarch64")` starts n
    simcams of different presets and seeds, writes tmp_path/fleet/fleet.toml and sets the credential variables."""
    everything: list[SimCameraProcess] = []

    def make(n: int = 3, *, sensors: int = 1, speed: float = 60.0, interval: float = 0.5, budget: int = 20,
             concurrency: int = 16, mqtt: object | None = None, arch: str = "aarch64", extra_sensor: str = ""
             ) -> SimFleet:
        specs = [(PRESETS[i % len(PRESETS)], i) for i in range(n)]
        password = "fleet-pass"
        cameras = []
        for i, ((preset, seed), (proc, url)) in enumerate(zip(specs, start_simcams(specs, speed=speed,
                                                                                   password=password, arch=arch))):
            cam = SimCameraProcess(name=f"cam{i:02d}", preset=preset, seed=seed, proc=proc, url=url,
                                   user_env=f"CAM{i:02d}_USER", password_env=f"CAM{i:02d}_PASSWORD")
            everything.append(cam)
            cameras.append(cam)
        env = {}
        for cam in cameras:
            env[cam.user_env], env[cam.password_env] = "root", password
            monkeypatch.setenv(cam.user_env, "root")
            monkeypatch.setenv(cam.password_env, password)
        directory = tmp_path / "fleet"
        directory.mkdir(exist_ok=True)
        path = directory / "fleet.toml"
        path.write_text(fleet_toml(cameras, sensors=sensors, interval=interval, concurrency=concurrency,
                                   budget=budget, mqtt=mqtt, extra_sensor=extra_sensor))
        return SimFleet(path=path, cameras=cameras, env=env)

    try:
        yield make
    finally:
        for cam in everything:
            cam.stop()
