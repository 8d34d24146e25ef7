"""The state sensor with N classes and an `unknown` state: the tracker, the config that sets it up, the
Home Assistant discovery it publishes, and the whole edge app in every runtime that decides states
(the MicroPythons of the `micropython` fixture, CPython, and CPython with the model compiled to C).

The app runs against a scripted camera on loopback (each snapshot request gets the next JPEG of a
script, then the last one again) with tiny int8 test models whose classes are renamed; the script's
JPEGs are picked by what the edge code itself predicts for them on the host.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from camlytics.edge import config
from camlytics.edge.publish import Topics, binary_states, discovery_config, ha_component
from camlytics.edge.tracker import UNKNOWN, StateTracker, default_active_class
from tests.conftest import find_free_port
from tests.edge.conftest import SRC, micropython_executable
from tests.edge.mqtt_helpers import Subscriber

OCCUPANCY3 = ["empty", "occupied", "unknown"]
EMPTY, OCCUPIED, UNK = 0, 1, 2


# --- the tracker ---------------------------------------------------------------------------------


def feed(tracker, seq):
    return [tracker.update(c, p) for c, p in seq]


def test_a_class_named_unknown_is_debounced_like_any_state():
    t = StateTracker(OCCUPANCY3, stable_frames=3)
    feed(t, [(OCCUPIED, 0.9)] * 3)
    lone = t.update(UNK, 0.95)
    assert lone.vote == UNKNOWN and lone.surprise == "unknown" and not lone.changed and t.state == "occupied"
    back = t.update(OCCUPIED, 0.9)
    assert back.surprise == "flip" and t.state == "occupied"
    ups = feed(t, [(UNK, 0.95)] * 3)
    assert [u.surprise for u in ups] == ["unknown", None, None]  # the first frame of a spell is kept
    assert [u.changed for u in ups] == [False, False, True] and t.state == UNKNOWN
    assert (t.raw_class, t.raw_confidence) == ("unknown", 0.95) and t.unknown_votes == 4
    ups = feed(t, [(EMPTY, 0.9)] * 3)
    assert ups[-1].changed and t.state == "empty" and t.changes == 3


def test_below_min_confidence_a_frame_votes_unknown_even_under_the_threshold():
    t = StateTracker(["closed", "open"], stable_frames=2, threshold=0.6, min_confidence=0.8)
    feed(t, [(1, 0.95)] * 2)
    assert t.state == "open"
    up = t.update(1, 0.7)  # over the vote threshold, under min_confidence: not "open" but unknown
    assert up.vote == UNKNOWN and up.raw_class == "open" and up.raw_confidence == 0.7 and up.surprise == "unknown"
    up = t.update(0, 0.55)  # under both: still an unknown vote (not an uncertain one), and it confirms
    assert up.vote == UNKNOWN and up.changed and t.state == UNKNOWN and t.raw_class == "closed"
    assert abs(t.confidence - (0.7 + 0.55) / 2) < 1e-9
    feed(t, [(1, 0.81)] * 2)
    assert t.state == "open"


def test_without_min_confidence_low_frames_stay_uncertain():
    t = StateTracker(["closed", "open"], stable_frames=2, threshold=0.6, low_streak=2)
    feed(t, [(0, 0.9)] * 2)
    ups = feed(t, [(1, 0.55), (1, 0.52)])
    assert [u.vote for u in ups] == [None, None] and ups[1].surprise == "low_confidence" and t.state == "closed"


def test_tracker_rejects_bad_settings():
    for kwargs in ({"min_confidence": 1.0}, {"min_confidence": -0.1}):
        with pytest.raises(ValueError, match="min_confidence"):
            StateTracker(["a", "b"], **kwargs)
    with pytest.raises(ValueError, match="other than 'unknown'"):
        StateTracker(["unknown"])


def test_unknown_state_under_micropython(micropython):
    out = micropython("""
