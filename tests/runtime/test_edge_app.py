"""The whole edge app under real MicroPython: simulated camera (Digest auth) -> JPEG decode -> int8
network -> debounced state -> real mosquitto (paho subscriber checks) + VAPIX virtual input.

Covers the issue's scenarios: a door opening in the simulator arrives as an MQTT state message and a
virtual-input call; the HA discovery config is retained; a broker restart -> reconnect and
re-publish; a camera answering 503 for a while -> recovery; memory stable over 2000 frames.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from camlytics.sim.camera import SimulatedCamera, shared_scene
from tests.edge.conftest import SRC, micropython_executable
from tests.edge.mqtt_helpers import Subscriber


class EdgeProcess:
    """The edge app in a MicroPython subprocess; stdout lines are collected by a thread."""

    def __init__(self, config: dict, workdir: Path, interpreter: list[str] | None = None,
                 path: list[str] | None = None) -> None:
        """`interpreter`: argv prefix (default: PyPI MicroPython); `path`: its MICROPYPATH entries
        (default: frozen modules, then the repository's src/)."""
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config))
        env = dict(os.environ, MICROPYPATH=os.pathsep.join(path or [".frozen", str(SRC)]))
        self.proc = subprocess.Popen(
            [*(interpreter or [str(micropython_executable())]), "-X", "heapsize=2M", "-m", "camlytics.edge.app",
             str(config_path)],
            env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 60.0, start: int = 0) -> int:
        """Index of the first line from `start` matching regex `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(start, len(self.lines)):
                if re.search(pattern, self.lines[i]):
                    return i
            if self.proc.poll() is not None and len(self.lines) == 0:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s; last lines: {self.lines[-15:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


def open_event(preset: str = "office", seed: int = 0, min_open: float = 40.0):
    """A daytime door event that stays open at least `min_open` simulated seconds."""
    scene = shared_scene(preset, seed, 640, 360)
    for event in scene.timeline.events:
        if event.open_seconds() >= min_open and 9 * 3600 < event.start < 17 * 3600:
            return event
    raise AssertionError("the simulated day has no long daytime door event")


class WebhookReceiver:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=10).read()


def test_door_events_reach_mqtt_and_virtual_input_and_survive_failures(door_model, mosquitto, tmp_path):
    event = open_event()
    speed = 8.0
    with SimulatedCamera(preset="office", seed=0, speed=speed, start=event.start - 150, auth=("root", "secret")) as cam:
        sub = Subscriber(mosquitto.host, mosquitto.port)
        hook = WebhookReceiver()
        app = EdgeProcess({
            "model": str(door_model / "model.cml"),
            "camera": {"url": cam.url, "user": "root", "password": "secret"},
            "fps": 4,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "ha_discovery": True, "keepalive": 5},
            "virtual_input": {"port": 2},
            "webhook": {"url": hook.url},
            "stats_every": 20,
        }, tmp_path)
        try:
            # HA discovery config, retained, with the door device class
            _, payload, _ = sub.wait_for(lambda t, p, r: t == "homeassistant/binary_sensor/door/state/config")
            discovery = json.loads(payload)
            assert (discovery["device_class"], discovery["payload_on"], discovery["payload_off"]) == \
                ("door", "open", "closed")
            assert "unknown" in discovery["value_template"]  # the sensor's unknown -> Home Assistant's unknown
            sub.wait_for(lambda t, p, r: t == "camlytics/door/availability" and p == "online")
            sub.wait_for(lambda t, p, r: t == "camlytics/door/state" and p == "closed", timeout=60)
            # the door opens in the simulator -> "open" over MQTT and the virtual input activated
            sub.wait_for(lambda t, p, r: t == "camlytics/door/state" and p == "open",
                         timeout=(event.end - event.start + 150) / speed + 30)
            deadline = time.monotonic() + 10
            while not any(e["port"] == 2 and e["action"] == "activate" for e in cam.virtual_input_log) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cam.virtual_inputs.get(2) is True, cam.virtual_input_log
            opened_at = cam.sim_time()
            # and the webhook got the change as JSON
            deadline = time.monotonic() + 10
            while not any(body["state"] == "open" for _, body in hook.received) and time.monotonic() < deadline:
                time.sleep(0.05)
            ctype, body = next((c, b) for c, b in hook.received if b["state"] == "open")
            assert ctype == "application/json" and body["previous"] == "closed" and 0.0 < body["confidence"] <= 1.0
            assert body["active"] is True and body["raw_class"] == "open"
            assert opened_at >= event.start, "reported open before the door opened"

            # broker restart: the app reconnects and re-publishes its retained state
            mosquitto.stop()
            time.sleep(1.0)
            mosquitto.start()
            late = Subscriber(mosquitto.host, mosquitto.port, "camlytics/door/#")
            try:
                late.wait_for(lambda t, p, r: t == "camlytics/door/state" and p in ("open", "closed"), timeout=40)
                late.wait_for(lambda t, p, r: t == "camlytics/door/availability" and p == "online", timeout=10)
            finally:
                late.close()

            # the camera answers 503 for a while: the app logs it and recovers
            mark = len(app.lines)
            post(cam.url + "/camlytics-sim/fail?status=503&count=8")
            app.wait_line(r"camera error", start=mark, timeout=30)
            app.wait_line(r"camera back after", start=mark, timeout=60)
        finally:
            code = app.stop()
            sub.close()
            hook.close()
    assert code is not None
    assert not any("Traceback" in line for line in app.lines), app.lines[-20:]


@pytest.mark.slow
def test_heap_is_stable_over_2000_frames(door_model, tmp_path):
    with SimulatedCamera(preset="office", seed=0, speed=1.0, start="12:00", auth=None,
                         default_resolution="320x180") as cam:
        app = EdgeProcess({
            "model": str(door_model / "model.cml"),
            "camera": {"url": cam.url, "resolution": "320x180"},
            "fps": 100,
            "max_frames": 2000,
            "stats_every": 250,
        }, tmp_path)
        assert app.proc.wait(300) == 0, app.lines[-20:]
        app.stop()
    heaps = [int(m.group(1)) for line in app.lines if (m := re.search(r"stats frames=\d+ .* heap=(\d+)", line))]
    assert len(heaps) >= 8, app.lines[-20:]
    # after warm-up, the heap in use after a collection does not grow
    assert max(heaps[2:]) <= heaps[1] + 4096, heaps
