"""The state-sensor app that runs on the camera: fetch -> decode -> preprocess -> infer -> track
-> publish, at a configured rate, from a JSON config file.

Run it with `micropython -m camlytics.edge.app config.json` (on the camera, from the ACAP
launcher) or `python -m camlytics.edge.app config.json`. It survives a camera that errors or
disappears (backoff, keeps going) and a broker that restarts (reconnect, re-publish the retained
state); its memory is stable (buffers are reused; `stats` lines report the heap).

Log lines go to stdout, one per event, prefixed `camlytics-edge:`; a state change is also printed
as `EVENT {json}` so a supervising process can read it.
"""

import gc
import json
import sys

from camlytics.edge import config as config_mod
from camlytics.edge import http, jpeg, status
from camlytics.edge.compat import IS_MICROPYTHON, sleep_ms, ticks_diff, ticks_ms, wall_time
from camlytics.edge.infer import Network
from camlytics.edge.model import load_model
from camlytics.edge.mqtt import MQTTClient, ReconnectingPublisher
from camlytics.edge.preprocess import prepare
from camlytics.edge.publish import Topics, attributes_payload, discovery_config, ha_component
from camlytics.edge.spool import Spool
from camlytics.edge.tracker import UNKNOWN, StateTracker


def log(message):
    """One log line on stdout (flushed: a supervisor reads it live)."""
    print("camlytics-edge: " + message)
    flush = getattr(sys.stdout, "flush", None)
    if flush:
        flush()


def heap_used():
    """Bytes allocated on the MicroPython heap after a collection (0 on CPython)."""
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0


