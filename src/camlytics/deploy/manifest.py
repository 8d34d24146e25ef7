"""The ACAP `manifest.json`: the app's parameters, building a manifest, checking one against the
documented schema fields.

What was checked, and where (Axis's published descriptions, read with the project's search tool):
- acap-documentation `docs/develop/manifest-schemas/index.md` (schema -> AXIS OS table): 1.5.0
  (AXIS OS 11.8) adds `reverseProxy` and `.*` D-Bus wildcards, 1.6.0 allows `$`/`\\` in `apiPath` and
  the optional `$schema`; schema 1.3 is the lowest that can be signed (it made `architecture` a field).
- developer.axis.com "Upgrade a manifest" (schema v1.x -> v2.x table): v2 requires
  `setup.architecture`, `setup.vendorId` (a 10-character hex string, issued by Axis's signing
  service) and `setup.compatibleOsVersions` (an array of {min, max} AXIS OS version ranges), and
  removes `embeddedSdkVersion` and `containers`; `setup.user.username` may only be `sdk` and
  `user.group` one of admin, audiod, gpu, hidraw, operator, pipewire, ptzadm, sdk, storage, video,
  viewer.
- developer.axis.com "schema field descriptions v1.7.4/v1.8.0/v1.9.0": `resources.dbus.requiredMethods`
  (missing on the device: the app is refused at installation) and `conditionalMethods`.
- acap-native-sdk-examples `web-server/reverse-proxy-using-fixed-port/app/manifest.json`:
  `configuration.reverseProxy: [{"apiPath", "target": "http://localhost:PORT/", "access"}]`, served
  by the camera at `/local/APPNAME/APIPATH` behind its own authentication.
- Axis's examples and guides write `compatibleOsVersions` entries as `{"min": "12.0", "max": "13"}`
  or with only `max`; one guide reports that the 2.x JSON schema needs both, so both are written here.
  From AXIS OS 12.10 a camera refuses an app whose ranges do not hold its OS version.

The checks are the ones a camera or `acap-build` applies that we can apply offline: required
fields, allowed values, no unknown keys, parameter types and defaults that agree, and (given the
package's file list) that the executable, settings page and scripts it names are in the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from camlytics.errors import DeployError
from camlytics.validate import parse_roi

SCHEMA_V1 = "1.7.3"  # `--schema 1`: AXIS OS 11.10 .. 12.x (reverseProxy since 1.5.0 / AXIS OS 11.8)
SCHEMA_V2 = "2.0.0"  # the default: the only major AXIS OS 13 installs; needs vendorId and compatibleOsVersions
SCHEMAS = {1: SCHEMA_V1, 2: SCHEMA_V2}
# The vendorId written when none is given: format-valid, so the package installs unsigned on AXIS OS 12,
# but it is a placeholder: Axis's signing service issues the real one (README "Signing for AXIS OS 13").
PLACEHOLDER_VENDOR_ID = "0000000000"
# The AXIS OS versions a schema-2 package declares: from 12.0 (schema 2 and the VAPIX service account over
# D-Bus are there) up to the 13 line.
COMPATIBLE_OS = ({"min": "12.0", "max": "13"},)
ARCHITECTURES = ("armv7hf", "aarch64", "all")
RUN_MODES = ("respawn", "once", "never")
ACCESS = ("admin", "operator", "viewer")
PROXY_ACCESS = ("admin", "operator", "viewer", "anonymous")
V2_USERS = ("sdk",)
V2_GROUPS = ("admin", "audiod", "gpu", "hidraw", "operator", "pipewire", "ptzadm", "sdk", "storage", "video", "viewer")
HTTP_PORT_PARAM = "HttpPort"  # the app's own status endpoint (edge config "http"); 0 = off
HTTP_PORT_DEFAULT = 2180
# What the camera serves at /local/APPNAME/APIPATH from the app's endpoint, with its own authentication:
# the status JSON to any viewer, the spool of surprising frames (camera images) to admins only.
REVERSE_PROXY = (("status", "/status", "viewer"), ("spool", "/spool", "admin"))

APP_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,25}")  # the executable's name; maxLength 26 since 1.3.1
VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
VENDOR_RE = re.compile(r"[A-Za-z0-9 _.,()!?&'-]{1,64}")  # the characters schema 1.4.0 allows
VENDOR_ID_RE = re.compile(r"[0-9a-fA-F]{10}")
PARAM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
SCHEMA_VERSION_RE = re.compile(r"([12])\.[0-9]+(\.[0-9]+)?")

TOP_KEYS = {"$schema", "schemaVersion", "resources", "acapPackageConf"}
PACKAGE_KEYS = {"setup", "installation", "uninstallation", "configuration", "copyProtection"}
SETUP_KEYS = {"appName", "appId", "architecture", "embeddedSdkVersion", "friendlyName", "user", "runMode",
              "runOptions", "vendor", "vendorUrl", "version", "vendorId", "compatibleOsVersions"}
CONFIGURATION_KEYS = {"settingPage", "httpConfig", "paramConfig", "reverseProxy", "containers"}
DBUS_CREDENTIALS = "com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials"
API_PATH_RE = re.compile(r"[A-Za-z0-9_.$\\/-]{1,64}")  # 1.6.0 allows $ and \\
PROXY_TARGET_RE = re.compile(r"(http://(localhost|127\.0\.0\.1):(?P<port>[0-9]{1,5})(/[A-Za-z0-9_./-]*)?|unix:/[A-Za-z0-9_./-]+)")
OS_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,3})){0,2}")


@dataclass(frozen=True)
class AppParam:
    """One setting the user changes on the camera (`root.<appName>.<name>` through param.cgi)."""

    name: str
    type: str
    default: str
    label: str


# What the launcher reads at start; changing one takes effect when the app restarts.
APP_PARAMS = (
    AppParam("MqttHost", "string", "", "MQTT broker host (empty: no MQTT)"),
    AppParam("MqttPort", "int:min=1;max=65535", "1883", "MQTT broker port"),
    AppParam("MqttUser", "string", "", "MQTT user (empty: anonymous)"),
    AppParam("MqttPassword", "password", "", "MQTT password"),
    AppParam("MqttPrefix", "string", "camlytics", "MQTT topic prefix (topics PREFIX/NODE/...)"),
    AppParam("MqttNodeId", "string", "door", "MQTT node id"),
    AppParam("HaDiscovery", "bool:no,yes", "yes", "publish Home Assistant discovery"),
    AppParam("Threshold", "int:min=0;max=100", "60", "minimum confidence of a vote, percent"),
    AppParam("StableFrames", "int:min=1;max=100", "3", "frames that must agree before the state changes"),
    AppParam("MinConfidence", "string", "", "top-class probability below which a frame votes for the state "
             "unknown, e.g. 0.6 (empty: the model's)"),
    AppParam("ActiveClass", "string", "", "the class that means something is there: drives the virtual input "
             "and the webhook's active (empty: the model's, else open, occupied or the second class)"),
    AppParam("FrameRate", "string", "1", "frames per second (e.g. 1 or 0.5)"),
    AppParam("Resolution", "string", "640x360", "snapshot resolution WxH"),
    AppParam("Roi", "string", "", "door region x0,y0,x1,y1 in full-resolution pixels (empty: the model's)"),
    AppParam("VapixUser", "string", "", "VAPIX user (empty: D-Bus service account, AXIS OS 11.9+)"),
    AppParam("VapixPassword", "password", "", "VAPIX password"),
    AppParam("VirtualInputPort", "int:min=0;max=64", "0",
             "virtual input port set while the state is ActiveClass (0: off)"),
    AppParam("WebhookUrl", "string", "", "http:// URL to POST state changes to (empty: off)"),
    AppParam(HTTP_PORT_PARAM, "int:min=0;max=65535", str(HTTP_PORT_DEFAULT),
             "port of the app's status endpoint on localhost, behind /local/APP/status and /spool (0: off)"),
)


FRAME_RATE_RE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")  # what the launcher accepts (need_number)
ROI_RE = re.compile(r"[0-9]{1,5},[0-9]{1,5},[0-9]{1,5},[0-9]{1,5}")  # what the launcher accepts
MIN_CONFIDENCE_RE = re.compile(r"0(\.[0-9]{1,6})?")  # what the launcher accepts: a JSON number in [0, 1)


def check_app_values(params: dict[str, str], labels: dict[str, str] | None = None,
                     types: dict[str, str] | None = None, classes: list[str] | None = None) -> None:
    """DeployError for a parameter value the app would refuse when it starts on the camera (a crash loop there).

    The checks are the ones `camlytics run` applies to the same settings (camlytics.edge.config.validate,
    camlytics.edge.publish.Topics), after the parameter's manifest type (`types`, default APP_PARAMS).
    `labels` names each parameter as the user gave it (e.g. "--fps"); passwords are never echoed.
    `classes`, the model's real classes when known, are the values ActiveClass may take.
    """
    from camlytics.edge import config as edge_config
    from camlytics.edge.publish import Topics
    from camlytics.edge.tracker import UNKNOWN

    labels = labels or {}
    types = types if types is not None else {p.name: p.type for p in APP_PARAMS}
    for name, value in params.items():
        where = labels.get(name, name)
        if name in types:
            problem = check_param_value(types[name], value)
            if problem:
                if "password" in types[name]:
                    problem = problem.replace(repr(value), "the value")
                raise DeployError(f"{where}: {problem}")
        cfg: dict[str, Any] | None = None
        if name == "FrameRate":
            if not FRAME_RATE_RE.fullmatch(value):
                raise DeployError(f"{where}: must be a number of frames per second like 1 or 0.5, got {value!r}")
            cfg = {"fps": float(value)}
        elif name == "Resolution":
            cfg = {"camera": {"resolution": value}}
        elif name == "WebhookUrl" and value:
            cfg = {"webhook": {"url": value}}
        elif name == "Roi" and value:
            if not ROI_RE.fullmatch(value):  # the launcher's shell reads digits and commas only
                raise DeployError(f"{where}: must look like x0,y0,x1,y1, got {value!r}")
            cfg = {"roi": list(parse_roi(value, what=where, error=DeployError))}
        elif name == "MinConfidence" and value:
            if not MIN_CONFIDENCE_RE.fullmatch(value):
                raise DeployError(f"{where}: must be empty (the model's) or a probability in [0, 1) like 0.6, "
                                  f"got {value!r}")
            cfg = {"min_confidence": float(value)}
        elif name == "ActiveClass" and value:
            if value == UNKNOWN:
                raise DeployError(f"{where}: must be one of the model's classes, not {UNKNOWN!r} (the unknown state "
                                  "drives nothing)")
            if classes is not None and value not in classes:
                raise DeployError(f"{where}: must be one of the model's classes {', '.join(classes)}, got {value!r}")
            cfg = {"active_class": value}
        elif name == "MqttPort" and re.fullmatch(r"-?[0-9]+", value):
            cfg = {"mqtt": {"port": int(value)}}
        elif name in ("MqttPrefix", "MqttNodeId"):
            try:
                Topics(**{"prefix" if name == "MqttPrefix" else "node_id": value})
            except ValueError as exc:
                raise DeployError(f"{where}: {exc} (no '#' or '+', not empty)") from None
        if cfg is not None:
            try:
                edge_config.validate(cfg)
            except edge_config.ConfigError as exc:
                raise DeployError(f"{where}: {exc}") from None


def fail(where: str, message: str) -> DeployError:
    """A manifest error naming the field."""
    return DeployError(f"manifest.json: {where} {message}")


def check_param_value(type_: str, value: str) -> str | None:
    """Why `value` is not valid for parameter type `type_` (None if it is); unknown types are errors."""
    kind, _, spec = type_.partition(":")
    if kind == "hidden":
        kind, _, spec = spec.partition(":")
    if "\n" in value or "\r" in value:
        return "must be one line"
    if kind in ("string", "password"):
        if spec:
            match = re.fullmatch(r"maxlen=([0-9]{1,5})", spec)
            if not match:
                return f"type {type_!r} is not string[:maxlen=N]"
            if len(value) > int(match[1]):
                return f"is longer than {match[1]} characters"
        return None
    if kind == "int":
        bounds = dict(re.findall(r"(min|max)=(-?[0-9]+)", spec))
        if spec and ";".join(f"{k}={v}" for k, v in bounds.items()) != spec:
            return f"type {type_!r} is not int[:min=A;max=B]"
        if not re.fullmatch(r"-?[0-9]+", value):
            return f"{value!r} is not a whole number"
        if "min" in bounds and int(value) < int(bounds["min"]) or "max" in bounds and int(value) > int(bounds["max"]):
            return f"{value} is outside [{bounds.get('min', '-inf')}, {bounds.get('max', 'inf')}]"
        return None
    if kind == "bool":
        options = spec.split(",")
        if len(options) != 2 or not all(options):
            return f"type {type_!r} is not bool:FALSE,TRUE"
        return None if value in options else f"{value!r} is not one of {options}"
    if kind == "enum":
        options = spec.split("|")
        if not all(options):
            return f"type {type_!r} is not enum:A|B|..."
        return None if value in options else f"{value!r} is not one of {options}"
    return f"type {type_!r} is unknown (string, password, int, bool, enum, optionally hidden:)"


def build_manifest(*, app_name: str, friendly_name: str, vendor: str, version: str, architecture: str,
                   params: dict[str, str] | None = None, vendor_url: str | None = None,
                   vendor_id: str | None = None, run_mode: str = "respawn", schema: int = 2,
                   compatible_os: Iterable[dict[str, str]] = COMPATIBLE_OS) -> dict[str, Any]:
    """The manifest of a camlytics sensor app; `params` overrides APP_PARAMS defaults by name.

    schema 2 (AXIS OS 12.x and 13; the default): `vendorId` (PLACEHOLDER_VENDOR_ID unless given) and
    `compatibleOsVersions`; schema 1 (1.7.3, AXIS OS 11.10 .. 12.x): neither (a vendor id is refused).
    Both declare the VAPIX service account's D-Bus method and the reverse proxy to the app's endpoint.
    """
    if schema not in SCHEMAS:
        raise DeployError(f"--schema must be 1 (AXIS OS 11.x/12.x) or 2 (AXIS OS 12.x/13), got {schema!r}")
    if schema == 1 and vendor_id:
        raise DeployError("--vendor-id needs manifest schema 2 (schema 1 has no vendorId field)")
    params = dict(params or {})
    known = {p.name for p in APP_PARAMS}
    for name in params:
        if name not in known:
            raise DeployError(f"unknown app parameter {name!r}; known: {', '.join(sorted(known))}")
    setup: dict[str, Any] = {
        "appName": app_name,
        "friendlyName": friendly_name,
        "vendor": vendor,
        "version": version,
        "architecture": architecture,
        "runMode": run_mode,
    }
    if vendor_url:
        setup["vendorUrl"] = vendor_url
    if schema == 2:  # an Axis-issued vendor id and the AXIS OS versions the app runs on
        setup["vendorId"] = vendor_id or PLACEHOLDER_VENDOR_ID
        setup["compatibleOsVersions"] = [dict(r) for r in compatible_os]
    else:
        setup["embeddedSdkVersion"] = "3.0"
    defaults = {p.name: str(params.get(p.name, p.default)) for p in APP_PARAMS}
    configuration: dict[str, Any] = {
        "settingPage": "index.html",
        "paramConfig": [{"name": p.name, "default": defaults[p.name], "type": p.type} for p in APP_PARAMS],
    }
    port = defaults[HTTP_PORT_PARAM]
    if port.isdigit() and int(port) > 0:  # 0: no endpoint, nothing to proxy (a bad value is refused below)
        configuration["reverseProxy"] = [{"apiPath": api, "target": f"http://localhost:{int(port)}{path}",
                                          "access": access} for api, path, access in REVERSE_PROXY]
    return {
        "schemaVersion": SCHEMAS[schema],
        "resources": {"dbus": {"requiredMethods": [DBUS_CREDENTIALS]}},
        "acapPackageConf": {"setup": setup, "configuration": configuration},
    }


def _keys(obj: Any, where: str, allowed: set[str], required: Iterable[str] = ()) -> dict:
    if not isinstance(obj, dict):
        raise fail(where, f"must be an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise fail(where, f"has unknown field(s) {unknown}")
    for key in required:
        if key not in obj:
            raise fail(f"{where}.{key}", "is required")
    return obj


def _string(obj: dict, key: str, where: str, pattern: re.Pattern | None = None, choices: tuple = ()) -> None:
    if key not in obj:
        return
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise fail(f"{where}.{key}", f"{value!r} does not match {pattern.pattern}")
    if choices and value not in choices:
        raise fail(f"{where}.{key}", f"{value!r} is not one of {list(choices)}")


def validate_manifest(manifest: Any, files: Iterable[str] | None = None) -> dict:
    """Check a parsed manifest; with `files` (package member names) also that the files it names exist.

    Returns the manifest; raises DeployError naming the first bad field.
    """
    _keys(manifest, "(top level)", TOP_KEYS, ("schemaVersion", "acapPackageConf"))
    _string(manifest, "schemaVersion", "(top level)", SCHEMA_VERSION_RE)
    major = int(manifest["schemaVersion"].split(".")[0])
    package = _keys(manifest["acapPackageConf"], "acapPackageConf", PACKAGE_KEYS, ("setup",))
    where = "acapPackageConf.setup"
    required = ["appName", "vendor", "version", "runMode"]
    if major >= 2:
        required += ["architecture", "vendorId", "compatibleOsVersions"]
    setup = _keys(package["setup"], where, SETUP_KEYS, required)
    _string(setup, "appName", where, APP_NAME_RE)
    _string(setup, "vendor", where, VENDOR_RE)
    _string(setup, "version", where, VERSION_RE)
    _string(setup, "runMode", where, choices=RUN_MODES)
    _string(setup, "architecture", where, choices=ARCHITECTURES)
    _string(setup, "friendlyName", where)
    _string(setup, "vendorUrl", where, re.compile(r"https?://\S+"))
    _string(setup, "runOptions", where)
    if major >= 2:
        _string(setup, "vendorId", where, VENDOR_ID_RE)
        if "embeddedSdkVersion" in setup:
            raise fail(f"{where}.embeddedSdkVersion", "was removed in schema 2")
        _validate_os_versions(setup["compatibleOsVersions"], f"{where}.compatibleOsVersions")
    elif "vendorId" in setup or "compatibleOsVersions" in setup:
        raise fail(where, "vendorId/compatibleOsVersions need schemaVersion 2.x")
    if "user" in setup:
        user = _keys(setup["user"], f"{where}.user", {"username", "group"}, ("username", "group"))
        _string(user, "username", f"{where}.user", choices=V2_USERS if major >= 2 else ())
        _string(user, "group", f"{where}.user", choices=V2_GROUPS if major >= 2 else ())
    config = _keys(package.get("configuration", {}), "acapPackageConf.configuration", CONFIGURATION_KEYS)
    if major >= 2 and "containers" in config:
        raise fail("acapPackageConf.configuration.containers", "was removed in schema 2")
    _validate_configuration(config)
    if "reverseProxy" in config:
        minor = int(manifest["schemaVersion"].split(".")[1])
        if (major, minor) < (1, 5):
            raise fail("acapPackageConf.configuration.reverseProxy", "needs schemaVersion 1.5 or later")
        _validate_reverse_proxy(config["reverseProxy"])
    _validate_resources(manifest.get("resources", {}))
    for section, key in (("installation", "postInstallScript"), ("uninstallation", "preUninstallScript")):
        if section in package:
            _keys(package[section], f"acapPackageConf.{section}", {key})
            _string(package[section], key, f"acapPackageConf.{section}", re.compile(r"[A-Za-z0-9_.-]+"))
    if files is not None:
        _validate_files(manifest, set(files))
    return manifest


def _validate_configuration(config: dict) -> None:
    where = "acapPackageConf.configuration"
    _string(config, "settingPage", where, re.compile(r"[A-Za-z0-9_.-]+\.html?"))
    params = config.get("paramConfig", [])
    if not isinstance(params, list):
        raise fail(f"{where}.paramConfig", "must be a list")
    seen: set[str] = set()
    for i, param in enumerate(params):
        at = f"{where}.paramConfig[{i}]"
        _keys(param, at, {"name", "default", "type"}, ("name", "default", "type"))
        for key in ("name", "default", "type"):
            if not isinstance(param[key], str):
                raise fail(f"{at}.{key}", f"must be a string, got {param[key]!r}")
        if not PARAM_NAME_RE.fullmatch(param["name"]):
            raise fail(f"{at}.name", f"{param['name']!r} does not match {PARAM_NAME_RE.pattern}")
        if param["name"] in seen:
            raise fail(f"{at}.name", f"{param['name']!r} is defined twice")
        seen.add(param["name"])
        problem = check_param_value(param["type"], param["default"])
        if problem:
            raise fail(f"{at} ({param['name']})", f"default: {problem}")
    http = config.get("httpConfig", [])
    if not isinstance(http, list):
        raise fail(f"{where}.httpConfig", "must be a list")
    for i, entry in enumerate(http):
        at = f"{where}.httpConfig[{i}]"
        _keys(entry, at, {"type", "name", "access"}, ("type", "access"))
        _string(entry, "type", at, choices=("transferCgi", "fastCgi", "directory"))
        _string(entry, "access", at, choices=ACCESS)
        if entry["type"] != "directory":
            _string(entry, "name", at, re.compile(r"[A-Za-z0-9_./-]+"))


def os_version_tuple(text: str) -> tuple[int, ...]:
    """(major, minor, patch) of an AXIS OS version like "12", "12.6" or "11.11.73" (missing parts 0)."""
    parts = [int(x) for x in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def _validate_os_versions(versions: Any, where: str) -> None:
    if not isinstance(versions, list) or not versions:
        raise fail(where, f"must be a non-empty list of {{min, max}} objects, got {versions!r}")
    for i, entry in enumerate(versions):
        at = f"{where}[{i}]"
        _keys(entry, at, {"min", "max"}, ("min", "max"))
        for key in ("min", "max"):
            value = entry[key]
            if not isinstance(value, str) or not OS_VERSION_RE.fullmatch(value):
                raise fail(f"{at}.{key}", f"must be an AXIS OS version like 12.0 or 13, got {value!r}")
        # "max": "13" covers every 13.x: compare only as many parts as max gives
        low, high = os_version_tuple(entry["min"]), os_version_tuple(entry["max"])
        depth = len(entry["max"].split("."))
        if low[:depth] > high[:depth]:
            raise fail(at, f"min {entry['min']} is above max {entry['max']}")


def _validate_reverse_proxy(entries: Any) -> None:
    where = "acapPackageConf.configuration.reverseProxy"
    if not isinstance(entries, list):
        raise fail(where, "must be a list")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        _keys(entry, at, {"apiPath", "target", "access"}, ("apiPath", "target", "access"))
        _string(entry, "apiPath", at, API_PATH_RE)
        _string(entry, "target", at, PROXY_TARGET_RE)
        _string(entry, "access", at, choices=PROXY_ACCESS)
        match = PROXY_TARGET_RE.fullmatch(entry["target"])
        if match and match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
            raise fail(f"{at}.target", f"port {match['port']} is outside [1, 65535]")
        if entry["apiPath"] in seen:
            raise fail(f"{at}.apiPath", f"{entry['apiPath']!r} is defined twice")
        seen.add(entry["apiPath"])


def _validate_resources(resources: Any) -> None:
    _keys(resources, "resources", {"dbus", "linux"})
    dbus = _keys(resources.get("dbus", {}), "resources.dbus", {"requiredMethods", "conditionalMethods"})
    for key, methods in dbus.items():
        if not isinstance(methods, list) or not all(isinstance(m, str) and re.fullmatch(r"[A-Za-z0-9_.]+(\.\*)?", m)
                                                     for m in methods):
            raise fail(f"resources.dbus.{key}", f"must be a list of D-Bus method names, got {methods!r}")


def _validate_files(manifest: dict, files: set[str]) -> None:
    package = manifest["acapPackageConf"]
    app = package["setup"]["appName"]
    if app not in files:
        raise fail("acapPackageConf.setup.appName", f"names the executable {app!r}, which is not in the package")
    if "lib/micropython" in files and package["setup"].get("architecture", "all") == "all":
        raise fail("acapPackageConf.setup.architecture", "is 'all', but the package carries a binary "
                   "(lib/micropython) that runs on one architecture")
    page = package.get("configuration", {}).get("settingPage")
    if page and f"html/{page}" not in files:
        raise fail("acapPackageConf.configuration.settingPage", f"names html/{page}, which is not in the package")
    for section, key in (("installation", "postInstallScript"), ("uninstallation", "preUninstallScript")):
        script = package.get(section, {}).get(key)
        if script and script not in files:
            raise fail(f"acapPackageConf.{section}.{key}", f"names {script!r}, which is not in the package")


def eap_name(manifest: dict) -> str:
    """The conventional package file name APPNAME_MAJ_MIN_PATCH_ARCH.eap."""
    setup = manifest["acapPackageConf"]["setup"]
    version = setup["version"].replace(".", "_")
    return f"{setup['appName']}_{version}_{setup.get('architecture', 'all')}.eap"
