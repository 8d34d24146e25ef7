"""The edge app's own HTTP endpoint (edge.status): /status, /spool, /spool/NAME over real loopback HTTP,
served from the app's frame loop, under CPython (in-process App) and in every MicroPython of the
`micropython` fixture (PyPI build, firmware for armv7hf and aarch64 under qemu)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from camlytics.edge import config, status
from camlytics.edge.app import App
from camlytics.edge.spool import Spool
from camlytics.sim.camera import SimulatedCamera


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw(port: int, *pieces: bytes, pause: float = 0.0, timeout: float = 20.0) -> bytes:
    """Send `pieces` (with `pause` seconds between them) on one connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            s.sendall(piece)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def decoded(port: int) -> int:
    code, _, body = get(port, "/status")
    assert code == 200
    return json.loads(body)["frames"]["decoded"]


def seed_spool(directory: Path) -> dict[str, bytes]:
    """Frames spooled as the app would (the spool is only read by the endpoint): name -> bytes."""
    spool = Spool(str(directory), max_bytes=10_000_000, max_files=50)
    frames = {}
    for i, reason in enumerate(("flip", "low_confidence", "flip")):
        data = b"\xff\xd8" + os.urandom(5000 + 3000 * i) + b"\xff\xd9"
        frames[spool.add(data, reason, t=1_700_000_000 + i)] = data
    return frames


def exercise_endpoint(port: int, spooled: dict[str, bytes], slowdown: float = 1.0) -> dict:
    """Everything the endpoint promises, over real HTTP; returns the last /status document."""
    code, headers, body = get(port, "/status")
    assert code == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    for key in ("state", "confidence", "state_changes", "frames", "model", "backend", "jpeg_kernels", "uptime_s",
                "heap", "version", "raw_class", "raw_confidence", "unknown_votes", "min_confidence", "active_class"):
        assert key in doc, key
    # a door model: its own min_confidence (written by `camlytics train`, or 0 without one); the virtual input's
    # class is "open"
    assert 0.0 <= doc["min_confidence"] < 1 and doc["active_class"] == "open" and doc["unknown_votes"] >= 0
    assert doc["raw_class"] in doc["model"]["classes"] + [None]
    assert set(doc["frames"]) >= {"seen", "decoded", "failed"}
    assert doc["model"]["classes"] and doc["model"]["name"] and doc["model"]["format_version"] == 1
    assert doc["version"].startswith("camlytics-edge on ")

    # the spool: listing (oldest first, with time and reason) and each frame byte for byte
    code, headers, body = get(port, "/spool")
    assert code == 200 and headers["content-type"] == "application/json"
    listing = json.loads(body)
    assert [e["name"] for e in listing] == sorted(spooled)
    for entry in listing:
        assert entry["size"] == len(spooled[entry["name"]]) and entry["reason"] in ("flip", "low_confidence")
        assert 1_700_000_000 <= entry["time"] < 1_700_000_010
        code, headers, data = get(port, "/spool/" + entry["name"])
        assert code == 200 and headers["content-type"] == "image/jpeg" and data == spooled[entry["name"]]
    assert get(port, "/spool/")[0] == 200  # one trailing slash is the listing too
    # only names the spool lists: no traversal, no other file
    for bad in ("/spool/../config.json", "/spool/%2e%2e/config.json", "/spool/x.jpg", "/spool//etc/passwd",
                "/nope", "/", "/status/more"):
        assert get(port, bad)[0] == 404, bad
    code, headers, _ = get(port, "/status", method="POST")
    assert code == 405 and headers["allow"] == "GET"
    assert get(port, "/status", method="DELETE")[0] == 405
    assert raw(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    assert raw(port, b"GET status HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400 ")

    # a request split over several packets is still one request
    answer = raw(port, b"GET /sta", b"tus HTTP/1.1\r\nHo", b"st: x\r\n\r\n", pause=0.2)
    assert answer.startswith(b"HTTP/1.0 200 ") and b'"state"' in answer
    # a huge request is refused, and the client can still read why
    answer = raw(port, b"GET /status HTTP/1.0\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 431 ")

    # clients that connect and send nothing (or half a request) do not stop the frames, nor the endpoint
    idle = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(status.MAX_CONNECTIONS)]
    try:
        idle[1].sendall(b"GET /status HTTP/1.0\r\n")
        before = decoded(port)
        deadline = time.monotonic() + 30 * slowdown
        while decoded(port) < before + 2:
            assert time.monotonic() < deadline, "no frames processed while idle clients were connected"
            time.sleep(0.2)
        # and the server drops them at the latest after its deadline
        idle[-1].settimeout(status.TIMEOUT_MS / 1000 + 10 * slowdown)
        assert idle[-1].recv(100) == b""
    finally:
        for s in idle:
            s.close()
    code, _, body = get(port, "/status")
    assert code == 200
    return json.loads(body)


class StoppableApp(App):
    """The real App; `stop` ends its run() at the next frame (the test's way of pressing Ctrl-C)."""

    stop = False

    def step(self):
        if self.stop:
            raise KeyboardInterrupt
        return super().step()


