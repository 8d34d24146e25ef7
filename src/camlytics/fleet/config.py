"""The fleet file (`fleet.toml`): cameras, their sensors, MQTT settings, read and checked in one place.

Every problem is one FleetError line naming the file, the key path (`camera[1].sensor[0].roi`, with the
camera's name when it has one) and the bad value. Secrets never live in the file: a camera or broker names
the environment variables that hold them (`username_env`, `password_env`), read when a command needs them.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from camlytics.errors import CamlyticsError, FleetError
from camlytics.store.dataset import check_classes
from camlytics.urls import parse_url
from camlytics.validate import Roi, check_positive, check_roi, parse_resolution

DEFAULT_FILE = "fleet.toml"
NAME = re.compile(r"[a-z0-9_-]{1,32}")  # camera and sensor names: safe in paths, app names and MQTT topics
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SAMPLERS = ("smart", "time", "hog", "color", "motion", "flips")  # camlytics.sampling.SAMPLERS (not imported:
# the sampling package pulls numpy and PIL, and reading a fleet file should not)
COLLECT_DEFAULTS = {"sampler": "smart", "budget": 300}

FLEET_KEYS = {"root", "concurrency"}
MQTT_KEYS = {"host", "port", "prefix", "username_env", "password_env"}
CAMERA_KEYS = {"name", "url", "username_env", "password_env", "interval", "resolution", "sensor"}
SENSOR_KEYS = {"name", "roi", "classes", "check", "collect", "train"}
COLLECT_KEYS = {"sampler", "budget", "per_hour", "every", "model"}


@dataclass(frozen=True)
class SensorSpec:
    """One visual sensor: a region of one camera with its classes, its dataset and its models."""

    camera: str
    name: str
    roi: tuple[int, int, int, int] | None
    classes: tuple[str, ...]
    collect: Mapping[str, Any]
    train: Mapping[str, object]
    check: Path | None
    root: Path

    @property
    def key(self) -> str:
        """"camera/sensor", the name commands take."""
        return f"{self.camera}/{self.name}"

    @property
    def node_id(self) -> str:
        """The sensor's MQTT node id, "<camera>_<sensor>" (its app name is this with '-' as '_'); unique in a fleet."""
        return sensor_node_id(self.camera, self.name)

    @property
    def dataset(self) -> Path:
        """The sensor's dataset directory: ROOT/datasets/CAMERA/SENSOR."""
        return self.root / "datasets" / self.camera / self.name

    @property
    def model_dir(self) -> Path:
        """The sensor's model directory: ROOT/models/CAMERA/SENSOR."""
        return self.root / "models" / self.camera / self.name


@dataclass(frozen=True)
class CameraSpec:
    """One camera: where it is, which environment variables hold its credentials, its sensors."""

    name: str
    url: str
    username_env: str | None
    password_env: str | None
    interval: float
    resolution: str | None
    sensors: tuple[SensorSpec, ...]

    def credentials(self) -> tuple[str | None, str | None]:
        """(user, password) from the environment; a FleetError names a variable that is not set."""
        return _env(self.username_env, f"camera {self.name!r}"), _env(self.password_env, f"camera {self.name!r}")


@dataclass(frozen=True)
class MqttSpec:
    """The broker the edge apps publish to (and `fleet status` subscribes to)."""

    host: str
    port: int
    prefix: str
    username_env: str | None
    password_env: str | None

    def credentials(self) -> tuple[str | None, str | None]:
        """(user, password) from the environment; a FleetError names a variable that is not set."""
        return _env(self.username_env, "the MQTT broker"), _env(self.password_env, "the MQTT broker")


@dataclass(frozen=True)
class Fleet:
    """A checked fleet file."""

    path: Path
    root: Path
    concurrency: int
    cameras: tuple[CameraSpec, ...]
    mqtt: MqttSpec | None

    def sensors(self) -> list[SensorSpec]:
        """Every sensor, camera by camera, in file order."""
        return [s for camera in self.cameras for s in camera.sensors]

    def sensor(self, key: str) -> SensorSpec:
        """The sensor "camera/name"; a FleetError lists the known keys otherwise."""
        for s in self.sensors():
            if s.key == key:
                return s
        known = ", ".join(s.key for s in self.sensors()) or "none"
        raise FleetError(f"{self.path}: no sensor {key!r} (known: {known})")

    def camera(self, name: str) -> CameraSpec:
        """The camera `name`; a FleetError lists the known names otherwise."""
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise FleetError(f"{self.path}: no camera {name!r} (known: {', '.join(c.name for c in self.cameras)})")


