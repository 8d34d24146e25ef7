"""`camlytics bundle` (build an ACAP .eap), `camlytics deploy` (install it), `camlytics apps` (list/control)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from camlytics.deploy.manifest import check_app_values
from camlytics.errors import DeployError
from camlytics.validate import check_positive

ARCHES = ("armv7hf", "aarch64", "all")


def register(subparsers: Any) -> None:
    """Add `bundle`, `deploy` and `apps`."""
    p = subparsers.add_parser(
        "bundle", help="package a trained model and the edge app as an Axis ACAP (.eap)",
        description="Build APPNAME_MAJ_MIN_PATCH_ARCH.eap: manifest.json (settings a user changes on the camera as "
                    "app parameters), LICENSE, a POSIX sh launcher, a settings page, the model and the edge app "
                    "compiled with mpy-cross. The launcher runs the bundled interpreter (--interpreter) or the "
                    "device's `micropython`. The same inputs always give the same bytes.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory (with model.cml)")
    p.add_argument("--out", default=".", help="output directory or .eap file (default: current directory)")
    p.add_argument("--arch", choices=ARCHES, default="all",
                   help="armv7hf (ARTPEC-6/7), aarch64 (ARTPEC-8/9) or all (default; needs micropython on the camera)")
    p.add_argument("--interpreter", type=Path, metavar="PATH",
                   help="MicroPython binary built for --arch to bundle as lib/micropython (ELF header checked)")
    p.add_argument("--app-name", default="camlytics_door", help="appName: executable and package name")
    p.add_argument("--friendly-name", default="camlytics door sensor", help="name shown in the camera's web pages")
    p.add_argument("--vendor", default="camlytics", help="vendor shown on the camera")
    p.add_argument("--vendor-url", help="vendor home page")
    p.add_argument("--vendor-id", help="Axis-issued vendor id (10 hex digits): writes manifest schema 2 (AXIS OS 13)")
    p.add_argument("--version", default="1.0.0", help="app version MAJOR.MINOR.PATCH (default 1.0.0)")
    p.add_argument("--license", type=Path, help="LICENSE file to ship (default: camlytics's MIT license)")
    defaults = p.add_argument_group("app parameter defaults (users change them on the camera)")
    defaults.add_argument("--mqtt-host", help="MQTT broker host (default: none, MQTT off)")
    defaults.add_argument("--mqtt-port", type=int, help="MQTT broker port (default 1883)")
    defaults.add_argument("--mqtt-prefix", help="MQTT topic prefix (default camlytics)")
    defaults.add_argument("--node-id", help="MQTT node id (default door)")
    defaults.add_argument("--no-ha-discovery", action="store_true", help="do not publish Home Assistant discovery")
    defaults.add_argument("--threshold", type=float, help="minimum vote confidence 0..1 (default 0.6)")
    defaults.add_argument("--stable-frames", type=int, help="frames that must agree (default 3)")
    defaults.add_argument("--fps", help="frames per second (default 1)")
    defaults.add_argument("--resolution", help="snapshot resolution (default 640x360)")
    defaults.add_argument("--camera-user", help="VAPIX user the app uses (default: D-Bus service account); "
                          "set its password on the camera or with `deploy --param VapixPassword=...`")
    defaults.add_argument("--virtual-input", type=int, help="virtual input port set while open (default 0: off)")
    defaults.add_argument("--webhook", help="http:// URL to POST state changes to")
    p.set_defaults(func=bundle_command)

    p = subparsers.add_parser(
        "deploy", help="install an .eap on an Axis camera (VAPIX upload.cgi), optionally set parameters and start it",
        description="Upload APP.eap with POST /axis-cgi/applications/upload.cgi (Digest auth), set app parameters "
                    "through param.cgi, then start it with control.cgi if --start.")
    p.add_argument("package", type=Path, metavar="APP.eap", help="package built by `camlytics bundle`")
    p.add_argument("--camera", required=True, help="camera URL http://user:pass@host[:port]")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set app parameter root.APP.NAME after installing (repeatable), e.g. MqttHost=10.0.0.5")
    p.add_argument("--start", action="store_true", help="(re)start the app after installing")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per camera request (default 60)")
    p.set_defaults(func=deploy_command)

    p = subparsers.add_parser(
        "apps", help="list the applications installed on an Axis camera, or start/stop/remove one",
        description="Without an action: list.cgi as a table. With --start/--stop/--restart/--remove NAME: control.cgi. "
                    "With --log NAME: the app's lines of the camera's system log.")
    p.add_argument("--camera", required=True, help="camera URL http://user:pass@host[:port]")
    action = p.add_mutually_exclusive_group()
    for name in ("start", "stop", "restart", "remove"):
        action.add_argument(f"--{name}", metavar="NAME", help=f"{name} the application NAME")
    action.add_argument("--log", metavar="NAME", help="print the application's log (systemlog.cgi?appname=NAME)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per camera request (default 30)")
    p.set_defaults(func=apps_command)


BUNDLE_FLAGS = {"MqttHost": "--mqtt-host", "MqttPort": "--mqtt-port", "MqttPrefix": "--mqtt-prefix",
                "MqttNodeId": "--node-id", "StableFrames": "--stable-frames", "FrameRate": "--fps",
                "Resolution": "--resolution", "VapixUser": "--camera-user", "VirtualInputPort": "--virtual-input",
                "WebhookUrl": "--webhook", "Threshold": "--threshold"}


def bundle_params(args: argparse.Namespace) -> dict[str, str]:
    """App parameter defaults from the command line (only those given)."""
    params: dict[str, str] = {}
    if args.threshold is not None:
        if not 0 <= args.threshold <= 1:
            raise DeployError(f"--threshold must be in [0, 1], got {args.threshold}")
        params["Threshold"] = str(round(args.threshold * 100))
    given = {"MqttHost": args.mqtt_host, "MqttPort": args.mqtt_port, "MqttPrefix": args.mqtt_prefix,
             "MqttNodeId": args.node_id, "StableFrames": args.stable_frames, "FrameRate": args.fps,
             "Resolution": args.resolution, "VapixUser": args.camera_user, "VirtualInputPort": args.virtual_input,
             "WebhookUrl": args.webhook}
    params.update({k: str(v) for k, v in given.items() if v is not None})
    if args.no_ha_discovery:
        params["HaDiscovery"] = "no"
    check_app_values(params, {k: f"{flag} ({k})" for k, flag in BUNDLE_FLAGS.items()})  # bad defaults would make the app crash-loop on the camera
    return params


def bundle_command(args: argparse.Namespace) -> int:
    from camlytics.deploy.bundle import BundleOptions, build_bundle

    mtime = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not mtime.isdigit():
        raise DeployError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {mtime!r}")
    options = BundleOptions(arch=args.arch, app_name=args.app_name, friendly_name=args.friendly_name,
                            vendor=args.vendor, vendor_url=args.vendor_url, vendor_id=args.vendor_id,
                            version=args.version, interpreter=args.interpreter, license=args.license,
                            params=bundle_params(args), mtime=int(mtime))
    path = build_bundle(args.model_dir, args.out, options)
    where = "bundled lib/micropython" if args.interpreter else "the camera's own `micropython` (none bundled)"
    print(f"wrote {path} ({path.stat().st_size} bytes); the app runs with {where}")
    return 0


def parse_params(items: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs of --param."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise DeployError(f"--param must look like NAME=VALUE, got {item.split('=')[0]!r}")
        params[name] = value
    return params


def package_manifest(package: Path) -> dict:
    """The package's manifest.json, after reading the whole archive (a truncated .eap is refused here)."""
    import json
    import tarfile
    import zlib

    try:
        with tarfile.open(package, "r:gz") as tar:
            tar.getmembers()  # reads to the end: a truncated or corrupt archive fails now, not on the camera
            member = tar.getmember("manifest.json")
            if member.size > 1 << 20:
                raise DeployError(f"{package}: manifest.json is too large")
            manifest = json.loads(tar.extractfile(member).read())
        manifest["acapPackageConf"]["setup"]["appName"]  # noqa: B018 - must be there
        return manifest
    except FileNotFoundError:
        raise DeployError(f"no such package {package}") from None
    except IsADirectoryError:
        raise DeployError(f"package {package} is a directory, not an .eap file") from None
    except (EOFError, zlib.error) as exc:
        raise DeployError(f"{package} is not a complete .eap package (truncated or corrupt: {exc})") from None
    except (OSError, KeyError, ValueError, TypeError, tarfile.TarError) as exc:
        raise DeployError(f"{package} is not an ACAP package built by `camlytics bundle` ({exc})") from None


