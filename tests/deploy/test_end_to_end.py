"""The whole path of the issue: bundle -> deploy to a camera -> start -> the app on the camera fetches
frames and publishes the door state to a real MQTT broker -> stop -> remove."""

from __future__ import annotations

import httpx
import pytest

from camlytics.cli import main
from camlytics.sim.camera import SimulatedCamera
from tests.edge.mqtt_helpers import Subscriber


@pytest.mark.slow
def test_bundle_deploy_start_publish_stop_remove(model_dir, mosquitto, tmp_path, capsys):
    with SimulatedCamera(preset="office", seed=0, auth=("root", "pass")) as cam:
        camera = cam.url.replace("http://", "http://root:pass@")
        assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--mqtt-host", mosquitto.host,
                     "--mqtt-port", str(mosquitto.port), "--node-id", "e2e", "--fps", "4", "--stable-frames", "2",
                     "--threshold", "0", "--camera-user", "root", "--arch", "all", "--interpreter", "camera",
                     "--http-port", "0"]) == 0
        package = tmp_path / "camlytics_door_1_0_0_all.eap"
        subscriber = Subscriber(mosquitto.host, mosquitto.port, "camlytics/e2e/#")
        try:
            # the VAPIX password is set on the camera, not baked into the package
            assert main(["deploy", str(package), "--camera", camera, "--param", "VapixPassword=pass", "--start"]) == 0
            subscriber.wait_for(lambda t, p, r: t == "camlytics/e2e/availability" and p == "online", timeout=60)
            topic, state, retained = subscriber.wait_for(
                lambda t, p, r: t == "camlytics/e2e/state" and p in ("open", "closed"), timeout=60)
            log = httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": "camlytics_door"}).text
            assert "micropython found on the device PATH" in log  # no interpreter bundled: the device's
            assert "MicroPython" in log and "EVENT" in log  # the edge app ran under MicroPython and saw a change
            assert main(["apps", "--camera", camera, "--stop", "camlytics_door"]) == 0
            # the broker publishes the app's last will once its process is gone
            subscriber.wait_for(lambda t, p, r: t == "camlytics/e2e/availability" and p == "offline", timeout=30)
            assert main(["apps", "--camera", camera, "--remove", "camlytics_door"]) == 0
            assert main(["apps", "--camera", camera]) == 0
            assert "no applications installed" in capsys.readouterr().out
        finally:
            subscriber.close()