class App:
    """One camera, one model, the configured outputs."""

    def __init__(self, cfg, model_bytes=None, network=None):
        self.cfg = cfg
        self.model = load_model(model_bytes if model_bytes is not None else cfg["model"])
        self.meta = self.model.meta
        if cfg["roi"]:  # the installer moved the camera or re-drew the door: same model, new crop
            self.meta = dict(self.meta)
            self.meta["preprocess"] = dict(self.meta.get("preprocess") or {}, roi=list(cfg["roi"]))
        self.classes = self.meta["classes"]
        # min_confidence: config over model; active_class: what "on" means (virtual input, webhook "active")
        self.min_confidence, self.active_class, self.vi_class = config_mod.resolve_states(cfg, self.meta)
        # `network(model, cfg)` swaps the inference engine (the host's C runtime for `camlytics run --runtime c`)
        self.net = network(self.model, cfg) if network else Network(self.model, backend=cfg["backend"])
        self.model_name = self.meta.get("name", "camlytics")
        self.model_version = cfg["model_version"]
        cam = cfg["camera"]
        self.camera = http.Client(cam["user"], cam["password"], timeout=cam["timeout"])
        query = "compression=%d" % cam["compression"]
        if cam["resolution"]:
            query += "&resolution=" + cam["resolution"]
        self.snapshot_url = cam["url"].rstrip("/") + "/axis-cgi/jpg/image.cgi?" + query
        tr = cfg["tracker"]
        self.tracker = StateTracker(self.classes, tr["stable_frames"], tr["threshold"], tr["low_streak"],
                                    self.min_confidence)
        self.since = None
        self.frames = 0
        self.camera_errors = 0
        self.published_state = None
        self.mqtt = None
        self.topics = None
        if cfg["mqtt"]:
            mq = cfg["mqtt"]
            self.topics = Topics(mq["prefix"], mq["node_id"], mq["discovery_prefix"])
            client = MQTTClient(mq["client_id"] or ("camlytics-" + mq["node_id"]), mq["host"], mq["port"],
                                mq["user"], mq["password"], keepalive=mq["keepalive"],
                                tls=mq["tls"], ca_file=mq["ca_file"])
            client.set_last_will(self.topics.availability, "offline", retain=True, qos=1)
            self.mqtt = ReconnectingPublisher(client, on_connect=self._on_mqtt_connect, log=log)
        self.spool = Spool(cfg["spool"]["dir"], cfg["spool"]["max_bytes"], cfg["spool"]["max_files"]) if cfg["spool"] else None
        self.timings = {"fetch": 0, "decode": 0, "infer": 0, "publish": 0}
        self.seen = self.failed = self.camera_failures = 0  # JPEGs received, undecodable, camera errors (total)
        self.started = wall_time()
        self.http = None  # the status endpoint (edge.status), listening while run() runs

    # --- outputs ------------------------------------------------------------------------------

    def _on_mqtt_connect(self, pub):
        """After every (re)connect: availability, discovery config, then the retained state."""
        mq = self.cfg["mqtt"]
        client = pub.client
        client.publish(self.topics.availability, "online", retain=True, qos=1)
        if mq["ha_discovery"]:
            component = ha_component(self.classes, self.meta)
            payload = discovery_config(self.topics, self.classes, mq["name"], self.model_name, meta=self.meta)
            client.publish(self.topics.discovery_topic(component), payload, retain=True, qos=1)
            # a new model of the other kind on this node: remove the old entity (an empty retained config)
            other = "sensor" if component == "binary_sensor" else "binary_sensor"
            client.publish(self.topics.discovery_topic(other), "", retain=True, qos=1)
        if self.tracker.state is not None:
            self._publish_state(client)

    def _publish_state(self, client):
        client.publish(self.topics.state, self.tracker.state, retain=True, qos=1)
        tr = self.tracker
        client.publish(self.topics.attributes, attributes_payload(
            tr.confidence, self.since, tr.changes, self.model_name, self.frames, tr.raw_class, tr.raw_confidence,
            self.model_version), retain=True)

    def _state_changed(self, previous):
        state = self.tracker.state
        tr = self.tracker
        event = {"state": state, "previous": previous, "confidence": round(tr.confidence, 4),
                 "active": None if state == UNKNOWN else state == self.active_class,
                 "raw_class": tr.raw_class, "raw_confidence": round(tr.raw_confidence, 4),
                 "time": self.since, "frame": self.frames, "model": self.model_name}
        print("EVENT " + json.dumps(event))
        log("state %s (confidence %.2f)" % (state, self.tracker.confidence))
        if self.mqtt and self.mqtt.ensure():
            try:
                self._publish_state(self.mqtt.client)
            except Exception as exc:  # noqa: BLE001 - a broken broker must not stop the sensor
                self.mqtt._failed(exc)
        vi = self.cfg["virtual_input"]
        if vi and state != UNKNOWN:  # a port is on or off: unknown leaves it as it was rather than guess
            action = "activate" if state == self.vi_class else "deactivate"
            url = self.cfg["camera"]["url"].rstrip("/") + "/axis-cgi/virtualinput/%s.cgi?schemaversion=1&port=%d" % (action, vi["port"])
            self._call("virtual input", "GET", url, None, self.camera)
        hook = self.cfg["webhook"]
        if hook:
            self._call("webhook", "POST", hook["url"], json.dumps(event), http.Client(None, None, timeout=5.0),
                       {"Content-Type": "application/json"})

    def _call(self, what, method, url, body, client, headers=None):
        try:
            response = client.request(method, url, body=body, headers=headers)
            if response.status >= 300:
                log("%s: HTTP %d" % (what, response.status))
            elif b"<Error>" in response.body:
                log("%s: camera reported an error" % what)
        except Exception as exc:  # noqa: BLE001 - outputs are best effort, the loop goes on
            log("%s failed: %s" % (what, exc))

    # --- the loop -----------------------------------------------------------------------------

    def step(self):
        """Process one frame; returns the tracker update, or None if the camera failed."""
        t0 = ticks_ms()
        try:
            response = self.camera.request("GET", self.snapshot_url)
            if response.status != 200:
                raise http.HTTPError("camera answered HTTP %d" % response.status)
            jpeg = response.body
        except Exception as exc:  # noqa: BLE001 - camera errors are expected; back off and retry
            self.camera_errors += 1
            self.camera_failures += 1
            if self.camera_errors == 1 or self.camera_errors % 10 == 0:
                log("camera error (%d in a row): %s" % (self.camera_errors, exc))
            return None
        if self.camera_errors:
            log("camera back after %d errors" % self.camera_errors)
            self.camera_errors = 0
        self.seen += 1
        t1 = ticks_ms()
        try:
            tensor = prepare(jpeg, self.meta)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the sensor
            self.failed += 1
            log("cannot decode frame: %s" % exc)
            return None
        t2 = ticks_ms()
        index, scores = self.net.predict(tensor)
        t3 = ticks_ms()
        self.frames += 1
        previous = self.tracker.state
        update = self.tracker.update(index, scores[index])
        if update.changed:
            self.since = wall_time()
            self._state_changed(previous)
        if update.surprise and self.spool:
            self.spool.add(jpeg, update.surprise)
        if self.mqtt:
            self.mqtt.poll()
        t4 = ticks_ms()
        tm = self.timings
        tm["fetch"] += ticks_diff(t1, t0)
        tm["decode"] += ticks_diff(t2, t1)
        tm["infer"] += ticks_diff(t3, t2)
        tm["publish"] += ticks_diff(t4, t3)
        return update

    def run(self, max_frames=None):
        """Loop at the configured rate until max_frames (0/None = forever)."""
        max_frames = max_frames if max_frames is not None else self.cfg["max_frames"]
        period = int(1000 / self.cfg["fps"])
        stats_every = self.cfg["stats_every"]
        backoff = 0
        log("started: model %s, classes %s, active %s, min_confidence %.2f, %s backend, %s JPEG kernels, %s" % (
            self.model_name, ",".join(self.classes), self.active_class, self.min_confidence, self.net.backend,
            jpeg.KERNELS, version()))
        if self.mqtt:
            self.mqtt.ensure()
        self.start_http()
        # Undecodable frames count too: a run over frames that all fail must still end.
        while not max_frames or self.frames + self.failed < max_frames:
            start = ticks_ms()
            update = self.step()
            if update is None:
                backoff = min(max(backoff * 2, 200), 10000)
                if self.mqtt:
                    self.mqtt.poll()
                self.idle(backoff)
                continue
            backoff = 0
            if stats_every and self.frames % stats_every == 0:
                self.stats()
            wait = period - ticks_diff(ticks_ms(), start)
            self.idle(wait)
        self.stats()

    def start_http(self):
        """Listen on the configured http host:port (once); a busy port is logged, the sensor goes on."""
        web = self.cfg["http"]
        if not web or self.http:
            return
        try:
            self.http = status.Server(web["host"], web["port"], lambda path: status.route(self, path))
            log("http endpoint on %s:%d (/status, /spool)" % (web["host"], web["port"]))
        except OSError as exc:
            log("http endpoint off: cannot listen on %s:%d (%s)" % (web["host"], web["port"], exc))

    def idle(self, ms):
        """Wait `ms` milliseconds, answering HTTP clients meanwhile (every poll returns within ms)."""
        if self.http is None:
            if ms > 0:
                sleep_ms(ms)
            return
        start = ticks_ms()
        while True:
            self.http.poll(max(0, min(ms - ticks_diff(ticks_ms(), start), 100)))
            if ticks_diff(ticks_ms(), start) >= ms:
                return

    def stats(self):
        """Log mean per-stage milliseconds and the heap in use."""
        n = max(self.frames, 1)
        tm = self.timings
        log("stats frames=%d fetch=%.1fms decode=%.1fms infer=%.1fms publish=%.1fms heap=%d" % (
            self.frames, tm["fetch"] / n, tm["decode"] / n, tm["infer"] / n, tm["publish"] / n, heap_used()))

    def close(self):
        """Disconnect politely (the broker keeps the retained state, availability goes offline)."""
        if self.http:
            self.http.close()
            self.http = None
        if self.mqtt and self.mqtt.connected:
            try:
                self.mqtt.client.publish(self.topics.availability, "offline", retain=True, qos=1)
            except Exception:  # noqa: BLE001
                pass
            self.mqtt.client.disconnect()


