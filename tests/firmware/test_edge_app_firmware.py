"""The whole edge app as the camera runs it: the frozen package inside the ARM firmware, under qemu-user,
fetching frames over VAPIX (Digest auth) from the simulated camera, inferring with the C module and
publishing the debounced door state to a real mosquitto (over TLS for aarch64)."""

from __future__ import annotations

import re

import pytest

from camlytics.sim.camera import SimulatedCamera
from tests.edge.mqtt_helpers import Subscriber, tls_mosquitto, tls_pki  # noqa: F401 - fixtures
from tests.runtime.test_edge_app import EdgeProcess, open_event


@pytest.mark.slow
@pytest.mark.parametrize("arch, tls", [("armv7hf", False), ("aarch64", True)])
def test_a_door_opening_becomes_an_mqtt_state_change_from_the_arm_firmware(arch, tls, firmware_argv, door_model,
                                                                            request, tmp_path):
    broker = request.getfixturevalue("tls_mosquitto" if tls else "mosquitto")
    pki = request.getfixturevalue("tls_pki") if tls else None
    event = open_event()
    speed = 8.0
    mqtt = {"host": broker.host, "port": broker.port, "keepalive": 10}
    if tls:
        mqtt.update(tls=True, ca_file=str(pki.ca))
    with SimulatedCamera(preset="office", seed=0, speed=speed, start=event.start - 150,
                         auth=("root", "secret")) as cam:
        sub = Subscriber(broker.host, broker.port, "camlytics/#", ca_file=pki.ca if tls else None)
        app = EdgeProcess({
            "model": str(door_model / "model.cml"),
            "camera": {"url": cam.url, "user": "root", "password": "secret"},
            "fps": 4,
            "mqtt": mqtt,
            "stats_every": 20,
        }, tmp_path, interpreter=firmware_argv(arch), path=[".frozen"])  # the frozen app only
        try:
            started = app.wait_line(r"started: ", timeout=60)
            line = app.lines[started]
            assert "c backend, c JPEG kernels" in line and f"linux-{arch} camlytics" in line and "C module v1" in line, line
            sub.wait_for(lambda t, p, r: t == "camlytics/door/availability" and p == "online", timeout=60)
            sub.wait_for(lambda t, p, r: t == "camlytics/door/state" and p == "closed", timeout=90)
            sub.wait_for(lambda t, p, r: t == "camlytics/door/state" and p == "open",
                         timeout=(event.end - event.start + 150) / speed + 60)
            assert cam.sim_time() >= event.start, "reported open before the door opened"
            # the app reports its frame time (fetch, decode, inference) under emulation
            stats = app.wait_line(r"stats frames=\d+ fetch=[\d.]+ms decode=[\d.]+ms infer=[\d.]+ms", timeout=60)
            decode, infer = (float(v) for v in re.search(r"decode=([\d.]+)ms infer=([\d.]+)ms",
                                                          app.lines[stats]).groups())
            assert decode > 0 and infer >= 0
        finally:
            code = app.stop()
            sub.close()
    assert code is not None
    assert not any("Traceback" in line for line in app.lines), app.lines[-20:]