def run_until_stopped(app: App) -> None:
    try:
        app.run(0)
    except KeyboardInterrupt:
        pass


def test_endpoint_in_the_running_app_cpython(door_model, tmp_path):
    spooled = seed_spool(tmp_path / "spool")
    port = free_port()
    with SimulatedCamera(preset="office", seed=0, start="12:00", auth=None, default_resolution="320x180") as cam:
        cfg = config.validate({"model": str(door_model / "model.cml"),
                               "camera": {"url": cam.url, "resolution": "320x180"}, "fps": 10, "stats_every": 0,
                               "spool": {"dir": str(tmp_path / "spool")}, "http": {"port": port}})
        app = StoppableApp(cfg)
        runner = threading.Thread(target=run_until_stopped, args=(app,), daemon=True)
        runner.start()
        try:
            wait_listening(port, 30)
            t0 = time.monotonic()
            doc = get(port, "/status")
            assert time.monotonic() - t0 < 1.0  # answered from the loop's sleeps, not after a long wait
            doc = exercise_endpoint(port, spooled)
        finally:
            app.stop = True
            runner.join(30)
            app.close()
    assert not runner.is_alive()
    assert doc["frames"]["decoded"] >= 2 and doc["frames"]["seen"] >= doc["frames"]["decoded"]
    assert doc["state"] in app.classes + [None] and doc["heap"] is None  # no MicroPython heap on CPython
    with pytest.raises(OSError):  # closed with the app
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


MP_SCRIPT = """
import json, os
from camlytics.edge import config
from camlytics.edge.app import App

class StoppableApp(App):
    def step(self):
        try:
            os.stat(STOP)
            raise KeyboardInterrupt
        except OSError:
            pass
        return App.step(self)

app = StoppableApp(config.validate(json.loads(CFG)))
try:
    app.run(0)
except KeyboardInterrupt:
    pass
finally:
    app.close()
print("RESULT " + json.dumps({"frames": app.frames, "closed": app.http is None}))
"""


def test_endpoint_in_the_running_app_micropython(door_model, tmp_path, micropython):
    spooled = seed_spool(tmp_path / "spool")
    port = free_port()
    stop = tmp_path / "stop"
    with SimulatedCamera(preset="office", seed=0, start="12:00", auth=None, default_resolution="320x180") as cam:
        cfg = {"model": str(door_model / "model.cml"), "camera": {"url": cam.url, "resolution": "320x180"},
               "fps": 5, "stats_every": 0, "spool": {"dir": str(tmp_path / "spool")},
               "http": {"port": port, "host": "127.0.0.1"}}
        script = "STOP = %r\nCFG = %r\n" % (str(stop), json.dumps(cfg)) + MP_SCRIPT
        result: dict = {}
        runner = threading.Thread(target=lambda: result.update(out=micropython(script, timeout=180)), daemon=True)
        runner.start()
        try:
            wait_listening(port, 60 * micropython.slowdown)
            doc = exercise_endpoint(port, spooled, micropython.slowdown)
        finally:
            stop.write_text("")
            runner.join(120 * micropython.slowdown)
    assert not runner.is_alive() and "out" in result, "the MicroPython app did not stop"
    assert doc["frames"]["decoded"] >= 2 and doc["state"] in doc["model"]["classes"] + [None]
    assert doc["heap"]["alloc"] > 0 and doc["heap"]["free"] > 0  # gc.mem_alloc/mem_free of the firmware heap
    assert doc["backend"] == micropython.auto and doc["version"].lower().startswith("camlytics-edge on micropython")
    line = next(line for line in result["out"].splitlines() if line.startswith("RESULT "))
    final = json.loads(line[7:])
    assert final["closed"] and final["frames"] >= doc["frames"]["decoded"]


def test_http_config_is_validated():
    assert config.validate({})["http"] is None
    assert config.validate({"http": {"port": 2180}})["http"] == {"port": 2180, "host": "127.0.0.1"}
    for bad, message in (({"port": 0}, "http.port"), ({"port": 70000}, "http.port"), ({"port": "80"}, "http.port"),
                         ({"port": True}, "http.port"), ({}, "http.port"), ({"port": 80, "host": ""}, "http.host"),
                         ({"port": 80, "path": "/"}, "unknown setting http.path"), ("on", "http must be an object")):
        with pytest.raises(config.ConfigError, match=message):
            config.validate({"http": bad})


def test_busy_port_leaves_the_sensor_running(door_model, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with SimulatedCamera(preset="office", seed=0, start="12:00", auth=None, default_resolution="320x180") as cam:
            cfg = config.validate({"model": str(door_model / "model.cml"),
                                   "camera": {"url": cam.url, "resolution": "320x180"}, "fps": 50, "max_frames": 2,
                                   "stats_every": 0, "http": {"port": port}})
            app = App(cfg)
            app.run()
            app.close()
    assert app.frames == 2 and app.http is None
