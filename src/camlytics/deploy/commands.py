"""`camlytics bundle` (build an ACAP .eap), `camlytics deploy` (install it, or a recorded model version),
`camlytics rollback` (the version deployed before), `camlytics apps` (list/control)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from camlytics.deploy.manifest import check_app_values
from camlytics.deploy.params import (PARAM_ENV_PREFIX, check_deploy_params, declared_params, gather_params,
                                     parse_params)
from camlytics.errors import DeployError
from camlytics.validate import check_positive

ARCHES = ("armv7hf", "aarch64", "all")
DEFAULT_ARCHES = ("armv7hf", "aarch64")  # bundle without --arch/--camera: one package each


def register(subparsers: Any) -> None:
    """Add `bundle`, `deploy`, `rollback` and `apps`."""
    p = subparsers.add_parser(
        "bundle", help="package a trained model and the edge app as an Axis ACAP (.eap)",
        description="Build APPNAME_MAJ_MIN_PATCH_ARCH.eap: manifest.json (settings a user changes on the camera as "
                    "app parameters), LICENSE, a POSIX sh launcher, a settings page, the model and the edge app "
                    "compiled with mpy-cross. The launcher runs the bundled interpreter (--interpreter) or the "
                    "device's `micropython`. The same inputs always give the same bytes.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory (with model.cml)")
    p.add_argument("--out", default=".", help="output directory or .eap file (default: current directory)")
    p.add_argument("--arch", choices=ARCHES,
                   help="armv7hf (ARTPEC-6/7) or aarch64 (ARTPEC-8/9, CV25); default: one package for each. "
                        "all: no firmware, the device's own micropython (needs --interpreter camera)")
    p.add_argument("--camera", metavar="URL",
                   help="take the architecture from this camera (basicdeviceinfo Architecture/Soc), "
                        "http://user:pass@host[:port]")
    p.add_argument("--interpreter", metavar="camera|PATH",
                   help="default: the camlytics firmware for --arch (built or from the cache) as lib/micropython. "
                        "camera: none bundled, the device's own micropython runs the edge app (no Axis camera "
                        "ships one). PATH: that MicroPython binary (ELF header checked against --arch)")
    p.add_argument("--schema", type=int, choices=(1, 2), default=2,
                   help="manifest schema: 2 (default; AXIS OS 12.x and 13, adds vendorId and compatibleOsVersions) "
                        "or 1 (1.7.3, AXIS OS 11.x/12.x)")
    p.add_argument("--app-name", default="camlytics_door", help="appName: executable and package name")
    p.add_argument("--friendly-name", default="camlytics door sensor", help="name shown in the camera's web pages")
    p.add_argument("--vendor", default="camlytics", help="vendor shown on the camera")
    p.add_argument("--vendor-url", help="vendor home page")
    p.add_argument("--vendor-id", help="Axis-issued vendor id (10 hex digits, from Axis's signing service; schema 2). "
                   "Default: the placeholder 0000000000, fine unsigned on AXIS OS 12, replaced before signing")
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
    defaults.add_argument("--http-port", type=int, help="localhost port of the app's status endpoint, served by the "
                          "camera at /local/APP/status (viewers) and /local/APP/spool (admins); 0: off (default 2180)")
    p.set_defaults(func=bundle_command)

    p = subparsers.add_parser(
        "deploy", help="install an .eap (or a dataset's model version) on an Axis camera, optionally start it",
        description="Upload APP.eap with POST /axis-cgi/applications/upload.cgi (Digest auth), set app parameters "
                    "through param.cgi, then start it with control.cgi if --start. With --dataset DATASET "
                    "--model-version V instead of APP.eap: bundle that recorded version (`camlytics models`) for the "
                    "camera's architecture and install it. Every deploy of a dataset's model (--dataset, with or "
                    "without APP.eap) is recorded in the dataset, for `camlytics models` and `camlytics rollback`.")
    p.add_argument("package", type=Path, nargs="?", metavar="APP.eap", help="package built by `camlytics bundle` "
                   "(or give --dataset and --model-version)")
    p.add_argument("--camera", required=True, help="camera URL http://user:pass@host[:port]")
    _version_options(p)
    p.add_argument("--model-version", metavar="V", help="with --dataset: the version to bundle and deploy: v3, "
                   "v3-1a2b3c4d or a hash prefix (see `camlytics models DATASET`)")
    p.add_argument("--start", action="store_true", help="(re)start the app after installing")
    _install_options(p)
    p.set_defaults(func=deploy_command)

    p = subparsers.add_parser(
        "rollback", help="re-deploy the model version that ran on a camera before the current one",
        description="Look up in DATASET which of its model versions were deployed to the camera, bundle the one "
                    "before the current one for the camera's architecture, install it under the same app name and "
                    "(re)start it. A rollback undoes the deploy it goes back from: a second rollback goes one "
                    "version further back, never forward again. One error line when there is nothing to go back to.")
    p.add_argument("dataset", metavar="DATASET", help="dataset directory whose models were deployed")
    p.add_argument("--camera", required=True, help="camera URL http://user:pass@host[:port]")
    p.add_argument("--record-as", metavar="NAME", help="the camera's name in the dataset's deploy history (default: "
                   "the URL without credentials; `camlytics fleet deploy` uses the fleet's camera name)")
    p.add_argument("--app-name", help="appName to install (default: the one of the current deploy, else "
                   "camlytics_door)")
    p.add_argument("--interpreter", metavar="camera|PATH", help="as `camlytics bundle --interpreter` (default: the "
                   "camlytics firmware for the camera's architecture)")
    _install_options(p)
    p.set_defaults(func=rollback_command)

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


def _version_options(p: argparse.ArgumentParser) -> None:
    """`deploy`'s options for a dataset's recorded model versions."""
    p.add_argument("--dataset", metavar="DATASET", help="the dataset whose model is deployed: with --model-version, "
                   "the version to bundle; with APP.eap, where the deploy is recorded (if its model is one of the "
                   "dataset's versions)")
    p.add_argument("--record-as", metavar="NAME", help="the camera's name in the dataset's deploy history (default: "
                   "the URL without credentials)")
    p.add_argument("--app-name", help="with --model-version: appName (default camlytics_door)")
    p.add_argument("--interpreter", metavar="camera|PATH", help="with --model-version: as `camlytics bundle "
                   "--interpreter` (default: the camlytics firmware for the camera's architecture)")


def _install_options(p: argparse.ArgumentParser) -> None:
    """Options of every command that installs a package: parameters, unsigned apps, timeout."""
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set app parameter root.APP.NAME after installing (repeatable), e.g. MqttHost=10.0.0.5; "
                        "not for passwords (they show in `ps`): use --param-file or $CAMLYTICS_PARAM_NAME")
    p.add_argument("--param-file", type=Path, metavar="FILE",
                   help="app parameters as NAME=VALUE lines (# comments), e.g. VapixPassword=...; keep it chmod 600. "
                        f"Parameters also come from ${PARAM_ENV_PREFIX}NAME variables; --param-file overrides "
                        "them, --param overrides both")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="AXIS OS 12: let the camera install unsigned apps (applications/config.cgi AllowUnsigned=true, "
                        "a camera-wide security setting; needs --yes). AXIS OS 13 installs signed apps only")
    p.add_argument("--yes", action="store_true", help="confirm --allow-unsigned")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per camera request (default 60)")


BUNDLE_FLAGS = {"MqttHost": "--mqtt-host", "MqttPort": "--mqtt-port", "MqttPrefix": "--mqtt-prefix",
                "MqttNodeId": "--node-id", "StableFrames": "--stable-frames", "FrameRate": "--fps",
                "Resolution": "--resolution", "VapixUser": "--camera-user", "VirtualInputPort": "--virtual-input",
                "WebhookUrl": "--webhook", "Threshold": "--threshold", "HttpPort": "--http-port"}


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
             "WebhookUrl": args.webhook, "HttpPort": args.http_port}
    params.update({k: str(v) for k, v in given.items() if v is not None})
    if args.no_ha_discovery:
        params["HaDiscovery"] = "no"
    check_app_values(params, {k: f"{flag} ({k})" for k, flag in BUNDLE_FLAGS.items()})  # bad defaults would make the app crash-loop on the camera
    return params


def camera_arch(url: str, timeout: float = 30.0) -> str:
    """armv7hf or aarch64 for the camera at `url` (basicdeviceinfo); DeployError if it is neither."""
    from camlytics.deploy.vapix_apps import AppsClient

    with AppsClient(url, timeout=timeout) as cam:
        info = cam.device_info()
        host = cam.host
    arch = info.acap_arch
    if arch is None:
        raise DeployError(f"camera {host} reports architecture {info.architecture or '?'} (Soc {info.soc or '?'}); "
                          f"the camlytics firmware is built for {' and '.join(DEFAULT_ARCHES)} only")
    return arch


def bundle_arches(args: argparse.Namespace) -> list[str]:
    """The architectures to build, from --arch / --camera / --interpreter (DeployError on a bad combination)."""
    if args.arch and args.camera:
        raise DeployError("give --arch or --camera, not both (--camera reads the architecture from the camera)")
    if args.arch == "all" and args.interpreter != "camera":
        raise DeployError("--arch all has no firmware (one binary runs on one CPU): it needs --interpreter camera, "
                          "and a micropython on the camera (no Axis camera ships one); or build --arch armv7hf / "
                          "aarch64, or --camera URL")
    if args.interpreter == "camera" and not args.arch and not args.camera:
        return ["all"]
    arches = [args.arch] if args.arch else [camera_arch(args.camera)] if args.camera else list(DEFAULT_ARCHES)
    if args.interpreter not in (None, "camera") and len(arches) > 1:
        raise DeployError(f"--interpreter {args.interpreter} runs on one architecture: give --arch armv7hf or aarch64")
    return arches


def bundle_command(args: argparse.Namespace) -> int:
    from camlytics.deploy.bundle import BundleOptions, build_bundle

    mtime = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not mtime.isdigit():
        raise DeployError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {mtime!r}")
    params = bundle_params(args)
    arches = bundle_arches(args)
    if len(arches) > 1 and str(args.out).endswith(".eap"):
        raise DeployError(f"--out {args.out} names one file, but {len(arches)} packages are built "
                          f"({', '.join(arches)}): give a directory, or one --arch")
    interpreter = None if args.interpreter is None else "camera" if args.interpreter == "camera" else Path(args.interpreter)
    for arch in arches:
        options = BundleOptions(arch=arch, app_name=args.app_name, friendly_name=args.friendly_name,
                                vendor=args.vendor, vendor_url=args.vendor_url, vendor_id=args.vendor_id,
                                version=args.version, interpreter=interpreter, schema=args.schema,
                                license=args.license, params=params, mtime=int(mtime))
        path = build_bundle(args.model_dir, args.out, options)
        where = ("the device's own `micropython` (none bundled)" if interpreter == "camera" else
                 "the bundled lib/micropython" if interpreter else f"the bundled camlytics firmware for {arch}")
        print(f"wrote {path} ({path.stat().st_size} bytes, manifest schema {args.schema}); the app runs with {where}")
    return 0


def all_params(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, str]:
    """App parameters from $CAMLYTICS_PARAM_NAME, then --param-file, then --param (each overriding the one before)."""
    return gather_params(args.param_file, args.param, environ)


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


UNSIGNED_HELP = {
    # AXIS OS major -> what to do about an unsigned package the camera refused (upload.cgi Error: 2)
    "13": "AXIS OS 13 installs signed apps only: sign the package with Axis's signing service and deploy the "
          "signed .eap (README: Signing for AXIS OS 13)",
    "12": "AXIS OS 12 installs unsigned apps only when allowed: rerun with --allow-unsigned --yes (sets "
          "applications/config.cgi AllowUnsigned=true), or sign it (README: Signing for AXIS OS 13)",
}


def unsigned_advice(os_major: int | None) -> str:
    """What to do when the camera refuses an unsigned package, for its AXIS OS major version."""
    if os_major is not None and os_major >= 13:
        return UNSIGNED_HELP["13"]
    if os_major == 12:
        return UNSIGNED_HELP["12"]
    return ("allow unsigned apps on the camera (AXIS OS 12: --allow-unsigned --yes) or sign the package "
            "(README: Signing for AXIS OS 13)")


def camera_key(url: str, record_as: str | None = None) -> str:
    """The camera's name in a dataset's deploy history: `record_as`, else the URL without credentials."""
    from camlytics.urls import parse_url

    if record_as:
        return record_as
    parts = parse_url(url)
    return f"{parts.scheme}://{parts.netloc}"


def baked_params(params: dict[str, str]) -> dict[str, str]:
    """The parameters a version's package carries as defaults: every one but passwords (HttpPort must be in the
    manifest: the camera's reverse proxy reads its port there)."""
    from camlytics.deploy.manifest import APP_PARAMS

    kinds = {p.name: p.type for p in APP_PARAMS}
    return {k: v for k, v in params.items() if k in kinds and "password" not in kinds[k]}


