"""`camlytics fleet deploy` against simulated cameras running the apps for real: one ACAP per sensor, its own
status port and MQTT node, skipped when unchanged, one camera going away does not stop the others."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from camlytics.cli import main
from camlytics.fleet.config import load_fleet
from camlytics.fleet.deploy import app_name, http_ports, node_id
from camlytics.store import Dataset
from camlytics.store.models import deployed
from tests.edge.mqtt_helpers import Subscriber


def give_model(sensor, seed: int = 0) -> None:
    """A valid (random) int8 model in the sensor's model directory, and its dataset."""
    from camlytics.export.testmodels import random_model_bytes

    sensor.model_dir.mkdir(parents=True, exist_ok=True)
    (sensor.model_dir / "model.cml").write_bytes(random_model_bytes(seed))
    with Dataset.open(sensor.dataset, create=True):
        pass


def test_app_names_are_safe_and_ports_distinct():
    assert app_name("lobby", "front-door") == "camlytics_lobby_front_door"
    long = app_name("a-very-long-camera", "and-a-long-sensor")
    assert len(long) == 26 and long.startswith("camlytics_a_very") and long != app_name("a-very-long-camera", "x")
    assert node_id("lobby", "front-door") == "lobby_front-door"

    class Cam:
        sensors = [type("S", (), {"key": f"c/s{i}"}) for i in range(50)]

    ports = http_ports(Cam())
    assert len(set(ports.values())) == 50 and all(8000 <= p < 10050 for p in ports.values())
    assert http_ports(Cam()) == ports  # stable


@pytest.mark.slow
def test_fleet_deploy_installs_skips_unchanged_and_survives_a_dead_camera(sim_fleet, mosquitto, capsys):
    sim = sim_fleet(2, sensors=2, mqtt=mosquitto, speed=10)
    fleet = load_fleet(sim.path)
    with_model = [fleet.sensors()[0], fleet.sensors()[1], fleet.sensors()[2]]  # cam01/s1 has none
    for i, sensor in enumerate(with_model):
        give_model(sensor, seed=i)
    subscriber = Subscriber(mosquitto.host, mosquitto.port, "camlytics/#")
    try:
        assert main(["fleet", "deploy", "--fleet", str(sim.path), "--interpreter", "camera"]) == 0
        out = capsys.readouterr().out
        assert out.count(": deployed v1-") == 3 and "cam01/s1: no model" in out, out
        for sensor in with_model:
            assert [v for v, _ in deployed(sensor.dataset, sensor.camera)] == [f"v1-{_sha8(sensor)}"]
            node = node_id(sensor.camera, sensor.name)
            subscriber.wait_for(lambda t, p, r, node=node: t == f"camlytics/{node}/availability" and p == "online",
                                timeout=90)
        # every app answers on its own port behind its camera's reverse proxy
        cam0 = fleet.cameras[0]
        for sensor in cam0.sensors:
            reply = httpx.get(f"{cam0.url}/local/{app_name(sensor.camera, sensor.name)}/status",
                              auth=httpx.DigestAuth("root", "fleet-pass"), timeout=30)
            assert reply.status_code == 200, reply.text

        # nothing changed: nothing is uploaded again
        assert main(["fleet", "deploy", "--fleet", str(sim.path), "--interpreter", "camera"]) == 0
        out = capsys.readouterr().out
        assert out.count(": unchanged v1-") == 3, out

        # a new model for one sensor, and the other camera gone: that one deploys, the dead one fails, exit 1
        give_model(with_model[0], seed=7)
        sim.cameras[1].kill()
        assert main(["fleet", "deploy", "--fleet", str(sim.path), "--interpreter", "camera"]) == 1
        out = capsys.readouterr().out
        assert "cam00/door: deployed v2-" in out and "cam00/s1: unchanged" in out, out
        assert "cam01/door: failed" in out and "Result" in out, out
        assert [v for v, _ in deployed(with_model[0].dataset, "cam00")][-1].startswith("v2-")
    finally:
        subscriber.close()


def _sha8(sensor) -> str:
    import hashlib

    return hashlib.sha256((Path(sensor.model_dir) / "model.cml").read_bytes()).hexdigest()[:8]