from camlytics.edge.tracker import StateTracker
t = StateTracker(["empty", "occupied", "unknown"], stable_frames=2, min_confidence=0.7)
seq = [(1, 0.9), (1, 0.9), (2, 0.9), (1, 0.9), (0, 0.65), (1, 0.5), (0, 0.9), (0, 0.9)]
print(" ".join("%s/%s/%s" % (t.update(c, p).state, t.last_vote, t.raw_class) for c, p in seq))
""")
    assert out.split() == ["None/occupied/occupied", "occupied/occupied/occupied", "occupied/unknown/unknown",
                           "occupied/occupied/occupied", "occupied/unknown/empty", "unknown/unknown/occupied",
                           "unknown/empty/empty", "empty/empty/empty"]


# --- config and Home Assistant discovery -----------------------------------------------------------


def test_min_confidence_and_active_class_are_validated():
    assert config.validate({})["min_confidence"] is None and config.validate({})["active_class"] is None
    assert config.validate({"min_confidence": 0})["min_confidence"] == 0
    for bad in (1, 1.0, -0.01, "0.5", True):
        with pytest.raises(config.ConfigError, match=r"min_confidence must be a number in \[0, 1\)"):
            config.validate({"min_confidence": bad})
    for bad in ("", 3):
        with pytest.raises(config.ConfigError, match="active_class must be a class name"):
            config.validate({"active_class": bad})


def test_config_min_confidence_overrides_the_model_and_classes_must_be_the_models():
    meta = {"classes": ["empty", "occupied"], "min_confidence": 0.7}
    resolve = config.resolve_states
    assert resolve(config.validate({}), meta) == (0.7, "occupied", "occupied")
    assert resolve(config.validate({"min_confidence": 0.0}), meta)[0] == 0.0  # the config wins, even at 0
    assert resolve(config.validate({"min_confidence": 0.9}), meta)[0] == 0.9
    assert resolve(config.validate({}), {"classes": ["a", "b"]})[0] == 0.0  # a model without the key
    cfg = config.validate({"active_class": "empty", "virtual_input": {"port": 3}})
    assert resolve(cfg, meta) == (0.7, "empty", "empty")
    cfg = config.validate({"virtual_input": {"port": 3, "active_state": "empty"}})
    assert resolve(cfg, meta)[1:] == ("occupied", "empty")
    for raw, message in (({"active_class": "open"}, "active_class must be one of the model's classes empty, "
                                                    "occupied, got 'open'"),
                         ({"active_class": "unknown"}, "the unknown state drives nothing"),
                         ({"virtual_input": {"active_state": "open"}}, "virtual_input.active_state must be one")):
        with pytest.raises(config.ConfigError, match=message):
            resolve(config.validate(raw), meta)
    with pytest.raises(config.ConfigError, match="the model's min_confidence"):
        resolve(config.validate({}), {"classes": ["a", "b"], "min_confidence": 1.5})


def test_default_active_class():
    assert default_active_class(["closed", "open"]) == "open"
    assert default_active_class(["occupied", "empty", "unknown"]) == "occupied"
    assert default_active_class(["unknown", "red", "green", "blue"]) == "green"  # the second real class
    assert default_active_class(["only", "unknown"]) == "only"
    assert default_active_class(["off", "on"], preferred="off") == "off"  # the model's own say


def test_home_assistant_discovery_per_kind_of_model():
    topics = Topics(node_id="spot")

    def cfg(classes, meta=None):
        return json.loads(discovery_config(topics, classes, "Spot", "m", meta=meta))

    door = cfg(["closed", "open", "unknown"])
    assert (door["device_class"], door["payload_on"], door["payload_off"]) == ("door", "open", "closed")
    assert "None" in door["value_template"] and "'unknown'" in door["value_template"]
    occupancy = cfg(["empty", "occupied"])
    assert (occupancy["device_class"], occupancy["payload_on"], occupancy["payload_off"]) == \
        ("occupancy", "occupied", "empty")
    assert ha_component(["empty", "occupied"]) == "binary_sensor"
    assert topics.discovery_topic("binary_sensor") == "homeassistant/binary_sensor/spot/state/config"
    # another pair: binary only when the model says which class is "on"
    meta = {"active_class": "present", "device_class": "presence"}
    present = cfg(["absent", "present"], meta)
    assert (present["device_class"], present["payload_on"], present["payload_off"]) == \
        ("presence", "present", "absent")
    assert binary_states(["absent", "present"], {"active_class": "absent"}) == ("absent", "present", None)
    for classes, meta in ((["absent", "present"], None), (OCCUPANCY3[:2] + ["dock"], None),
                          (["empty", "car", "van", "unknown"], None)):
        enum = cfg(classes, meta)
        assert ha_component(classes, meta) == "sensor"
        assert enum["device_class"] == "enum" and enum["options"] == [c for c in classes if c != UNKNOWN] + [UNKNOWN]
        assert "payload_on" not in enum and "value_template" not in enum


def test_home_assistant_value_template_maps_unknown_to_none():
    """Home Assistant renders the binary_sensor template with Jinja2: unknown -> "None", the rest unchanged."""
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Template(json.loads(discovery_config(Topics(), ["closed", "open"]))["value_template"])
    assert [template.render(value=v) for v in ("open", "closed", "unknown")] == ["open", "closed", "None"]


# --- the whole app ----------------------------------------------------------------------------------


def make_model(path: Path, arch: str, seed: int, classes: list[str], **meta) -> Path:
    """A tiny random int8 model (edge.testmodels) with these class names and extra metadata, written to `path`."""
    from camlytics.export.testmodels import random_model

    model = random_model(seed, arch)
    model.meta["classes"] = list(classes)
    model.meta.update(meta)
    path.write_bytes(model.to_bytes())
    return path


def jpeg_candidates(model_file: Path, n: int = 80) -> list[tuple[bytes, int, float]]:
    """(JPEG, top class, its probability) of deterministic test pictures, as the edge code predicts them."""
    from PIL import Image

    from camlytics.edge.infer import Network
    from camlytics.edge.model import load_model
    from camlytics.edge.preprocess import prepare

    model = load_model(model_file.read_bytes())
    net = Network(model)
    h, w, _ = model.input_shape
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        if k < n // 3:  # flat colours
            picture = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (8 * h, 8 * w, 3)).copy()
        else:  # smooth blobs
            coarse = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
            picture = np.array(Image.fromarray(coarse).resize((8 * w, 8 * h), Image.BILINEAR))
        buf = io.BytesIO()
        Image.fromarray(picture).save(buf, "JPEG", quality=90)
        index, scores = net.predict(prepare(buf.getvalue(), model.meta))
        out.append((buf.getvalue(), index, scores[index]))
    return out


def pick(candidates, index: int, lo: float, hi: float = 1.01) -> tuple[bytes, float]:
    """A candidate JPEG the model gives class `index` with a probability in [lo, hi)."""
    for data, i, p in candidates:
        if i == index and lo <= p < hi:
            return data, p
    raise AssertionError(f"no test picture of class {index} with probability in [{lo}, {hi})")


class ScriptedCamera:
    """A loopback VAPIX stand-in: snapshot k is script[k] (the last one from then on); it records
    virtual-input calls and, at /hook, webhook POSTs."""

    def __init__(self, script: list[bytes]) -> None:
        camera = self
        self.script = list(script)
        self.served = 0
        self.virtual_inputs: list[tuple[str, int]] = []
        self.hooks: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.startswith("/axis-cgi/jpg/image.cgi"):
                    body = camera.script[min(camera.served, len(camera.script) - 1)]
                    camera.served += 1
                    self._answer(200, "image/jpeg", body)
                elif (m := re.match(r"/axis-cgi/virtualinput/(activate|deactivate)\.cgi\?.*port=(\d+)", self.path)):
                    camera.virtual_inputs.append((m.group(1), int(m.group(2))))
                    self._answer(200, "text/xml", b"<VirtualInputResponse><Success/></VirtualInputResponse>")
                else:
                    self._answer(404, "text/plain", b"no\n")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                camera.hooks.append(json.loads(body))
                self._answer(204, "text/plain", b"")

            def _answer(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AppProcess:
    """The edge app (`-m MODULE CONFIG`) in a subprocess of `argv`; its stdout lines collected by a thread."""

    def __init__(self, argv: list[str], env: dict, cfg: dict, workdir: Path, module: str = "camlytics.edge.app"):
        path = workdir / "config.json"
        path.write_text(json.dumps(cfg))
        self.proc = subprocess.Popen([*argv, "-m", module, str(path)], env=env, cwd=workdir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict]:
        return [json.loads(line[6:]) for line in list(self.lines) if line.startswith("EVENT ")]

    def wait_event(self, state: str, timeout: float) -> dict:
        """The first EVENT into `state` (the app keeps running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["state"] == state:
                    return event
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no change to {state!r} within {timeout} s; last lines: {self.lines[-15:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        assert not any("Traceback" in line for line in self.lines), self.lines[-20:]


def micropython_argv(mp) -> tuple[list[str], dict]:
    """argv prefix and environment that run the edge package in the fixture's MicroPython."""
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(mp.path or [".frozen", str(SRC)]))
    return [*(mp.interpreter or [str(micropython_executable())]), "-X", "heapsize=4M"], env


def cpython_argv() -> tuple[list[str], dict]:
    return [sys.executable], dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))