def version_package(version: Any, camera: str, out: Path, app_name: str, interpreter: str | None,
                    timeout: float, params: dict[str, str]) -> Path:
    """Bundle a recorded model version for the camera's architecture (or "all" with --interpreter camera)."""
    from camlytics.deploy.bundle import CAMERA, BundleOptions, build_bundle

    mtime = os.environ.get("SOURCE_DATE_EPOCH", "0")
    check_app_values(params, {k: f"--param {k}" for k in params})
    arch = "all" if interpreter == CAMERA else camera_arch(camera, timeout)
    chosen = None if interpreter is None else CAMERA if interpreter == CAMERA else Path(interpreter)
    options = BundleOptions(arch=arch, app_name=app_name, interpreter=chosen, model_version=version.version,
                            params=params, mtime=int(mtime) if mtime.isdigit() else 0)
    return build_bundle(version.path, out, options)


def package_model_sha(package: Path) -> str | None:
    """The model sha256 a package's build.json names (None if it has none)."""
    import json
    import tarfile

    try:
        with tarfile.open(package, "r:gz") as tar:
            build = json.loads(tar.extractfile("build.json").read())
        return str(build["model_sha256"])
    except (OSError, KeyError, ValueError, TypeError, AttributeError, tarfile.TarError):
        return None


