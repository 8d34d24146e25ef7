"""`camlytics fleet status`: what every sensor's edge app last published on the fleet's MQTT broker.

The edge apps publish retained messages (edge/publish.py: availability, state, attributes under
PREFIX/CAMERA_SENSOR/), so a subscriber gets the latest of each at once; the command waits at most
`--wait` seconds and stops as soon as every sensor has all three.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass

from camlytics.errors import FleetError
from camlytics.fleet.config import Fleet, SensorSpec, add_fleet_option, load_fleet

PARTS = ("availability", "state", "attributes")


@dataclass
class SensorStatus:
    """The last messages of one sensor ('' / None where none came)."""

    sensor: str
    topic: str  # PREFIX/NODE
    availability: str = ""
    state: str = ""
    confidence: float | None = None
    model_version: str | None = None
    since: float | None = None  # unix time the state began (the app's `since` attribute)

    @property
    def complete(self) -> bool:
        return bool(self.availability and self.state and self.since is not None)


def sensor_topic(fleet: Fleet, sensor: SensorSpec) -> str:
    """PREFIX/NODE_ID, the topic base the sensor's app publishes under (as `fleet deploy` configures it)."""
    from camlytics.fleet.deploy import node_id

    return f"{fleet.mqtt.prefix}/{node_id(sensor.camera, sensor.name)}"


def apply_message(status: SensorStatus, part: str, payload: bytes) -> None:
    """Record one message of the sensor (a malformed attributes payload is ignored, not fatal)."""
    text = payload.decode("utf-8", "replace").strip()
    if part in ("availability", "state"):
        setattr(status, part, text)
        return
    try:
        attributes = json.loads(text)
    except ValueError:
        return
    if not isinstance(attributes, dict):
        return
    number = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None  # noqa: E731
    status.confidence = number(attributes.get("confidence"))
    status.since = number(attributes.get("since"))
    version = attributes.get("model_version")
    status.model_version = str(version) if version else None


def read_status(fleet: Fleet, wait: float) -> list[SensorStatus]:
    """Subscribe to every sensor's topics; return what came within `wait` seconds (less when all came)."""
    import paho.mqtt.client as paho

    if fleet.mqtt is None:
        raise FleetError(f"{fleet.path}: no [mqtt] section: say which broker the edge apps publish to "
                         "(host, port, prefix)")
    statuses = {sensor_topic(fleet, s): SensorStatus(s.key, sensor_topic(fleet, s)) for s in fleet.sensors()}
    user, password = fleet.mqtt.credentials()
    lock, done, subscribed = threading.Lock(), threading.Event(), threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason, properties=None) -> None:  # noqa: ARG001
        if reason.is_failure:
            refused.append(str(reason))
            done.set()
            return
        client.subscribe([(f"{topic}/{part}", 1) for topic in statuses for part in PARTS])

    def on_message(client, userdata, message) -> None:  # noqa: ARG001
        topic, _, part = message.topic.rpartition("/")
        with lock:
            if topic in statuses and part in PARTS:
                apply_message(statuses[topic], part, message.payload)
            if all(s.complete for s in statuses.values()):
                done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"camlytics-fleet-status-{time.time_ns()}")
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect, client.on_message = on_connect, on_message
    client.on_subscribe = lambda *args: subscribed.set()
    broker = f"{fleet.mqtt.host}:{fleet.mqtt.port}"
    try:
        client.connect(fleet.mqtt.host, fleet.mqtt.port, keepalive=30)
    except OSError as exc:
        raise FleetError(f"cannot reach the MQTT broker {broker} ({exc.strerror or exc})") from None
    client.loop_start()
    try:
        done.wait(wait)
    finally:
        client.disconnect()
        client.loop_stop()
    if refused:
        raise FleetError(f"the MQTT broker {broker} refused the connection: {refused[0]} (check "
                         f"{fleet.mqtt.username_env or 'username_env'} / {fleet.mqtt.password_env or 'password_env'})")
    if not subscribed.is_set():
        raise FleetError(f"the MQTT broker {broker} did not acknowledge the subscription within {wait:g} s")
    with lock:
        return [statuses[sensor_topic(fleet, s)] for s in fleet.sensors()]


def age(since: float | None, now: float) -> str:
    """'3m 20s' since a unix time ('' when unknown)."""
    if since is None:
        return ""
    seconds = max(0, int(now - since))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{v}{unit}" for v, unit in parts if v][:2]
    return " ".join(shown) or "0s"


def print_table(fleet: Fleet, statuses: list[SensorStatus]) -> None:
    """A row per sensor: availability, state, confidence, model version, how long the state has held."""
    from rich.console import Console
    from rich.table import Table

    now = time.time()
    table = Table(title=f"fleet {fleet.path}: broker {fleet.mqtt.host}:{fleet.mqtt.port}")
    for column in ("sensor", "availability", "state", "confidence", "model version", "state for", "topic"):
        table.add_column(column, overflow="fold")
    colour = {"online": "green", "offline": "red"}
    for s in statuses:
        availability = s.availability or "no message"
        table.add_row(s.sensor, f"[{colour.get(s.availability, 'yellow')}]{availability}", s.state or "-",
                      "-" if s.confidence is None else f"{s.confidence:.2f}", s.model_version or "-",
                      age(s.since, now) or "-", s.topic)
    console = Console(width=max(120, Console().width))
    console.print(table)
    console.print(f"{sum(s.availability == 'online' for s in statuses)}/{len(statuses)} sensors online",
                  highlight=False)


def run_status(args: argparse.Namespace) -> int:
    """Print every sensor's last published status; 0 only if all are online."""
    from camlytics.validate import check_positive

    check_positive("--wait", args.wait)
    fleet = load_fleet(args.fleet)
    statuses = read_status(fleet, args.wait)
    if args.json:
        json.dump({"fleet": str(fleet.path), "sensors": [asdict(s) for s in statuses]}, sys.stdout, indent=2)
        print()
    else:
        print_table(fleet, statuses)
    return 0 if all(s.availability == "online" for s in statuses) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fleet status`."""
    p = subparsers.add_parser(
        "status", help="show each sensor's availability, state and model version from MQTT",
        description="Subscribe to the fleet's MQTT broker ([mqtt] in the fleet file) and print, for every "
        "sensor, what its edge app last published: availability (online/offline), state, confidence, model "
        "version and how long the state has held. The messages are retained, so this is immediate; it waits "
        "at most --wait seconds for sensors that have published nothing. Exit 0 only if every sensor is online.")
    add_fleet_option(p)
    p.add_argument("--wait", type=float, default=3.0, metavar="S", help="seconds to wait for messages (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_status)