def _env(variable: str | None, who: str) -> str | None:
    """The value of environment variable `variable` (None when none is named); FleetError when it is not set."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise FleetError(f"{who}: environment variable {variable} is not set (the fleet file names it for the "
                         "credentials; export it, or remove the *_env key)")
    return value


def add_fleet_option(parser: argparse.ArgumentParser) -> None:
    """The `--fleet FILE` option every fleet command takes."""
    parser.add_argument("--fleet", default=DEFAULT_FILE, metavar="FILE",
                        help=f"the fleet file (default ./{DEFAULT_FILE}; see docs/fleet.md)")


class _Reader:
    """Checks of one file's values; every error names the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> FleetError:
        return FleetError(f"{self.path}: {where}: {message}")

    def table(self, value: Any, where: str, keys: set[str]) -> dict:
        """A TOML table with only known keys (a typo is an error, not a silently ignored setting)."""
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, got {value!r}")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(keys))})")
        return value

    def string(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise self.fail(where, f"must be {hint or 'a string'}, got {value!r}")
        return value

    def env_name(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        return self.string(value, where, ENV_NAME, "the name of an environment variable (e.g. LOBBY_PASSWORD), "
                           "never the secret itself")

    def positive(self, value: Any, where: str, *, integer: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a positive {'whole ' if integer else ''}number, got {value!r}")
        try:
            return check_positive(f"{self.path}: {where}", value, integer=integer)
        except CamlyticsError as exc:
            raise FleetError(str(exc)) from None


def load_fleet(path: str | Path) -> Fleet:
    """Read and check a fleet file; every problem is one FleetError naming the file, the key and the value."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FleetError(f"fleet file {path} not found (write one: see docs/fleet.md, or pass --fleet FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(f"cannot read fleet file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"{path}: not valid TOML: {exc}") from None
    r = _Reader(path)
    r.table(data, "top level", {"fleet", "mqtt", "camera"})
    section = r.table(data.get("fleet", {}), "[fleet]", FLEET_KEYS)
    root = (path.parent / r.string(section.get("root", "."), "fleet.root", hint="a directory path")).resolve()
    concurrency = int(r.positive(section.get("concurrency", 16), "fleet.concurrency", integer=True))
    mqtt = _mqtt(r, data["mqtt"]) if "mqtt" in data else None
    cameras = data.get("camera", [])
    if not isinstance(cameras, list) or not cameras:
        raise r.fail("camera", "the file must list at least one [[camera]] table")
    specs = tuple(_camera(r, camera, f"camera[{i}]", root) for i, camera in enumerate(cameras))
    _unique(r, [c.name for c in specs], "camera", "camera[{}].name")
    seen: dict[str, str] = {}
    for sensor in (s for camera in specs for s in camera.sensors):
        stem = sensor.node_id.replace("-", "_")  # "a_b"/"c", "a"/"b_c" and "a"/"b-c" would share an app name
        if stem in seen:
            raise FleetError(f"{path}: sensors {seen[stem]} and {sensor.key} would share the app name and MQTT "
                             f"node {stem!r}; rename one")
        seen[stem] = sensor.key
    return Fleet(path=path, root=root, concurrency=concurrency, cameras=specs, mqtt=mqtt)


def url_with_credentials(url: str, user: str | None, password: str | None) -> str:
    """`url` with user:password@ in it (percent-encoded), for the clients that read them from the URL (never shown)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    if not user:
        return url
    parts = urlsplit(url)
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
    return urlunsplit((parts.scheme, f"{auth}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def sensor_node_id(camera: str, sensor: str) -> str:
    """"<camera>_<sensor>": a sensor's MQTT node id (and, with '-' as '_', the stem of its app name)."""
    return f"{camera}_{sensor}"


def _unique(r: _Reader, names: list[str], what: str, where: str) -> None:
    """FleetError on the second use of a name."""
    for i, name in enumerate(names):
        if name in names[:i]:
            raise r.fail(where.format(i), f"{what} name {name!r} is used twice")


def _mqtt(r: _Reader, value: Any) -> MqttSpec:
    section = r.table(value, "[mqtt]", MQTT_KEYS)
    port = section.get("port", 1883)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise r.fail("mqtt.port", f"must be a port number 1..65535, got {port!r}")
    return MqttSpec(host=r.string(section.get("host", "127.0.0.1"), "mqtt.host", re.compile(r"[^\s/:@]+|\[[0-9a-fA-F:.]+\]"),
                                  "a host name or address (no scheme, port or credentials)"),
                    port=port,
                    prefix=r.string(section.get("prefix", "camlytics"), "mqtt.prefix", re.compile(r"[^\s#+]+"),
                                    "an MQTT topic prefix without spaces or wildcards"),
                    username_env=r.env_name(section.get("username_env"), "mqtt.username_env"),
                    password_env=r.env_name(section.get("password_env"), "mqtt.password_env"))


def _camera(r: _Reader, value: Any, where: str, root: Path) -> CameraSpec:
    section = r.table(value, where, CAMERA_KEYS)
    name = r.string(section.get("name"), f"{where}.name", NAME, "a name of 1-32 characters a-z 0-9 _ -")
    where = f"{where} ({name})"
    url = r.string(section.get("url"), f"{where}.url", hint="the camera's URL, e.g. http://192.168.1.20")
    try:
        parsed = parse_url(url)
    except CamlyticsError as exc:
        raise r.fail(f"{where}.url", str(exc)) from None
    if parsed.user is not None or parsed.password is not None:
        raise r.fail(f"{where}.url", "must not hold user:password (secrets stay out of the file: name the "
                     "environment variables in username_env and password_env)")
    resolution = section.get("resolution")
    if resolution is not None:
        try:
            width, height = parse_resolution(r.string(resolution, f"{where}.resolution", hint="WIDTHxHEIGHT"))
        except CamlyticsError as exc:
            raise r.fail(f"{where}.resolution", str(exc)) from None
        resolution = f"{width}x{height}"
    sensors = section.get("sensor", [])
    if not isinstance(sensors, list) or not sensors:
        raise r.fail(where, "must list at least one [[camera.sensor]] table")
    specs = tuple(_sensor(r, s, f"{where}.sensor[{i}]", name, root) for i, s in enumerate(sensors))
    for i, s in enumerate(specs):
        if resolution is not None and s.roi is not None and not Roi(*s.roi).inside(width, height):
            raise r.fail(f"{where}.sensor[{i}] ({s.name}).roi", f"{Roi(*s.roi)} is not inside the camera's "
                         f"{resolution} frames")
    _unique(r, [s.name for s in specs], "sensor", where + ".sensor[{}].name")
    return CameraSpec(name=name, url=url, username_env=r.env_name(section.get("username_env"), f"{where}.username_env"),
                      password_env=r.env_name(section.get("password_env"), f"{where}.password_env"),
                      interval=r.positive(section.get("interval", 5), f"{where}.interval"),
                      resolution=resolution, sensors=specs)


def _sensor(r: _Reader, value: Any, where: str, camera: str, root: Path) -> SensorSpec:
    section = r.table(value, where, SENSOR_KEYS)
    name = r.string(section.get("name"), f"{where}.name", NAME, "a name of 1-32 characters a-z 0-9 _ -")
    where = f"{where} ({name})"
    roi = section.get("roi")
    if roi is not None:
        roi = tuple(check_roi(roi, what=f"{r.path}: {where}.roi", error=FleetError))
    try:
        classes = tuple(check_classes(section.get("classes", ["closed", "open"]), f"{r.path}: {where}.classes"))
    except CamlyticsError as exc:
        raise FleetError(str(exc)) from None
    check = section.get("check")
    if check is not None:
        check = root / r.string(check, f"{where}.check", hint="a check-set dataset directory (relative to root)")
    return SensorSpec(camera=camera, name=name, roi=roi, classes=classes, collect=_collect(r, section, where),
                      train=_train(r, section, where), check=check, root=root)


def _collect(r: _Reader, section: dict, where: str) -> Mapping[str, Any]:
    """The sensor's sampling settings (those of `camlytics collect`), defaults filled in."""
    collect = dict(COLLECT_DEFAULTS) | r.table(section.get("collect", {}), f"{where}.collect", COLLECT_KEYS)
    r.string(collect["sampler"], f"{where}.collect.sampler", re.compile("|".join(SAMPLERS)),
             f"one of {', '.join(SAMPLERS)}")
    collect["budget"] = int(r.positive(collect["budget"], f"{where}.collect.budget", integer=True))
    if "per_hour" in collect:
        collect["per_hour"] = int(r.positive(collect["per_hour"], f"{where}.collect.per_hour", integer=True))
    if "every" in collect:
        if collect["sampler"] != "time":
            raise r.fail(f"{where}.collect.every", "sets the time sampler's spacing; use sampler = \"time\"")
        collect["every"] = r.positive(collect["every"], f"{where}.collect.every")
    if "model" in collect:
        r.string(collect["model"], f"{where}.collect.model", hint="a model directory (relative to root)")
    return MappingProxyType(collect)


def _train(r: _Reader, section: dict, where: str) -> Mapping[str, object]:
    """The sensor's `camlytics train` options, keys with underscores (checked by train when it runs)."""
    train = section.get("train", {})
    if not isinstance(train, dict):
        raise r.fail(f"{where}.train", f"must be a table of `camlytics train` options, got {train!r}")
    for key in train:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            hint = f" (write {key.replace('-', '_')!r})" if "-" in key else ""
            raise r.fail(f"{where}.train", f"option {key!r} is not a `camlytics train` option name{hint}")
    return MappingProxyType(dict(train))