def deploy_command(args: argparse.Namespace) -> int:
    """Install a package, or a dataset's recorded model version, and record the deploy in the dataset."""
    import tempfile

    from camlytics.store.models import current_deploy, get_model, list_models, record_deploy

    check_install_args(args)
    if args.dataset is None and (args.model_version or args.record_as or args.app_name or args.interpreter):
        raise DeployError("--model-version, --record-as, --app-name and --interpreter need --dataset DATASET")
    if args.package is None and args.dataset is None:
        raise DeployError("give APP.eap, or --dataset DATASET --model-version V")
    if args.package is not None and args.model_version is not None:
        raise DeployError("give APP.eap or --model-version (with --dataset), not both")
    if args.package is not None and (args.app_name or args.interpreter):
        raise DeployError("--app-name and --interpreter are for --model-version: APP.eap has its own "
                          "(set them with `camlytics bundle`)")
    key = camera_key(args.camera, args.record_as)
    baked: dict[str, str] = {}
    if args.package is not None:
        version = None
        if args.dataset is not None:
            sha = package_model_sha(args.package)
            found = [v for v in list_models(args.dataset) if v.sha256 == sha]
            version = found[0] if found else None
            if version is None:
                print(f"camlytics deploy: warning: the package's model is not one of {args.dataset}'s versions: "
                      "the deploy is not recorded", file=sys.stderr)
        name = install(args, args.package, start=args.start)
    else:
        if args.model_version is None:
            raise DeployError("--dataset needs --model-version V (see `camlytics models DATASET`), or give APP.eap")
        version = get_model(args.dataset, args.model_version)
        # the package defaults of the version it replaces on this camera (HttpPort, MQTT node...), then --param
        current = current_deploy(args.dataset, key) or {}
        baked = {**(current.get("params") or {}), **baked_params(all_params(args))}
        app_name = args.app_name or current.get("app") or "camlytics_door"
        with tempfile.TemporaryDirectory(prefix="camlytics-deploy-") as tmp:
            package = version_package(version, args.camera, Path(tmp), app_name, args.interpreter, args.timeout,
                                      baked)
            print(f"bundled model version {version.version} as {package.name}")
            name = install(args, package, start=args.start)
    if version is not None:
        record_deploy(args.dataset, version.version, key, app=name, params=baked)
        print(f"recorded: {key} runs model version {version.version} of {args.dataset}")
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Re-deploy the version deployed before the current one on the camera, and record it."""
    import tempfile

    from camlytics.store.models import current_deploy, record_deploy, rollback_target

    check_install_args(args)
    key = camera_key(args.camera, args.record_as)
    target = rollback_target(args.dataset, key)
    current = current_deploy(args.dataset, key) or {}
    app_name = args.app_name or current.get("app") or "camlytics_door"
    # the package defaults of the current deploy (its HttpPort, MQTT node...), then what this command sets
    baked = {**(current.get("params") or {}), **baked_params(all_params(args))}
    with tempfile.TemporaryDirectory(prefix="camlytics-rollback-") as tmp:
        package = version_package(target, args.camera, Path(tmp), app_name, args.interpreter, args.timeout, baked)
        install(args, package, start=True)
    record_deploy(args.dataset, target.version, key, rollback=True, app=app_name, params=baked)
    print(f"rolled back {key} from model version {current.get('version')} to {target.version}")
    return 0


def check_install_args(args: argparse.Namespace) -> None:
    """The installing options that need no camera: refused before anything is bundled or uploaded."""
    check_positive("--timeout", args.timeout)  # seconds, finite
    if args.allow_unsigned and not args.yes:
        raise DeployError("--allow-unsigned changes a camera-wide security setting (AllowUnsigned: any unsigned app "
                          "may then be installed): confirm with --yes")


def install(args: argparse.Namespace, package: Path, start: bool) -> str:
    """Upload `package`, set the parameters of `args`, (re)start it if `start`; returns its app name."""
    from camlytics.deploy.vapix_apps import E_SIGNATURE, AppsClient, UploadRefused

    check_install_args(args)
    manifest = package_manifest(package)
    setup = manifest["acapPackageConf"]["setup"]
    name = setup["appName"]
    params = all_params(args)
    check_deploy_params(params, manifest)
    secret = [n for n, t in declared_params(manifest).items() if "password" in t and n in parse_params(args.param)]
    if secret:
        print(f"camlytics deploy: warning: --param {', '.join(secret)}: a password on the command line shows in `ps` "
              f"and the shell history; use --param-file FILE or ${PARAM_ENV_PREFIX}NAME", file=sys.stderr)
    with AppsClient(args.camera, timeout=args.timeout) as cam:
        info = cam.device_info()
        camera = info.acap_arch
        package_arch = setup.get("architecture", "all")
        if package_arch != "all" and package_arch != camera:
            raise DeployError(f"{package.name} is built for {package_arch}, but camera {cam.host} is "
                              f"{info.architecture or '?'} (Soc {info.soc or '?'}): nothing uploaded; build its package "
                              f"with `camlytics bundle MODEL --arch {camera or '?'}` or `--camera URL`")
        schema_major = int(str(manifest.get("schemaVersion", "1")).split(".")[0] or 1)
        if info.os_major is not None and info.os_major >= 13 and schema_major < 2:
            raise DeployError(f"camera {cam.host} runs AXIS OS {info.version}, which installs manifest schema 2 only; "
                              f"{package.name} has schema {manifest.get('schemaVersion')}: rebuild without --schema 1")
        if args.allow_unsigned:
            if info.os_major is not None and info.os_major >= 13:
                raise DeployError(f"--allow-unsigned: camera {cam.host} runs AXIS OS {info.version}, which requires "
                                  f"signed apps (there is no AllowUnsigned); sign the package (README: Signing for "
                                  f"AXIS OS 13)")
            if info.os_major is not None and info.os_major < 12:
                print(f"AXIS OS {info.version} installs unsigned apps: --allow-unsigned not needed, nothing changed")
            else:
                cam.allow_unsigned()
                print(f"camera {cam.host}: AllowUnsigned=true (any unsigned app may now be installed; turn it off "
                      f"in the camera's Apps settings when done)")
        before = {app.name for app in cam.list()}
        try:
            cam.upload(package)
        except UploadRefused as exc:
            if exc.code == E_SIGNATURE:
                raise DeployError(f"upload {package.name}: camera {cam.host} (AXIS OS {info.version or '?'}) "
                                  f"refused the unsigned package (Error: 2); {unsigned_advice(info.os_major)}") from None
            raise
        print(f"installed {name} from {package.name} on {cam.host}")
        try:
            if params:
                cam.set_params(name, params)
                print(f"set {', '.join(sorted(params))}")
            if start:
                running = any(app.name == name and app.status == "Running" for app in cam.list())
                cam.control("restart" if running else "start", name)
                print(f"started {name}")
        except DeployError as exc:
            if name in before:  # an upgrade: the old version is gone already; leave the new one to inspect
                raise DeployError(f"{exc} ({name} {setup.get('version')} stays installed: it replaced the "
                                  f"version that was there)") from None
            try:
                cam.control("remove", name)
                undo = f"removed {name} again"
            except DeployError as again:
                undo = f"could not remove {name} again ({again})"
            raise DeployError(f"{exc}; {undo}") from None
    return name


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