class SilentCamera:
    """A "camera" that accepts connections and never answers until released (a hung device on the network)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list = []
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.released.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def release(self) -> None:
        """Close everything: the waiting client gets a reset connection."""
        self.released.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_parameters_the_fleet_sets_cannot_come_from_the_environment(tmp_path):
    from camlytics.errors import FleetError
    from camlytics.fleet.deploy import sensor_target

    (tmp_path / "fleet.toml").write_text('[[camera]]\nname = "c"\nurl = "http://127.0.0.1:9"\n'
                                         '  [[camera.sensor]]\n  name = "door"\n  classes = ["closed", "open"]\n')
    fleet = load_fleet(tmp_path / "fleet.toml")
    target = sensor_target(fleet, fleet.sensors()[0], extra={"VapixPassword": "s3cret", "MinConfidence": "0.7"})
    assert target.params["VapixPassword"] == "s3cret" and target.params["MqttNodeId"] == "c_door"
    assert "VapixPassword" not in target.defaults  # never baked into the package
    with pytest.raises(FleetError, match=r"HttpPort: the fleet file sets it .*CAMLYTICS_PARAM_HttpPort"):
        sensor_target(fleet, fleet.sensors()[0], extra={"HttpPort": "9000"})


@pytest.mark.slow
def test_fleet_deploy_runs_cameras_at_once_with_the_environments_parameters(sim_fleet, tmp_path, monkeypatch):
    from camlytics.deploy.params import gather_params
    from camlytics.fleet.deploy import deploy_fleet

    sim = sim_fleet(1, speed=10)
    hung = SilentCamera()
    # the hung camera comes first in the file: deployed one after the other, the live one would wait for it
    text = sim.path.read_text()
    at = text.index("[[camera]]")
    sim.path.write_text(text[:at] + f'[[camera]]\nname = "hung"\nurl = "{hung.url}"\n  [[camera.sensor]]\n'
                        '  name = "door"\n  classes = ["closed", "open"]\n' + text[at:])
    fleet = load_fleet(sim.path)
    for sensor in fleet.sensors():
        give_model(sensor)
    monkeypatch.setenv("CAMLYTICS_PARAM_MinConfidence", "0.6")
    monkeypatch.setenv("CAMLYTICS_PARAM_ActiveClass", "open")
    param_file = tmp_path / "params"
    param_file.write_text("MinConfidence=0.75\n")  # the file overrides the environment
    param_file.chmod(0o600)
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("cam00/door:"):
            hung.release()  # the live camera is done while the hung one still waits

    try:
        results = deploy_fleet(fleet, extra=gather_params(param_file), interpreter="camera", echo=echo)
    finally:
        hung.release()
    assert lines[0].startswith("cam00/door: deployed v1-") and lines[1].startswith("hung/door: failed"), lines
    assert [(r.key, r.outcome) for r in results] == [("hung/door", "failed"), ("cam00/door", "deployed")]

    # the app runs with the parameters from the file and the environment
    cam = fleet.camera("cam00")
    auth = httpx.DigestAuth("root", "fleet-pass")
    status = wait_status(f"{cam.url}/local/{app_name('cam00', 'door')}/status", auth)
    assert status["min_confidence"] == 0.75 and status["active_class"] == "open", status

    # the same again: unchanged; another parameter value: deployed again
    live = fleet.sensor("cam00/door")
    assert [r.outcome for r in deploy_fleet(fleet, only=live.key, extra=gather_params(param_file),
                                            interpreter="camera", echo=lambda line: None)] == ["unchanged"]
    monkeypatch.setenv("CAMLYTICS_PARAM_ActiveClass", "closed")
    assert [r.outcome for r in deploy_fleet(fleet, only=live.key, extra=gather_params(param_file),
                                            interpreter="camera", echo=lambda line: None)] == ["deployed"]


def wait_status(url: str, auth, timeout: float = 120) -> dict:
    """The app's /status once it answers (it starts after the deploy)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = httpx.get(url, auth=auth, timeout=30)
            if reply.status_code == 200:
                return reply.json()
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer in {timeout} s"
        time.sleep(1)