def package_app_name(package: Path) -> str:
    """appName from the package's manifest (so deploy can start it)."""
    return package_manifest(package)["acapPackageConf"]["setup"]["appName"]


def check_deploy_params(params: dict[str, str], manifest: dict) -> None:
    """--param names the package declares, with values its app accepts; DeployError before anything is uploaded."""
    name = manifest["acapPackageConf"]["setup"]["appName"]
    try:
        declared = {p["name"]: p["type"] for p in manifest["acapPackageConf"].get("configuration", {})
                    .get("paramConfig", [])}
    except (AttributeError, KeyError, TypeError):
        declared = {}
    for param in params:
        if param not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise DeployError(f"--param {param}: {name} has no such parameter (its parameters: {known})")
    check_app_values(params, {p: f"--param {p}" for p in params}, declared)


def deploy_command(args: argparse.Namespace) -> int:
    from camlytics.deploy.vapix_apps import AppsClient

    check_positive("--timeout", args.timeout)  # seconds, finite
    manifest = package_manifest(args.package)
    name = manifest["acapPackageConf"]["setup"]["appName"]
    params = parse_params(args.param)
    check_deploy_params(params, manifest)
    with AppsClient(args.camera, timeout=args.timeout) as cam:
        cam.upload(args.package)
        print(f"installed {name} from {args.package.name} on {cam.host}")
        if params:
            cam.set_params(name, params)
            print(f"set {', '.join(sorted(params))}")
        if args.start:
            running = any(app.name == name and app.status == "Running" for app in cam.list())
            cam.control("restart" if running else "start", name)
            print(f"started {name}")
    return 0


def apps_command(args: argparse.Namespace) -> int:
    from camlytics.deploy.vapix_apps import AppsClient

    check_positive("--timeout", args.timeout)  # seconds, finite
    with AppsClient(args.camera, timeout=args.timeout) as cam:
        if args.log:
            print(cam.log(args.log), end="")
            return 0
        for action in ("start", "stop", "restart", "remove"):
            name = getattr(args, action)
            if name:
                cam.control(action, name)
                print(f"{action}: {name} OK")
                return 0
        apps = cam.list()
    if not apps:
        print("no applications installed")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("Name", "Friendly name", "Vendor", "Version", "Status")
    for app in apps:
        table.add_row(app.name, app.nice_name, app.vendor, app.version, app.status)
    Console().print(table)
    return 0
