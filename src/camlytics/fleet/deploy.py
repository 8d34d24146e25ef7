"""`camlytics fleet deploy`: one ACAP per sensor, bundled for its camera's architecture, deployed where it changed.

Each sensor runs its own edge app on its camera: app name `camlytics_<camera>_<sensor>` (made safe, see
`app_name`), its own status port (`http_ports`), MQTT settings from the fleet file (secrets from the
environment variables the file names, sent to the camera in the param.cgi body, never on a command line).
Other app parameters (e.g. VapixPassword, StableFrames) come from $CAMLYTICS_PARAM_NAME variables and
`--param-file`, as for `camlytics deploy` (camlytics.deploy.params); the fleet file's own settings win.
A sensor is skipped ("unchanged") when the camera runs the registry's version of its model in the same app
build (the package bytes: the same inputs always give the same bytes) with the same parameters (passwords
compared by name only: nothing secret is written to the state file) and the app is still installed.
Cameras are deployed concurrently (at most the fleet's `concurrency` at once), one camera's sensors in order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tarfile
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camlytics.errors import CamlyticsError, DeployError, FleetError
from camlytics.fleet.config import sensor_node_id, url_with_credentials

APP_PREFIX = "camlytics_"
APP_NAME_MAX = 26  # the manifest's appName limit (deploy.manifest.APP_NAME_RE)
PORT_BASE = 8000  # status ports: PORT_BASE + CRC-32(key) % PORT_SPAN, the next free one within the camera
PORT_SPAN = 2000
PARAM_ENV = "CAMLYTICS_PARAM_"  # camlytics.deploy.params.PARAM_ENV_PREFIX (not imported: this module loads fast)
STATE_DIR = "deployed"  # ROOT/deployed/CAMERA/SENSOR.json: what `fleet deploy` last put there


@dataclass(frozen=True)
class DeployTarget:
    """Where one sensor's app goes: the camera (URL with credentials, never printed), the app and its settings."""

    camera: str  # the name the registry records the deploy under
    url: str
    app: str
    params: dict[str, str] = field(default_factory=dict)  # set on the camera (param.cgi) at every deploy
    defaults: dict[str, str] = field(default_factory=dict)  # non-secret ones, also baked into the package


@dataclass
class DeployResult:
    """What happened to one sensor: deployed, unchanged, failed or no model."""

    key: str
    camera: str
    app: str
    version: str = ""
    outcome: str = "failed"
    detail: str = ""


def app_name(camera: str, sensor: str) -> str:
    """`camlytics_<camera>_<sensor>` with '-' as '_'; over 26 characters, cut and ended by a hash of the key."""
    name = APP_PREFIX + sensor_node_id(camera, sensor).replace("-", "_")
    if len(name) <= APP_NAME_MAX:
        return name
    digest = hashlib.sha256(f"{camera}/{sensor}".encode()).hexdigest()[:4]
    return f"{name[:APP_NAME_MAX - 5]}_{digest}"


def node_id(camera: str, sensor: str) -> str:
    """The MQTT node id of a sensor's app: topics PREFIX/<camera>_<sensor>/..."""
    return sensor_node_id(camera, sensor)


def http_ports(camera: Any, base: int = PORT_BASE) -> dict[str, int]:
    """{sensor key: status port} for a camera's sensors: stable per key (a hash), distinct within the camera."""
    ports: dict[str, int] = {}
    for sensor in camera.sensors:
        port = base + zlib.crc32(sensor.key.encode()) % PORT_SPAN
        while port in ports.values():
            port += 1
        ports[sensor.key] = port
    return ports


def camera_url(camera: Any) -> str:
    """The fleet camera's URL with its credentials from the environment."""
    user, password = camera.credentials()
    return url_with_credentials(camera.url, user, password)


