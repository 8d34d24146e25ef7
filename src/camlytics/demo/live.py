"""The live part of the demo: the ACAP bundled, deployed and started on the simulated camera, its state
events received over MQTT and compared with the scene's true door changes."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from camlytics.constants import DAY
from camlytics.errors import CamlyticsError
from camlytics.sim.camera import SimulatedCamera

APP_NAME = "camlytics_door"
CAMERA_AUTH = ("root", "pass")
TOPIC_PREFIX = "camlytics"


@dataclass
class LiveConfig:
    """How the live run goes: the clock speed, the window and the app's settings."""

    speed: float = 30.0  # simulated seconds per wall-clock second
    seconds: float = 75.0  # wall-clock length of the live window
    lead: float = 8.0  # wall seconds between the app starting and the chosen door event
    fps: float = 5.0  # the app's frame rate (wall clock)
    stable_frames: int = 2


@dataclass
class StateEvent:
    """A state the app published, when it arrived (simulated and wall clock) and what it answered."""

    state: str
    sim_t: float
    wall: float
    true_change: float | None = None  # simulated time of the true change it reports (None: initial state)

    @property
    def delay_sim(self) -> float | None:
        return None if self.true_change is None else self.sim_t - self.true_change


@dataclass
class LiveResult:
    """What the live run saw."""

    start: float
    end: float
    speed: float
    fps: float
    transport: str  # how the events were received
    events: list[StateEvent] = field(default_factory=list)
    true_changes: list[tuple[float, str]] = field(default_factory=list)  # (sim time, new state) in the window
    eap: Path | None = None
    eap_bytes: int = 0
    app_log: str = ""
    app_stats: dict[str, float] = field(default_factory=dict)


def choose_window(preset: str, seed: int, cfg: LiveConfig, truth: Callable[[float], dict] | None = None) -> float:
    """The simulated start time: `lead` wall seconds before the longest door opening of the day (in daylight
    when `truth` is given and the day has one): the clearest event to watch."""
    from camlytics.sim import PRESETS, Timeline

    timeline = Timeline(PRESETS[preset], seed)
    frame_gap = cfg.speed / cfg.fps  # simulated seconds between the app's frames
    needed = 4 * cfg.stable_frames * frame_gap
    lead = cfg.lead * cfg.speed
    intervals = [(a, b) for a, b, _ in timeline.open_intervals() if b - a >= needed and a > lead]
    if truth is not None:
        daylight = [(a, b) for a, b in intervals if truth((a + b) / 2)["light_level"] == "day"]
        intervals = daylight or intervals
    if not intervals:  # no long opening that day: any
        intervals = [(a, b) for a, b, _ in timeline.open_intervals()]
    if not intervals:
        return 12 * 3600.0
    a, _ = max(intervals, key=lambda ab: ab[1] - ab[0])
    return max(0.0, a - lead)


def true_changes(preset: str, seed: int, start: float, end: float) -> list[tuple[float, str]]:
    """(time, "open"/"closed") of every true door change between start and end."""
    from camlytics.sim import PRESETS, Timeline

    out = []
    for a, b, _ in Timeline(PRESETS[preset], seed).open_intervals():
        if start <= a < end:
            out.append((a, "open"))
        if start <= b < end:
            out.append((b, "closed"))
    return sorted(out)


def set_clock(cam: SimulatedCamera, start: float) -> None:
    """Restart the camera's server with its clock at `start` (same port; nothing is installed yet)."""
    cam.stop()
    cam.start_time = start
    cam.start()


def true_change_for(state: str, at: float, changes: list[tuple[float, str]], after: float) -> float | None:
    """The latest true change to `state` in (after, at]: what a state published at `at` reports, or None
    (a false alarm) when the door did not change that way since the previously reported change."""
    times = [t for t, s in changes if s == state and after < t <= at]
    return times[-1] if times else None


def match_changes(events: list[StateEvent], changes: list[tuple[float, str]]) -> None:
    """Give each published state change the true change it reports (the first state reports none)."""
    previous, after = None, float("-inf")
    for event in events:
        if event.state == previous:
            continue
        if previous is not None:
            event.true_change = true_change_for(event.state, event.sim_t, changes, after)
            after = event.true_change if event.true_change is not None else after
        previous = event.state


