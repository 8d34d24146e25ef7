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