def sensor_target(fleet: Any, sensor: Any, port_base: int = PORT_BASE,
                  extra: dict[str, str] | None = None) -> DeployTarget:
    """The DeployTarget of a fleet sensor: its app, status port and the fleet's MQTT settings, plus `extra`
    parameters (environment, --param-file); FleetError when `extra` names one the fleet file sets."""
    camera = fleet.camera(sensor.camera)
    defaults = {"MqttNodeId": node_id(sensor.camera, sensor.name),
                "HttpPort": str(http_ports(camera, port_base)[sensor.key])}
    if camera.resolution:
        defaults["Resolution"] = camera.resolution
    params = dict(defaults)
    if fleet.mqtt is not None:
        mqtt = {"MqttHost": fleet.mqtt.host, "MqttPort": str(fleet.mqtt.port), "MqttPrefix": fleet.mqtt.prefix}
        defaults.update(mqtt)
        user, password = fleet.mqtt.credentials()
        params.update(mqtt, MqttUser=user or "", MqttPassword=password or "")
    clash = sorted(set(extra or {}) & set(params))
    if clash:
        raise FleetError(f"app parameter {', '.join(clash)}: the fleet file sets it for every sensor ([mqtt], the "
                         f"sensor's port and node id, the camera's resolution); remove ${PARAM_ENV}{clash[0]} or "
                         "its --param-file line")
    return DeployTarget(camera=camera.name, url=camera_url(camera), app=app_name(sensor.camera, sensor.name),
                        params={**(extra or {}), **params}, defaults=defaults)


def state_path(root: Path, camera: str, sensor: str) -> Path:
    """ROOT/deployed/CAMERA/SENSOR.json."""
    return Path(root) / STATE_DIR / camera / f"{sensor}.json"