class MqttFeed:
    """States published on `<prefix>/<node>/state`, received by an independent paho-mqtt client."""

    label = "MQTT"

    def __init__(self, host: str, port: int, cam: SimulatedCamera) -> None:
        import paho.mqtt.client as paho

        self.cam = cam
        self.queue: queue.Queue[StateEvent] = queue.Queue()
        self.connected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"camlytics-demo-{id(self)}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.connected.wait(10)

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:
        client.subscribe(f"{TOPIC_PREFIX}/+/state", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        self.queue.put(StateEvent(msg.payload.decode(errors="replace"), self.cam.sim_time(), time.monotonic()))

    def poll(self) -> list[StateEvent]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class LogFeed:
    """States read from the app's `EVENT {...}` log lines (when there is no MQTT broker)."""

    label = "app log"

    def __init__(self, cam: SimulatedCamera) -> None:
        self.cam = cam
        self.seen = 0
        self.http = httpx.Client(timeout=5.0)

    def poll(self) -> list[StateEvent]:
        text = app_log(self.cam, self.http)
        lines = [line for line in text.splitlines() if line.startswith("EVENT ")]
        out = []
        for line in lines[self.seen:]:
            try:
                out.append(StateEvent(json.loads(line[6:])["state"], self.cam.sim_time(), time.monotonic()))
            except (ValueError, KeyError):
                continue
        self.seen = len(lines)
        return out

    def close(self) -> None:
        self.http.close()


def app_log(cam: SimulatedCamera, client: httpx.Client | None = None) -> str:
    """The app's stdout and stderr as the simulated camera keeps them."""
    get = client.get if client is not None else httpx.get
    reply = get(f"{cam.url}/camlytics-sim/apps/log", params={"name": APP_NAME}, timeout=5.0)
    return reply.text if reply.status_code == 200 else ""


def parse_stats(log: str) -> dict[str, float]:
    """The last `stats frames=... fetch=..ms` line of the app's log as numbers."""
    lines = [line for line in log.splitlines() if " stats frames=" in line]
    if not lines:
        return {}
    out = {}
    for part in lines[-1].split(" stats ", 1)[1].split():
        key, _, value = part.partition("=")
        try:
            out[key] = float(value.removesuffix("ms"))
        except ValueError:
            continue
    return out


def hhmmss(t: float) -> str:
    t = int(t) % int(DAY)
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


def run_live(cam: SimulatedCamera, model_dir: Path, out: Path, cfg: LiveConfig, console: Any,
             broker_host: str | None, broker_port: int | None, transport: str) -> LiveResult:
    """Bundle, deploy and start the app on `cam`, print its state events as they arrive, stop it."""
    from camlytics.deploy.bundle import BundleOptions, build_bundle
    from camlytics.deploy.vapix_apps import AppsClient

    user, password = CAMERA_AUTH
    camera_url = cam.url.replace("http://", f"http://{user}:{password}@")
    with AppsClient(camera_url, timeout=30.0) as apps:
        arch = apps.device_info().acap_arch or "all"  # the camera's architecture, as `bundle --camera` reads it
    try:
        eap = build_bundle(model_dir, out, BundleOptions(app_name=APP_NAME, arch=arch))
        contents = f"manifest, launcher, the camlytics firmware for {arch} with the edge app frozen in, model.cml"
    except CamlyticsError as exc:  # no MicroPython source to build the firmware from: the device's micropython
        console.print(f"[yellow]no {arch} firmware ({exc}); bundling for a camera with its own MicroPython[/]")
        arch = "all"
        eap = build_bundle(model_dir, out, BundleOptions(app_name=APP_NAME))
        contents = "manifest, launcher, edge app as .mpy, model.cml"
    console.print(f"bundled [bold]{eap}[/] ({eap.stat().st_size / 1024:.0f} KiB: {contents})")
    start = choose_window(cam.preset, cam.seed, cfg, cam.truth)
    end = start + cfg.seconds * cfg.speed
    set_clock(cam, start)
    result = LiveResult(start, end, cfg.speed, cfg.fps, transport, eap=eap, eap_bytes=eap.stat().st_size)
    result.true_changes = true_changes(cam.preset, cam.seed, start, end)
    params = {"FrameRate": f"{cfg.fps:g}", "StableFrames": str(cfg.stable_frames), "VapixUser": CAMERA_AUTH[0],
              "VapixPassword": CAMERA_AUTH[1], "MqttHost": broker_host or "", "MqttPrefix": TOPIC_PREFIX,
              "HttpPort": "0"}  # the app's status endpoint is not needed here (and its port may be taken)
    if broker_port:
        params["MqttPort"] = str(broker_port)
    feed: MqttFeed | LogFeed
    try:
        feed = MqttFeed(broker_host, broker_port, cam) if broker_host else LogFeed(cam)
    except ImportError:  # paho-mqtt (the independent subscriber) missing: the app still publishes
        feed, transport = LogFeed(cam), "the app log (paho-mqtt is not installed to subscribe)"
        result.transport = transport
    try:
        with AppsClient(camera_url, timeout=30.0) as apps:
            apps.upload(eap)
            apps.set_params(APP_NAME, params)
            apps.control("start", APP_NAME)
            console.print(f"deployed to the simulated camera (VAPIX upload.cgi, param.cgi, control.cgi) and started; "
                          f"the camera's clock runs at {cfg.speed:g}x from {hhmmss(start)}, the app takes "
                          f"{cfg.fps:g} frames/s (one every {cfg.speed / cfg.fps:g} simulated s)")
            console.print(f"watching for {cfg.seconds:.0f} s ({hhmmss(start)} -> {hhmmss(end)} simulated); "
                          f"events via {transport}\n")
            _watch(cam, feed, result, console, end)
            apps.control("stop", APP_NAME)
    finally:
        feed.close()
    result.app_log = app_log(cam)
    result.app_stats = parse_stats(result.app_log)
    match_changes(result.events, result.true_changes)
    return result


def _watch(cam: SimulatedCamera, feed: Any, result: LiveResult, console: Any, end: float) -> None:
    """Print true door changes and published states in simulated-time order until `end`."""
    pending = list(result.true_changes)
    previous, after = None, float("-inf")
    while True:
        now = cam.sim_time()
        while pending and pending[0][0] <= now:
            t, state = pending.pop(0)
            console.print(f"  {hhmmss(t)}  [dim]truth:[/] door {'opens' if state == 'open' else 'closes'}")
        for event in feed.poll():
            result.events.append(event)
            if event.state == previous:
                continue
            change = true_change_for(event.state, event.sim_t, result.true_changes, after)
            colour = "red" if event.state == "open" else "green"
            if previous is None:
                note = "(first state after start)"
            elif change is None:
                note = "(no true change: a false alarm)"
            else:
                delay = event.sim_t - change
                note = f"{delay:5.1f} s after the true change ({1000 * delay / result.speed:.0f} ms wall)"
                after = change
            console.print(f"  {hhmmss(event.sim_t)}  [bold {colour}]{feed.label} state {event.state}[/]  {note}")
            previous = event.state
        if now >= end or now < result.start:  # past the window (or the day wrapped)
            return
        time.sleep(0.1)