def version():
    """One line: the interpreter, and in the firmware the camlytics build and C module it carries."""
    impl = sys.implementation
    name = {"micropython": "MicroPython", "cpython": "CPython"}.get(impl.name, impl.name)
    line = "camlytics-edge on %s %s" % (name, ".".join(str(v) for v in impl.version[:3]))
    machine = getattr(impl, "_machine", "")
    if machine:
        line += " (%s)" % machine
    try:
        import _camlytics

        line += "; C module v%d, build %s" % (_camlytics.VERSION, _camlytics.BUILD)
    except ImportError:
        line += "; no C module"
    return line


SIGINT = 2  # Linux numbers (every camera architecture); MicroPython has no signal module
SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 15: "SIGTERM"}
_caught = [0]  # the signal CPython's handler saw first (0: none)


def _on_signal(signum, _frame):
    """CPython handler: remember the first signal, stop the app as Ctrl-C does."""
    if not _caught[0]:
        _caught[0] = signum
    raise KeyboardInterrupt


def trap_signals():
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt like SIGINT; the module that does it, or None.

    CPython: the signal module; the firmware: its C module. The PyPI MicroPython has neither (there
    they still end the process, without close()). A signal ignored at start (nohup) stays ignored."""
    try:
        import signal
    except ImportError:
        signal = None
    if signal is not None and hasattr(signal, "SIGTERM"):
        try:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) != signal.SIG_IGN:
                    signal.signal(sig, _on_signal)
        except ValueError:  # main() called from a thread other than the main one: leave them as they are
            return None
        return signal
    try:
        import _camlytics
    except ImportError:
        return None
    if not hasattr(_camlytics, "trap_signals"):  # a firmware built before signals were trapped
        return None
    _camlytics.trap_signals()
    return _camlytics


def stop_signal(trapped):
    """The signal that stopped the app: the one trapped first, else SIGINT (a plain KeyboardInterrupt)."""
    if _caught[0]:
        return _caught[0]
    last = getattr(trapped, "last_signal", None)
    return (last() if last else 0) or SIGINT


def main(argv=None, network=None):
    """Entry point: `app.py CONFIG.json` (`network`: see App)."""
    argv = sys.argv if argv is None else argv
    if len(argv) >= 2 and argv[1] == "--version":
        print(version())
        return 0
    if len(argv) < 2:
        print("usage: camlytics.edge.app CONFIG.json | --version")
        return 2
    try:
        cfg = config_mod.load(argv[1])
        app = App(cfg, network=network)
    except Exception as exc:  # noqa: BLE001 - print one line, no traceback, for bad config/model
        print("camlytics-edge: error: %s" % exc)
        return 2
    trapped = trap_signals()
    code = 0
    try:
        try:
            app.run()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP turned into it by trap_signals()
            code = 128 + stop_signal(trapped)
        finally:
            app.close()
    except KeyboardInterrupt:  # a second signal while closing: the first one's code stands
        code = code or 128 + stop_signal(trapped)
    if code:
        log("stopped by %s" % SIGNAL_NAMES.get(code - 128, "signal %d" % (code - 128)))
    return code


if __name__ == "__main__":
    sys.exit(main())