def read_state(path: Path | None) -> dict[str, Any]:
    """The last deploy `fleet deploy` wrote there ({} if none or unreadable: then it deploys again)."""
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_state(path: Path, value: dict[str, Any]) -> None:
    """Replace the state file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def package_manifest(package: Path) -> dict:
    """manifest.json of a package `build_package` just wrote."""
    with tarfile.open(package, "r:gz") as tar:
        return json.loads(tar.extractfile("manifest.json").read())


def params_fingerprint(params: dict[str, str], manifest: dict) -> dict[str, str]:
    """The parameters as the state file keeps them: values, except passwords (their names only)."""
    from camlytics.deploy.params import declared_params

    secret = {n for n, t in declared_params(manifest).items() if "password" in t}
    return {k: "(password)" if k in secret else v for k, v in sorted(params.items())}


def build_package(version: Any, target: DeployTarget, arch: str, workdir: Path,
                  interpreter: str | None = None) -> Path:
    """The .eap of a registered model version for `arch` (the firmware, or the camera's micropython)."""
    from camlytics.deploy.bundle import BundleOptions, build_bundle

    options = BundleOptions(arch=arch, app_name=target.app, friendly_name=f"camlytics {target.app[len(APP_PREFIX):]}",
                            interpreter=interpreter, params=dict(target.defaults))
    return build_bundle(version.path, workdir, options)


def deploy_version(dataset: Path, version: Any, target: DeployTarget, *, state: Path | None = None,
                   interpreter: str | None = None, allow_unsigned: bool = False, force: bool = False,
                   timeout: float = 60.0) -> DeployResult:
    """Bundle `version` for the target camera, install, set parameters, (re)start; record the deploy.

    Returns outcome "unchanged" without touching the camera when `state` says this version and package
    run there and the app is installed. DeployError (one line) when the camera refuses."""
    from camlytics.deploy.params import check_deploy_params
    from camlytics.deploy.vapix_apps import AppsClient
    from camlytics.store.models import deployed, record_deploy

    result = DeployResult(key="", camera=target.camera, app=target.app, version=version.version)
    with AppsClient(target.url, timeout=timeout) as cam, tempfile.TemporaryDirectory(prefix="camlytics-fleet-") as tmp:
        info = cam.device_info()
        arch = "all" if interpreter == "camera" else info.acap_arch
        if arch is None:
            raise DeployError(f"camera {cam.host} reports architecture {info.architecture or '?'}; the camlytics "
                              "firmware is built for armv7hf and aarch64 only")
        package = build_package(version, target, arch, Path(tmp), interpreter)
        digest = hashlib.sha256(package.read_bytes()).hexdigest()
        manifest = package_manifest(package)
        check_deploy_params(target.params, manifest)  # an unknown name or a bad value: nothing uploaded
        fingerprint = params_fingerprint(target.params, manifest)
        installed = {app.name: app for app in cam.list()}
        history = deployed(dataset, target.camera)
        last = read_state(state)
        if (not force and history and history[-1][0] == version.version and last.get("version") == version.version
                and last.get("package_sha256") == digest and last.get("params") == fingerprint
                and target.app in installed):
            result.outcome, result.detail = "unchanged", f"{arch}, {installed[target.app].status.lower()}"
            return result
        if allow_unsigned and (info.os_major or 0) >= 12:
            cam.allow_unsigned()
        cam.upload(package)
        try:
            cam.set_params(target.app, target.params)
            cam.control("restart" if target.app in installed and installed[target.app].status == "Running"
                        else "start", target.app)
        except DeployError:
            if target.app not in installed:  # a new app that cannot run: do not leave it half set up
                try:
                    cam.control("remove", target.app)
                except DeployError:
                    pass
            raise
    record_deploy(dataset, version.version, target.camera)
    if state is not None:
        write_state(state, {"version": version.version, "package_sha256": digest, "app": target.app,
                            "arch": arch, "params": fingerprint, "time": time.time()})
    result.outcome, result.detail = "deployed", f"{arch}, {package.name}"
    return result


def sensor_version(sensor: Any) -> Any | None:
    """The registry version of the sensor's model directory (recorded now if `train` did not), None if none."""
    from camlytics.store.models import record_model

    if not (sensor.model_dir / "model.cml").is_file() or not sensor.dataset.is_dir():
        return None
    return record_model(sensor.dataset, sensor.model_dir)


def deploy_sensor(fleet: Any, sensor: Any, *, extra: dict[str, str], interpreter: str | None,
                  allow_unsigned: bool, force: bool, port_base: int) -> DeployResult:
    """Deploy one sensor; a CamlyticsError becomes a "failed" result."""
    result = DeployResult(key=sensor.key, camera=sensor.camera, app=app_name(sensor.camera, sensor.name))
    try:
        version = sensor_version(sensor)
        if version is None:
            result.outcome, result.detail = "no model", f"nothing in {sensor.model_dir}"
        else:
            target = sensor_target(fleet, sensor, port_base, extra)
            done = deploy_version(sensor.dataset, version, target,
                                  state=state_path(fleet.root, sensor.camera, sensor.name),
                                  interpreter=interpreter, allow_unsigned=allow_unsigned, force=force)
            result.version, result.outcome, result.detail = done.version, done.outcome, done.detail
    except CamlyticsError as exc:
        result.detail = str(exc)
    return result


def deploy_fleet(fleet: Any, *, only: str | None = None, extra: dict[str, str] | None = None,
                 interpreter: str | None = None, allow_unsigned: bool = False, force: bool = False,
                 port_base: int = PORT_BASE, echo: Any = print) -> list[DeployResult]:
    """Deploy every sensor (or `only` one) with the `extra` app parameters; cameras concurrently (at most the
    fleet's concurrency), one camera's sensors in order; a failing sensor or camera is reported and the rest go
    on. The results come in fleet-file order."""
    sensors = [fleet.sensor(only)] if only else fleet.sensors()
    by_camera: dict[str, list[Any]] = {}
    for sensor in sensors:
        by_camera.setdefault(sensor.camera, []).append(sensor)
    results: dict[str, DeployResult] = {}
    lock = threading.Lock()

    def one_camera(camera_sensors: list[Any]) -> None:
        for sensor in camera_sensors:  # in order: one camera installs one app at a time
            result = deploy_sensor(fleet, sensor, extra=dict(extra or {}), interpreter=interpreter,
                                   allow_unsigned=allow_unsigned, force=force, port_base=port_base)
            with lock:
                results[sensor.key] = result
                echo(f"{sensor.key}: {result.outcome}{' ' + result.version if result.version else ''} "
                     f"({result.detail})")

    workers = max(1, min(fleet.concurrency, len(by_camera)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="camlytics-deploy") as pool:
        for done in [pool.submit(one_camera, group) for group in by_camera.values()]:
            done.result()
    return [results[sensor.key] for sensor in sensors]


def print_table(results: list[DeployResult]) -> None:
    """The end-of-run table: one row per sensor."""
    from rich.console import Console
    from rich.table import Table

    table = Table("Sensor", "App", "Version", "Result", "Detail")
    colors = {"deployed": "green", "unchanged": "cyan", "failed": "red", "no model": "yellow"}
    for r in results:
        table.add_row(r.key, r.app, r.version or "-", f"[{colors[r.outcome]}]{r.outcome}[/]", r.detail)
    Console(width=160).print(table)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fleet deploy`."""
    from camlytics.fleet.config import add_fleet_option

    p = subparsers.add_parser(
        "deploy", help="bundle and install every sensor's model on its camera where it changed",
        description="For each sensor with a model (ROOT/models/CAMERA/SENSOR, recorded in its dataset's model "
        "registry): bundle the edge app for the camera's architecture as its own ACAP (camlytics_CAMERA_SENSOR, "
        "its own status port), install it, set its parameters (MQTT from the fleet file, secrets from the "
        "environment) and start it. A sensor whose deployed version and app build are unchanged is skipped. "
        "One camera failing does not stop the others; a table at the end says what happened.")
    add_fleet_option(p)
    p.add_argument("--only", metavar="KEY", help="deploy this sensor only (camera/sensor)")
    p.add_argument("--force", action="store_true", help="deploy even where nothing changed (e.g. after changing "
                   "only a password: passwords are not remembered, so a new one alone is not seen as a change)")
    p.add_argument("--param-file", type=Path, metavar="FILE",
                   help="app parameters for every sensor as NAME=VALUE lines (# comments), e.g. VapixPassword=...; "
                        f"keep it chmod 600. Parameters also come from ${PARAM_ENV}NAME variables; the file "
                        "overrides them; a parameter the fleet file sets (MQTT, port, node id, resolution) is refused")
    p.add_argument("--interpreter", choices=("firmware", "camera"), default="firmware",
                   help="firmware (default): the camlytics firmware for the camera's architecture; camera: an "
                        "'all' package run by the device's own micropython")
    p.add_argument("--port-base", type=int, default=PORT_BASE,
                   help=f"status ports are PORT_BASE + a hash of the sensor key (default {PORT_BASE})")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="AXIS OS 12: let each camera install unsigned apps (a camera-wide setting; needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --allow-unsigned")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`fleet deploy`: exit 0 when no sensor failed, 1 otherwise."""
    from camlytics.fleet.config import load_fleet

    if args.allow_unsigned and not args.yes:
        raise FleetError("--allow-unsigned changes a security setting on every camera: add --yes to confirm")
    if not 1 <= args.port_base <= 65535 - PORT_SPAN:
        raise FleetError(f"--port-base must be in 1..{65535 - PORT_SPAN}, got {args.port_base}")
    from camlytics.deploy.params import gather_params

    fleet = load_fleet(args.fleet)
    extra = gather_params(args.param_file, command="camlytics fleet deploy")
    if args.only:
        fleet.sensor(args.only)  # an unknown key: one error line, not a failed row
    results = deploy_fleet(fleet, only=args.only, extra=extra,
                           interpreter=None if args.interpreter == "firmware" else "camera",
                           allow_unsigned=args.allow_unsigned, force=args.force, port_base=args.port_base)
    print_table(results)
    return 1 if any(r.outcome == "failed" for r in results) else 0