def get_json(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url, timeout=20) as response:
        return json.loads(response.read())


def three_class_script(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A ["empty", "occupied", "unknown"] model and frames E E E E O O O O U O U U U (U from then on)."""
    model = make_model(tmp_path / "occupancy3.cml", "rgb", 3, OCCUPANCY3)
    cands = jpeg_candidates(model)
    e, o, u = (pick(cands, k, 0.9)[0] for k in (EMPTY, OCCUPIED, UNK))
    return model, [e] * 4 + [o] * 4 + [u, o] + [u] * 3


def run_three_classes(argv, env, tmp_path, mosquitto=None, slowdown=1.0, module="camlytics.edge.app") -> dict:
    """The three-class scenario in one runtime; what it produced (events, camera calls, MQTT, status, spool)."""
    model, script = three_class_script(tmp_path)
    camera = ScriptedCamera(script)
    port = find_free_port()
    cfg = {"model": str(model), "camera": {"url": camera.url, "resolution": None}, "fps": 20, "stats_every": 0,
           "virtual_input": {"port": 4}, "webhook": {"url": camera.url + "/hook"},
           "spool": {"dir": str(tmp_path / "spool")}, "http": {"port": port}}
    sub = None
    if mosquitto is not None:
        sub = Subscriber(mosquitto.host, mosquitto.port)
        cfg["mqtt"] = {"host": mosquitto.host, "port": mosquitto.port, "node_id": "bay", "ha_discovery": True,
                       "name": "Bay"}
    app = AppProcess(argv, env, cfg, tmp_path, module)
    found: dict = {}
    try:
        app.wait_event("unknown", 60 * slowdown)
        found["status"] = get_json(f"http://127.0.0.1:{port}/status")
        if sub is not None:
            sub.wait_for(lambda t, p, r: t == "camlytics/bay/state" and p == "unknown", timeout=20 * slowdown)
            found["attributes"] = json.loads(sub.wait_for(
                lambda t, p, r: t == "camlytics/bay/attributes" and json.loads(p)["raw_class"] == "unknown",
                timeout=20 * slowdown)[1])
            found["discovery"] = json.loads(sub.wait_for(
                lambda t, p, r: t == "homeassistant/binary_sensor/bay/state/config", timeout=20 * slowdown)[1])
            found["states"] = [p for t, p, _ in sub.messages if t == "camlytics/bay/state"]
            found["cleared"] = [p for t, p, r in sub.messages if t == "homeassistant/sensor/bay/state/config"]
        deadline = time.monotonic() + 20 * slowdown
        while len(camera.hooks) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        app.stop()
        camera.close()
        if sub is not None:
            sub.close()
    found.update(events=app.events(), virtual_inputs=camera.virtual_inputs, hooks=camera.hooks,
                 spool=[name.split("-", 1)[1] for name in sorted(os.listdir(tmp_path / "spool"))])
    return found


def check_three_classes(found: dict) -> None:
    """What every runtime must have done with the three-class script."""
    events = found["events"]
    assert [(e["state"], e["previous"]) for e in events] == [("empty", None), ("occupied", "empty"),
                                                             ("unknown", "occupied")]
    assert [e["active"] for e in events] == [False, True, None]
    assert events[-1]["raw_class"] == "unknown" and events[-1]["raw_confidence"] >= 0.9
    # the virtual input follows the active class; unknown leaves it as it was
    assert found["virtual_inputs"] == [("deactivate", 4), ("activate", 4)]
    assert [h["state"] for h in found["hooks"]] == ["empty", "occupied", "unknown"]
    # a lone unknown frame, the flip back, and the first frame of the unknown spell are kept for labelling
    assert found["spool"] == ["unknown.jpg", "flip.jpg", "unknown.jpg"]
    status = found["status"]
    assert status["state"] == "unknown" and status["raw_class"] == "unknown" and status["state_changes"] == 3
    assert status["active_class"] == "occupied" and status["min_confidence"] == 0.0
    assert status["unknown_votes"] >= 4 and status["model"]["classes"] == OCCUPANCY3


def test_three_classes_with_an_unknown_class_in_micropython(micropython, mosquitto, tmp_path):
    argv, env = micropython_argv(micropython)
    found = run_three_classes(argv, env, tmp_path, mosquitto, micropython.slowdown)
    check_three_classes(found)
    # MQTT: the states as published; empty/occupied (+ unknown) is an occupancy binary_sensor whose template
    # makes "unknown" Home Assistant's unknown; the raw class in the attributes
    states = found["states"]
    assert states == ["empty", "occupied", "unknown"], states
    discovery = found["discovery"]
    assert (discovery["device_class"], discovery["payload_on"], discovery["payload_off"]) == \
        ("occupancy", "occupied", "empty")
    assert discovery["value_template"] == "{{ 'None' if value == 'unknown' else value }}"
    assert discovery["state_topic"] == "camlytics/bay/state" and discovery["name"] == "Bay"
    assert found["cleared"] == [""]  # an enum sensor of an earlier model on this node is removed
    attributes = found["attributes"]
    assert attributes["raw_class"] == "unknown" and 0.9 <= attributes["raw_confidence"] <= 1.0
    assert attributes["changes"] == 3 and 0.9 <= attributes["confidence"] <= 1.0


@pytest.mark.parametrize("runtime", ["python", "c"])
def test_three_classes_with_an_unknown_class_on_the_host(runtime, tmp_path):
    """`camlytics run --runtime python|c`: the same app under CPython, inference in numpy or in generated C."""
    argv, env = cpython_argv()
    module = "camlytics.runtime.c_app" if runtime == "c" else "camlytics.edge.app"
    check_three_classes(run_three_classes(argv, env, tmp_path, module=module))


VEHICLES = ["empty", "car", "van"]


def low_confidence_setup(tmp_path: Path, min_confidence: float | None = 0.9) -> tuple[Path, list[bytes], float]:
    """An ["empty", "car", "van"] model (metadata min_confidence) and frames C C C C L (L from then on): L is
    a picture of class "empty" whose probability is under min_confidence."""
    meta = {} if min_confidence is None else {"min_confidence": min_confidence}
    model = make_model(tmp_path / "vehicles.cml", "rgb", 3, VEHICLES, **meta)
    cands = jpeg_candidates(model)
    sure, _ = pick(cands, 1, 0.95)
    low, p = pick(cands, 0, 0.5, 0.85)
    return model, [sure] * 4 + [low], p


def test_low_confidence_frames_make_the_state_unknown_in_micropython(micropython, mosquitto, tmp_path):
    model, script, low_p = low_confidence_setup(tmp_path)
    camera = ScriptedCamera(script)
    sub = Subscriber(mosquitto.host, mosquitto.port)
    argv, env = micropython_argv(micropython)
    cfg = {"model": str(model), "camera": {"url": camera.url, "resolution": None}, "fps": 20, "stats_every": 0,
           "virtual_input": {"port": 1}, "tracker": {"stable_frames": 2},
           "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "node_id": "dock", "ha_discovery": True}}
    app = AppProcess(argv, env, cfg, tmp_path)
    slow = micropython.slowdown
    try:
        unknown = app.wait_event("unknown", 60 * slow)
        sub.wait_for(lambda t, p, r: t == "camlytics/dock/state" and p == "unknown", timeout=20 * slow)
        _, payload, retained = sub.wait_for(
            lambda t, p, r: t == "camlytics/dock/attributes" and json.loads(p)["raw_class"] == "empty",
            timeout=20 * slow)
        discovery = json.loads(sub.wait_for(lambda t, p, r: t == "homeassistant/sensor/dock/state/config" and p,
                                            timeout=20 * slow)[1])
    finally:
        app.stop()
        camera.close()
        sub.close()
    assert [e["state"] for e in app.events()] == ["car", "unknown"]
    # "empty" was the top class, but under the model's min_confidence: unknown, not a wrong "empty"
    assert unknown["raw_class"] == "empty" and abs(unknown["raw_confidence"] - low_p) < 1e-3
    attributes = json.loads(payload)
    assert abs(attributes["raw_confidence"] - low_p) < 1e-3 and attributes["raw_confidence"] < 0.9
    assert any("min_confidence 0.90" in line for line in app.lines)
    # three classes: an enum sensor, with "unknown" among its options
    assert discovery["device_class"] == "enum" and discovery["options"] == VEHICLES + ["unknown"]
    assert camera.virtual_inputs == [("activate", 1)]  # car, the second class; unknown leaves the port alone


def test_config_min_confidence_overrides_the_models(tmp_path):
    """With min_confidence 0 in the config the same frames give "empty", the model's 0.9 notwithstanding."""
    model, script, _ = low_confidence_setup(tmp_path)
    camera = ScriptedCamera(script)
    argv, env = cpython_argv()
    cfg = {"model": str(model), "camera": {"url": camera.url, "resolution": None}, "fps": 50, "stats_every": 0,
           "tracker": {"stable_frames": 2, "threshold": 0.4}, "min_confidence": 0}
    app = AppProcess(argv, env, cfg, tmp_path)
    try:
        app.wait_event("empty", 60)
    finally:
        app.stop()
        camera.close()
    assert [e["state"] for e in app.events()] == ["car", "empty"]


def test_an_active_class_the_model_lacks_is_one_error_line(tmp_path):
    model, _, _ = low_confidence_setup(tmp_path, None)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": str(model), "active_class": "open"}))
    argv, env = cpython_argv()
    proc = subprocess.run([*argv, "-m", "camlytics.edge.app", str(path)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stdout.strip() == ("camlytics-edge: error: active_class must be one of the model's classes "
                                   "empty, car, van, got 'open'")
