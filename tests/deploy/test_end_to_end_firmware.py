"""The camera-ready ACAP end to end, as far as this machine can go: for armv7hf and aarch64, bundle the
trained model with the firmware -> deploy to a simulated camera of that architecture running AXIS OS 12
(unsigned allowed explicitly) -> start -> the ARM firmware under qemu-user fetches frames over VAPIX,
infers with the C module and publishes to a real mosquitto -> a door opening becomes an MQTT state
change -> the status endpoint answers through the camera's reverse proxy with the camera's own auth, the
spool of surprising frames only to an admin -> stop -> remove."""

from __future__ import annotations

import time

import httpx
import pytest

from camlytics.cli import main
from camlytics.sim.camera import SimulatedCamera
from tests.conftest import find_free_port
from tests.edge.mqtt_helpers import Subscriber
from tests.runtime.test_edge_app import open_event

APP = "camlytics_door"


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["armv7hf", "aarch64"])
def test_arm_package_on_a_camera_of_its_architecture(arch, door_model, mosquitto, firmware_binary, tmp_path, capsys):
    firmware_binary(arch)  # built (or cached) under the shared lock before bundle asks for it
    event = open_event()
    speed = 8.0
    node = f"e2e-{arch}"
    with SimulatedCamera(preset="office", seed=0, speed=speed, start=event.start - 150, auth=("root", "pass"),
                         arch=arch, os_version="12.6", users={"viewer": ("vpass", "viewer")}) as cam:
        camera = cam.url.replace("http://", "http://root:pass@")
        http_port = find_free_port()
        assert main(["bundle", str(door_model), "--out", str(tmp_path), "--camera", camera,
                     "--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port), "--node-id", node,
                     "--fps", "4", "--stable-frames", "3", "--camera-user", "root",
                     "--http-port", str(http_port)]) == 0
        package = tmp_path / f"{APP}_1_0_0_{arch}.eap"  # the camera's architecture, read from basicdeviceinfo
        assert package.is_file() and not list(tmp_path.glob("*_all.eap"))
        subscriber = Subscriber(mosquitto.host, mosquitto.port, f"camlytics/{node}/#")
        try:
            assert main(["deploy", str(package), "--camera", camera, "--param", "VapixPassword=pass", "--start",
                         "--allow-unsigned", "--yes"]) == 0
            subscriber.wait_for(lambda t, p, r: t.endswith("/availability") and p == "online", timeout=90)
            subscriber.wait_for(lambda t, p, r: t.endswith("/state") and p == "closed", timeout=90)
            subscriber.wait_for(lambda t, p, r: t.endswith("/state") and p == "open",
                                timeout=(event.end - event.start + 150) / speed + 60)
            assert cam.sim_time() >= event.start, "reported open before the door opened"

            # the app's status endpoint, through the camera's reverse proxy and the camera's Digest auth
            viewer = httpx.DigestAuth("viewer", "vpass")
            status = httpx.get(f"{cam.url}/local/{APP}/status", auth=viewer, timeout=30)
            assert status.status_code == 200, status.text
            body = status.json()
            assert body["backend"] == "c" and body["jpeg_kernels"] == "c"
            assert body["frames"]["decoded"] > 0 and f"linux-{arch} camlytics" in body["version"]
            assert httpx.get(f"{cam.url}/local/{APP}/status", timeout=30).status_code == 401
            # the spool of surprising frames: admin only
            assert httpx.get(f"{cam.url}/local/{APP}/spool", auth=viewer, timeout=30).status_code == 403
            spool = httpx.get(f"{cam.url}/local/{APP}/spool", auth=httpx.DigestAuth("root", "pass"), timeout=30)
            assert spool.status_code == 200 and isinstance(spool.json(), list)
            for item in spool.json()[:1]:
                jpeg = httpx.get(f"{cam.url}/local/{APP}/spool/{item['name']}", auth=httpx.DigestAuth("root", "pass"),
                                 timeout=30)
                assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"

            # the log: the bundled firmware ran (under the emulator only the simulated camera sets), with its frame time
            deadline = time.monotonic() + 90  # the launcher asks for a stats line every 30 s of frames
            while True:
                log = httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": APP}).text
                if "stats frames=" in log or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert "c backend, c JPEG kernels" in log and f"linux-{arch} camlytics" in log, log[-3000:]
            assert "stats frames=" in log and "decode=" in log and "infer=" in log, log[-3000:]

            assert main(["apps", "--camera", camera, "--stop", APP]) == 0
            subscriber.wait_for(lambda t, p, r: t.endswith("/availability") and p == "offline", timeout=60)
            assert main(["apps", "--camera", camera, "--remove", APP]) == 0
            capsys.readouterr()
            assert main(["apps", "--camera", camera]) == 0
            assert "no applications installed" in capsys.readouterr().out
        finally:
            subscriber.close()
