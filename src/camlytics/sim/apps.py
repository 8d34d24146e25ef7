"""The simulated camera's ACAP application API: install, run, list and remove `.eap` packages for real.

VAPIX endpoints (admin only, behind the camera's authentication), answering like a camera (`OK` / `Error: N`):
- `POST /axis-cgi/applications/upload.cgi` (multipart, one file field): checks the package (gzip'd
  tar; member paths relative, no `..`, no links leaving the package, no devices; size and count
  limits; `manifest.json` valid against the documented schema fields; non-empty `LICENSE`; the
  `appName` executable present) and what the camera enforces (`check_policy`):
  * `Error: 5` (incompatible): manifest architecture neither `all` nor the camera's; an ELF file in
    the package (lib/micropython) built for another architecture than the manifest names (or any ELF
    in an `all` package); schema 1.x on AXIS OS >= 13 (11.x and 12.x accept 1.x and 2.x); from AXIS
    OS 12.10, the camera's OS outside every `compatibleOsVersions` {min, max} ("max": "13" covers 13.x);
    a `resources.dbus.requiredMethods` entry the camera does not provide (it provides
    com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials from AXIS OS 11.9).
  * `Error: 2` (signature): an unsigned package on AXIS OS 13, or on 12.x while AllowUnsigned is false
    (its default there; 11.x allows unsigned by default). Axis signs a package by appending a
    signature after the gzip'd tar; the simulator cannot verify Axis's signatures, so it treats
    EVERY package as unsigned (a package with bytes after its gzip stream is logged as "signature not
    verifiable": it is never accepted as signed).
  Accepted packages are unpacked into this camera's sandbox directory. The app's parameters appear in
  param.cgi as `root.<appName>.<name>` (values kept across upgrades, like a camera), and so does its
  `localdata/`.
- `GET|POST /axis-cgi/applications/config.cgi?action=get|set&name=AllowUnsigned[&value=true|false]`:
  get answers `<reply result="ok"><param name="AllowUnsigned" value="true|false"/></reply>`, set `OK`;
  on AXIS OS >= 13 setting true answers `Error: 2` (signed apps only); other names `Error: 1`.
- `POST|GET /axis-cgi/applications/control.cgi?action=start|stop|restart|remove&package=NAME`:
  `start` runs the launcher as a camera would, in its own (unpacked) directory with `localdata/`:
  its device PATH holds the PyPI MicroPython as `micropython` (for `all` packages),
  `CAMLYTICS_VAPIX_URL` points at this camera (a real app uses 127.0.0.12),
  `CAMLYTICS_PARAMS_FILE` holds the app's parameters in param.cgi list format, and for a package of
  another CPU than this host's `CAMLYTICS_EMULATOR` names the qemu-user program that runs its ELF
  binaries (`qemu-arm` / `qemu-aarch64`, absolute path; the launcher execs
  `$CAMLYTICS_EMULATOR lib/micropython ...`). runMode `respawn` restarts an app that exits (at most 5
  times a minute, then it stays Stopped). Stop, remove, an exit and the camera's end kill the app's
  whole process group (as systemd ends an app's control group).
- `POST|GET /axis-cgi/applications/list.cgi`: `<reply result="ok"><application Name=... Status=.../></reply>`.

`GET /axis-cgi/admin/systemlog.cgi?appname=NAME` returns the app's output (a camera's system log
lines of that app); without appname, the install messages (why an upload was refused).
The files under an installed app's `html/` are served at `/local/<appName>/...` (admin, or the access of
an httpConfig `directory` entry), as a camera serves an app's settings page. The manifest's
`acapPackageConf.configuration.reverseProxy` entries `{apiPath, target, access}` are served at
`/local/<appName>/<apiPath>[/...]` (every method; query string kept) by forwarding to `target`
(`http://localhost:PORT[/path]` or 127.0.0.1) with the camera's authentication and the entry's access
level (admin > operator > viewer > anonymous; a lower role gets 403); the app's answer comes back with
its status and content type; 502 when nothing answers at the target within PROXY_TIMEOUT or the
answer is larger than PROXY_MAX_RESPONSE.

Simulator-only (no authentication): `GET /camlytics-sim/apps` (JSON: status, pid, exit code,
restarts per app) and `GET /camlytics-sim/apps/log?name=NAME` (the app's stdout and stderr).
The sandbox and every app process go away with the camera (`SimulatedCamera.stop`).
Tests can lower the package size limit with `cam.extensions["apps_max_package"] = N` (bytes).
"""

from __future__ import annotations

import atexit
import http.client
import io
import json
import mimetypes
import os
import platform
import posixpath
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from camlytics.errors import DeployError
from camlytics.sim.http import MAX_BODY, ROLES, Camera, Request, Response, Routes, route, with_access

MAX_PACKAGE = MAX_BODY - (1 << 16)  # bytes of an uploaded .eap: what fits in a request, less the envelope
MAX_UNPACKED = 256 << 20  # bytes of all members together (a gzip bomb stops here)
MAX_MEMBERS = 4096
MAX_MANIFEST = 1 << 20
RESPAWN_LIMIT = (5, 60.0)  # restarts within seconds, then the app stays stopped (like systemd)
LOG_TAIL = 1 << 20  # bytes of log the log endpoint returns at most

# VAPIX application API error numbers (see VAPIX-ACAP.md)
E_INVALID, E_SIGNATURE, E_TOO_LARGE, E_NOT_FOUND, E_INCOMPATIBLE, E_RUNNING, E_NOT_RUNNING = 1, 2, 3, 4, 5, 6, 7

PROXY_TIMEOUT = 10.0  # seconds to connect to an app's reverse-proxy target, and between bytes of its answer
PROXY_MAX_RESPONSE = 16 << 20  # bytes of an app's answer through the reverse proxy
PROXY_HEADERS = ("content-type", "accept", "accept-encoding", "range", "if-none-match", "if-modified-since",
                 "user-agent")  # request headers passed on to the app (never Authorization or cookies)
PROXY_ANSWER_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-range", "etag",
                        "last-modified", "location", "x-camlytics-frame")  # answer headers passed back
PROXY_TARGET_RE = re.compile(r"http://(localhost|127\.0\.0\.1):([0-9]{1,5})(/[A-Za-z0-9._~%/-]*)?")
API_PATH_RE = re.compile(r"[A-Za-z0-9_.$\\~-]+(/[A-Za-z0-9_.$\\~-]+)*")  # 1.6.0 allows $ and \
SERVICE_ACCOUNT_ROLE = "admin"  # role of an app's VAPIX service account (assumed: the app API docs name none)
COMPATIBLE_OS_ENFORCED = (12, 10, 0)  # AXIS OS from which compatibleOsVersions is enforced
# D-Bus methods an AXIS OS provides to apps (requiredMethods outside this set: the app is incompatible)
DBUS_METHODS = {"com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials": (11, 9)}

UPLOAD = "/axis-cgi/applications/upload.cgi"
ROUTES: Routes = {}  # the endpoints below; camlytics.sim.camera serves them on every camera
_HOSTS_LOCK = threading.Lock()  # one AppHost per camera, created on first use


class PackageError(Exception):
    """An upload the camera refuses: `code` is the VAPIX error number, the message goes to the camera log."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class InstalledApp:
    """One installed package and its process."""

    name: str
    manifest: dict
    directory: Path
    log_path: Path
    process: subprocess.Popen | None = None
    wanted: bool = False  # started and not stopped: respawn applies
    restarts: list[float] = field(default_factory=list)
    exit_code: int | None = None
    emulator: str | None = None  # the qemu-user program its ELF binaries run under here (None: natively)
    proxies: list[str] = field(default_factory=list)  # /local/<app>/<apiPath> prefixes served for it

    @property
    def setup(self) -> dict:
        return self.manifest["acapPackageConf"]["setup"]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class AppHost:
    """The applications of one simulated camera: a sandbox directory and the app processes."""

    def __init__(self, cam: Camera) -> None:
        self.cam = cam
        self.root = Path(tempfile.mkdtemp(prefix="camlytics-simcam-apps-"))
        self.apps: dict[str, InstalledApp] = {}
        self.lock = threading.RLock()
        self.bin = self.root / ".device-bin"
        self.bin.mkdir()
        from camlytics.runtime.micropython import find_micropython  # the PyPI MicroPython plays the device's

        mpy = find_micropython()
        if mpy:
            (self.bin / "micropython").symlink_to(mpy)
        self.dbus = self.root / ".dbus"  # the VAPIX service accounts the D-Bus stand-ins hand out
        self.dbus.mkdir(mode=0o700)
        for tool, script in (("dbus-send", DBUS_SEND), ("gdbus", GDBUS)):
            (self.bin / tool).write_text(script.replace("@DIR@", str(self.dbus)))
            (self.bin / tool).chmod(0o755)
        self.log = []  # install messages, like the camera's system log
        # AllowUnsigned: allowed by default before AXIS OS 12; from 12 an admin must allow unsigned apps
        self.allow_unsigned = os_major(cam) < 12
        atexit.register(self.close)  # also when the process ends without stopping the camera

    # -- install ---------------------------------------------------------------------------------
    def install(self, package: bytes, max_package: int = MAX_PACKAGE) -> InstalledApp:
        """Check and unpack a package (replacing an installed version); PackageError if refused."""
        if len(package) > max_package:
            raise PackageError(E_TOO_LARGE, f"package is {len(package)} bytes, the limit is {max_package}")
        body, trailer = split_signature(package)
        members = read_package(body)
        manifest = package_manifest(members)
        check_policy(self.cam, manifest, self.allow_unsigned, trailer)
        setup = manifest["acapPackageConf"]["setup"]
        name = setup["appName"]
        emulator = emulator_for(setup.get("architecture", "all"))
        with self.lock:
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
            try:
                unpack(members, staging)
                check_binaries(staging, setup.get("architecture", "all"))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            old = self.apps.get(name)
            if old is not None:
                self.stop(name)
                self._unserve(old)
            directory = self.root / name
            try:
                if directory.exists():
                    if (directory / "localdata").is_dir():  # a camera keeps an app's data across upgrades
                        shutil.rmtree(staging / "localdata", ignore_errors=True)
                        (directory / "localdata").rename(staging / "localdata")
                    shutil.rmtree(directory)
                (staging / "localdata").mkdir(mode=0o700, exist_ok=True)
                staging.rename(directory)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                self.apps.pop(name, None)
                raise
            app = InstalledApp(name, manifest, directory, self.root / f"{name}.log", emulator=emulator)
            self.apps[name] = app
            self._serve(app)
            for param in manifest["acapPackageConf"].get("configuration", {}).get("paramConfig", []):
                self.cam.params.setdefault(f"root.{name}.{param['name']}", param["default"])
                if "password" in str(param.get("type", "")):  # param.cgi lists it masked
                    self.cam.secret_params.add(f"root.{name}.{param['name']}")
        return app

    def _web_paths(self, app: InstalledApp) -> list[tuple[Path, str]]:
        html = app.directory / "html"
        return [(f, f"/local/{app.name}/{f.relative_to(html).as_posix()}")
                for f in sorted(html.rglob("*")) if f.is_file() and not f.is_symlink()] if html.is_dir() else []

    def _serve(self, app: InstalledApp) -> None:
        """Routes for the app's web pages (the settings page) and its reverse-proxy entries, under
        /local/<appName>/ as a camera serves them."""
        config = app.manifest["acapPackageConf"].get("configuration", {})
        access = next((e["access"] for e in config.get("httpConfig", []) if e.get("type") == "directory"), "admin")
        for file, path in self._web_paths(app):
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            page = with_access(lambda cam, req, f=file, t=ctype: Response(200, t, f.read_bytes()), access)
            self.cam.add_route("GET", path, page)
        for entry in config.get("reverseProxy", []):
            prefix = f"/local/{app.name}/{entry['apiPath'].strip('/')}"
            self.cam.add_prefix_route(prefix, proxy_handler(prefix, entry["target"], entry["access"]))
            app.proxies.append(prefix)

    def _unserve(self, app: InstalledApp) -> None:
        for _, path in self._web_paths(app):
            self.cam.routes.pop(("GET", path), None)
        for prefix in app.proxies:
            self.cam.remove_prefix_route(prefix)
        app.proxies.clear()

    # -- control ---------------------------------------------------------------------------------
    def get(self, name: str) -> InstalledApp:
        app = self.apps.get(name)
        if app is None:
            raise PackageError(E_NOT_FOUND, f"no application {name!r}")
        return app

    def start(self, name: str) -> None:
        with self.lock:
            app = self.get(name)
            if app.running:
                raise PackageError(E_RUNNING, f"{name} is already running")
            app.wanted = True
            app.restarts.clear()
            self._spawn(app)

    def _spawn(self, app: InstalledApp) -> None:
        params = self.root / f"{app.name}.params"
        prefix = f"root.{app.name}."
        with self.lock:
            lines = [f"{k}={v}" for k, v in sorted(self.cam.params.items()) if k.startswith(prefix)]
        fd = os.open(params, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(app.directory), "LANG": "C.UTF-8",
               "CAMLYTICS_PARAMS_FILE": str(params), "CAMLYTICS_VAPIX_URL": self.cam.url}
        command = [str(app.directory / app.name)] + shlex.split(app.setup.get("runOptions", ""))
        (app.directory / "localdata").mkdir(mode=0o700, exist_ok=True)
        self._service_account(app)
        with open(app.log_path, "ab") as log:
            log.write(f"--- simcam: starting {app.name} {time.strftime('%H:%M:%S')}\n".encode())
            if app.emulator:
                qemu = shutil.which(app.emulator)
                if not qemu:
                    log.write(f"--- simcam: cannot start: {app.emulator} not found (install the Debian package "
                              f"qemu-user) to run this {app.setup.get('architecture')} app here\n".encode())
                    app.process, app.wanted, app.exit_code = None, False, 127
                    return
                env["CAMLYTICS_EMULATOR"] = qemu
                log.write(f"--- simcam: {app.setup.get('architecture')} app on a {platform.machine()} host: "
                          f"CAMLYTICS_EMULATOR={qemu}\n".encode())
            log.flush()
            try:
                app.process = subprocess.Popen(command, cwd=app.directory, env=env, stdin=subprocess.DEVNULL,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                log.write(f"--- simcam: cannot start: {exc}\n".encode())
                app.process, app.wanted, app.exit_code = None, False, 127
                return
        app.exit_code = None
        threading.Thread(target=self._watch, args=(app, app.process), daemon=True,
                         name=f"simcam-app:{app.name}").start()

    def _watch(self, app: InstalledApp, process: subprocess.Popen) -> None:
        """Wait for the app to exit; respawn it if its runMode says so and it was not stopped."""
        code = process.wait()
        kill_group(process.pid)  # what it left behind goes with it (systemd: the app's control group)
        with self.lock:
            if app.process is not process or self.apps.get(app.name) is not app:  # restarted or removed meanwhile
                return
            app.exit_code = code
            with open(app.log_path, "ab") as log:
                log.write(f"--- simcam: {app.name} exited with {code}\n".encode())
            if not app.wanted or app.setup.get("runMode") != "respawn" or self.cam.stopping:
                app.wanted = False
                return
            now = time.monotonic()
            app.restarts = [t for t in app.restarts if now - t < RESPAWN_LIMIT[1]] + [now]
            if len(app.restarts) > RESPAWN_LIMIT[0]:
                app.wanted = False
                with open(app.log_path, "ab") as log:
                    log.write(b"--- simcam: restarted too often, giving up\n")
                return
        time.sleep(1.0)  # systemd's RestartSec-like pause
        with self.lock:
            if app.wanted and app.process is process and self.apps.get(app.name) is app:
                self._spawn(app)

    def stop(self, name: str, *, strict: bool = False) -> None:
        """Stop an app (SIGTERM, then SIGKILL after 5 s); strict: Error 7 if it is not running."""
        with self.lock:
            app = self.get(name)
            app.wanted = False
            process = app.process
            if process is None or process.poll() is not None:
                if strict:
                    raise PackageError(E_NOT_RUNNING, f"{name} is not running")
                return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)  # the whole session: the launcher and what it started
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        kill_group(process.pid)  # children that ignored SIGTERM after the launcher exited

    def _service_account(self, app: InstalledApp) -> None:
        """A VAPIX service account for an app that declares GetCredentials (AXIS OS >= 11.9), handed out by
        the dbus-send/gdbus stand-ins on the device PATH, like the camera's D-Bus service."""
        dbus = app.manifest.get("resources", {}).get("dbus", {})
        declared = dbus.get("requiredMethods", []) + dbus.get("conditionalMethods", [])
        method = "com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials"
        file = self.dbus / app.name
        if not any(m == method or (m.endswith(".*") and method.startswith(m[:-1])) for m in declared) \
                or _os_tuple(self.cam.os_version) < (*DBUS_METHODS[method], 0):
            file.unlink(missing_ok=True)
            return
        if file.exists():
            return
        user, password = f"acap-{app.name}", secrets.token_urlsafe(18)
        self.cam.set_user(user, password, SERVICE_ACCOUNT_ROLE)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{user}:{password}")

    def remove(self, name: str) -> None:
        with self.lock:
            self.stop(name)
            app = self.apps.pop(name)
            if (self.dbus / name).exists():
                (self.dbus / name).unlink()
                self.cam.set_user(f"acap-{name}", None)
            self._unserve(app)
            shutil.rmtree(app.directory, ignore_errors=True)
            app.log_path.unlink(missing_ok=True)
            (self.root / f"{name}.params").unlink(missing_ok=True)
            for key in [k for k in self.cam.params if k.startswith(f"root.{name}.")]:
                del self.cam.params[key]
                self.cam.secret_params.discard(key)

    def status(self, app: InstalledApp) -> str:
        return "Running" if app.running else "Stopped"

    def close(self) -> None:
        """Stop every app and delete the sandbox."""
        for name in list(self.apps):
            self.stop(name)
        with self.lock:  # from here on, watcher threads of stopped apps write nothing
            self.apps.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.close)


# Stand-ins for the camera's D-Bus tools on the device PATH: GetCredentials NAME answers "user:password" of
# the app's service account (in dbus-send --print-reply / gdbus call format), anything else fails.
_DBUS_COMMON = r"""#!/bin/sh
# camlytics simcam: the camera's D-Bus as apps use it (com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials)
method=; name=
for a in "$@"; do
    case $a in
        *VAPIXServiceAccounts1.GetCredentials) method=1;;
        string:*) name=${a#string:};;
        -*|/*|*.*) ;;
        *) name=$a;;
    esac
done
case $name in ''|*[!A-Za-z0-9_]*) name=;; esac
if [ -z "$method" ] || [ -z "$name" ] || [ ! -r "@DIR@/$name" ]; then
    echo "Error org.freedesktop.DBus.Error.AccessDenied: simcam: no VAPIX service account for '$name'" \
         "(the app must declare GetCredentials in resources.dbus; AXIS OS 11.9+)" >&2
    exit 1
fi
creds=$(cat "@DIR@/$name")
"""
DBUS_SEND = _DBUS_COMMON + r"""printf 'method return time=0.0 sender=:1.1 -> destination=:1.2 serial=2 reply_serial=1\n'
printf '   string "%s"\n' "$creds"
"""
GDBUS = _DBUS_COMMON + r"""printf "('%s',)\n" "$creds"
"""


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of an app's process group (started with start_new_session: pgid = its pid)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def os_major(cam: Camera) -> int:
    return int(cam.os_version.split(".")[0])


def _os_tuple(version: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"[0-9]+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def check_policy(cam: Camera, manifest: dict, allow_unsigned: bool, trailer: bytes) -> None:
    """What the camera enforces beyond the manifest schema; PackageError (5 incompatible, 2 signature)."""
    setup = manifest["acapPackageConf"]["setup"]
    os_version = _os_tuple(cam.os_version)
    arch = setup.get("architecture", "all")
    if arch not in ("all", cam.arch):
        raise PackageError(E_INCOMPATIBLE, f"package architecture {arch} does not run on this {cam.arch} camera")
    schema = int(str(manifest["schemaVersion"]).split(".")[0])
    if os_version >= (13, 0, 0) and schema < 2:
        raise PackageError(E_INCOMPATIBLE, f"AXIS OS {cam.os_version} installs manifest schema 2.x only, "
                                           f"the package has {manifest['schemaVersion']}")
    ranges = setup.get("compatibleOsVersions")
    if ranges and os_version >= COMPATIBLE_OS_ENFORCED and not any(_os_in_range(os_version, r) for r in ranges):
        raise PackageError(E_INCOMPATIBLE, f"AXIS OS {cam.os_version} is outside the package's "
                                           f"compatibleOsVersions {json.dumps(ranges)}")
    for method in manifest.get("resources", {}).get("dbus", {}).get("requiredMethods", []):
        since = next((v for m, v in DBUS_METHODS.items() if m == method or
                      (method.endswith(".*") and m.startswith(method[:-1]))), None)
        if since is None or os_version < (*since, 0):
            raise PackageError(E_INCOMPATIBLE, f"required D-Bus method {method} is not available on AXIS OS "
                                               f"{cam.os_version}")
    _check_proxy_entries(manifest)
    # Signatures: Axis appends one after the gzip'd tar. The simulator cannot verify it, so every
    # package counts as unsigned; one that carries a signature is never accepted as signed.
    note = f" (its {len(trailer)}-byte signature cannot be verified by the simulator)" if trailer else ""
    if os_version >= (13, 0, 0):
        raise PackageError(E_SIGNATURE, f"AXIS OS {cam.os_version} installs signed applications only; "
                                        f"this package is unsigned{note}")
    if not allow_unsigned:
        raise PackageError(E_SIGNATURE, f"the package is unsigned{note} and AllowUnsigned is false: an admin "
                                        "can allow unsigned apps with /axis-cgi/applications/config.cgi"
                                        "?action=set&name=AllowUnsigned&value=true")


def _os_in_range(version: tuple[int, int, int], entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    low, high = entry.get("min"), entry.get("max")
    if low is not None and version < _os_tuple(str(low)):
        return False
    if high is not None:  # "12" or "12.6" caps that whole series
        cap = [int(p) for p in re.findall(r"[0-9]+", str(high))[:3]]
        if list(version[:len(cap)]) > cap:
            return False
    return True


def _check_proxy_entries(manifest: dict) -> None:
    entries = manifest["acapPackageConf"].get("configuration", {}).get("reverseProxy", [])
    if not isinstance(entries, list):
        raise PackageError(E_INVALID, "configuration.reverseProxy must be a list")
    seen = set()
    for i, entry in enumerate(entries):
        where = f"configuration.reverseProxy[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"apiPath", "target", "access"}:
            raise PackageError(E_INVALID, f"{where} must be an object with apiPath, target and access")
        api, target, access = entry.get("apiPath"), entry.get("target"), entry.get("access")
        if not isinstance(api, str) or not API_PATH_RE.fullmatch(api.strip("/")) or ".." in api.split("/"):
            raise PackageError(E_INVALID, f"{where}.apiPath {api!r} is not a relative URL path")
        if not isinstance(target, str) or not (PROXY_TARGET_RE.fullmatch(target) or target.startswith("unix:/")):
            raise PackageError(E_INVALID, f"{where}.target {target!r} is neither http://localhost:PORT[/path] "
                                          "nor unix:/PATH")
        if access not in ROLES:
            raise PackageError(E_INVALID, f"{where}.access {access!r} is not one of {', '.join(ROLES)}")
        if api.strip("/") in seen:
            raise PackageError(E_INVALID, f"{where}.apiPath {api!r} appears twice")
        seen.add(api.strip("/"))


def emulator_for(arch: str) -> str | None:
    """The qemu-user program that runs `arch` ELF binaries on this host (None: `all`, or this host's CPU)."""
    from camlytics.firmware.build import ARCHES

    if arch == "all" or arch not in ARCHES or platform.machine() == ARCHES[arch].host_machine:
        return None
    return ARCHES[arch].qemu


def check_binaries(directory: Path, arch: str) -> None:
    """Every ELF file of an unpacked package must be built for the manifest's architecture (Error 5)."""
    from camlytics.firmware.build import elf_arch

    for path in sorted(directory.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        found = elf_arch(path)
        name = path.relative_to(directory).as_posix()
        if arch == "all":
            raise PackageError(E_INCOMPATIBLE, f"{name} is an ELF binary ({found or 'unknown architecture'}): "
                                               "a package with binaries must name its architecture, not all")
        if found != arch:
            raise PackageError(E_INCOMPATIBLE, f"{name} is built for {found or 'an unsupported architecture'}, "
                                               f"the manifest says {arch}")


def proxy_handler(prefix: str, target: str, access: str):
    """A handler forwarding `prefix[/rest]` to `target[/rest]` (a camera's reverse proxy, Apache's ProxyPass)."""
    match = PROXY_TARGET_RE.fullmatch(target)
    if match is None:  # unix:/PATH targets install, but the simulator does not serve them

        def unsupported(cam: Camera, req: Request) -> Response:
            return _bad_gateway(f"reverse-proxy target {target} (a unix socket) is not simulated")

        return with_access(unsupported, access)
    host_, port, base = match[1], int(match[2]), (match[3] or "").rstrip("/")

    def forward(cam: Camera, req: Request) -> Response:
        rest = req.path[len(prefix):]
        path = (base + rest) or "/"
        query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in req.query.items())
        headers = {k: v for k, v in req.headers.items() if k in PROXY_HEADERS}
        headers["X-Forwarded-For"] = "127.0.0.1"
        if req.user:
            headers["X-Forwarded-User"] = req.user
        conn = http.client.HTTPConnection("127.0.0.1" if host_ == "localhost" else host_, port, timeout=PROXY_TIMEOUT)
        try:
            conn.request(req.method, path + (f"?{query}" if query else ""), body=req.body or None, headers=headers)
            answer = conn.getresponse()
            length = answer.getheader("Content-Length")
            if length and length.isdigit() and int(length) > PROXY_MAX_RESPONSE:
                return _bad_gateway(f"the app's answer is {length} bytes, more than {PROXY_MAX_RESPONSE}")
            data = answer.read(PROXY_MAX_RESPONSE + 1)
            if len(data) > PROXY_MAX_RESPONSE:
                return _bad_gateway(f"the app's answer is more than {PROXY_MAX_RESPONSE} bytes")
            passed = {k: v for k, v in answer.getheaders() if k.lower() in PROXY_ANSWER_HEADERS and k.lower() != "content-type"}
            return Response(answer.status, answer.getheader("Content-Type", "application/octet-stream"), data, passed)
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, reset, a malformed answer
            return _bad_gateway(f"the app does not answer at {target}: {exc or type(exc).__name__}")
        finally:
            conn.close()

    return with_access(forward, access)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _bad_gateway(reason: str) -> Response:
    return Response.text(f"<HTML><HEAD><TITLE>502 Bad Gateway</TITLE></HEAD><BODY>{_html(reason)}</BODY></HTML>\n",
                         502, "text/html")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def host(cam: Camera) -> AppHost:
    """This camera's AppHost, created on first use (and closed when the camera stops)."""
    with _HOSTS_LOCK:
        apps = cam.extensions.get("apps")
        if apps is None:
            apps = cam.extensions["apps"] = AppHost(cam)
            cam.stop_hooks.append(lambda: (apps.close(), cam.extensions.pop("apps", None)))
        return apps


# --------------------------------------------------------------------------------------------------
# Package checks


def split_signature(package: bytes) -> tuple[bytes, bytes]:
    """(the gzip stream, what follows it): Axis appends a signed package's signature after the gzip'd tar.

    Trailing zero bytes (block padding) do not count as a signature. PackageError if not gzip.
    """
    if package[:2] != b"\x1f\x8b":
        raise PackageError(E_INVALID, "not a gzip file")
    inflater = zlib.decompressobj(wbits=31)
    data, total = package, 0
    try:
        while data and not inflater.eof:  # to the end of the first gzip member; the output is discarded
            total += len(inflater.decompress(data, 1 << 20))
            if total > MAX_UNPACKED + (1 << 20):
                raise PackageError(E_TOO_LARGE, f"unpacks to more than {MAX_UNPACKED} bytes")
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise PackageError(E_INVALID, f"not a valid gzip'd tar: {exc}") from None
    trailer = inflater.unused_data if inflater.eof else b""
    if not trailer.strip(b"\x00"):
        return package, b""
    return package[:len(package) - len(trailer)], trailer


def read_package(package: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    """{normalised name: (member, bytes or None for directories/links)} of a gzip'd tar, checked for safety."""
    if package[:2] != b"\x1f\x8b":
        raise PackageError(E_INVALID, "not a gzip file")
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as tar:
            for info in tar:
                if len(members) >= MAX_MEMBERS:
                    raise PackageError(E_TOO_LARGE, f"more than {MAX_MEMBERS} files")
                name = safe_name(info.name)
                if info.isfile():
                    total += info.size
                    if total > MAX_UNPACKED:
                        raise PackageError(E_TOO_LARGE, f"unpacks to more than {MAX_UNPACKED} bytes")
                    data = tar.extractfile(info).read()
                elif info.isdir():
                    data = None
                elif info.issym():
                    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
                    if info.linkname.startswith("/") or target == ".." or target.startswith("../"):
                        raise PackageError(E_INVALID, f"link {name} -> {info.linkname} leaves the package")
                    data = None
                else:
                    raise PackageError(E_INVALID, f"{name} is not a file, directory or symbolic link")
                if name in members:
                    raise PackageError(E_INVALID, f"{name} appears twice")
                members[name] = (info, data)
    except PackageError:
        raise
    except Exception as exc:  # tarfile, gzip, zlib and EOF errors of a corrupt or truncated stream
        raise PackageError(E_INVALID, f"not a valid gzip'd tar: {exc}") from None
    return members


def safe_name(name: str) -> str:
    """The member name normalised; PackageError for absolute paths, `..` and odd characters."""
    if name.startswith("/") or "\\" in name or "\x00" in name:
        raise PackageError(E_INVALID, f"member name {name!r} is absolute or has odd characters")
    if ".." in name.split("/"):
        raise PackageError(E_INVALID, f"member name {name!r} contains '..'")
    return posixpath.normpath(name)  # without '..' it cannot leave the package


def package_manifest(members: dict[str, tuple[tarfile.TarInfo, bytes | None]]) -> dict:
    """The checked manifest of unpacked members: schema fields, LICENSE, the executable."""
    from camlytics.deploy.manifest import validate_manifest

    if "manifest.json" not in members or members["manifest.json"][1] is None:
        raise PackageError(E_INVALID, "no manifest.json")
    raw = members["manifest.json"][1]
    if len(raw) > MAX_MANIFEST:
        raise PackageError(E_INVALID, "manifest.json is too large")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackageError(E_INVALID, f"manifest.json is not JSON: {exc}") from None
    files = {name for name, (info, _) in members.items() if info.isfile()}
    try:
        validate_manifest(manifest, files=files)
    except DeployError as exc:
        raise PackageError(E_INVALID, str(exc)) from None
    license_data = members.get("LICENSE", (None, None))[1]
    if not license_data or not license_data.strip():
        raise PackageError(E_INVALID, "LICENSE is missing or empty")
    return manifest


def unpack(members: dict[str, tuple[tarfile.TarInfo, bytes | None]], dest: Path) -> None:
    """Write checked members under `dest` (modes limited to rwxr-xr-x; the executable made executable)."""
    for name, (info, data) in sorted(members.items()):
        if name == ".":
            continue
        path = dest / name
        if info.isdir():
            path.mkdir(parents=True, exist_ok=True)
        elif info.issym():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(info.linkname)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():  # a file may not be written through a link the package made
                raise PackageError(E_INVALID, f"{name} is written through a link")
            path.write_bytes(data or b"")
            path.chmod(info.mode & 0o755)
    manifest = json.loads(members["manifest.json"][1])
    exe = dest / manifest["acapPackageConf"]["setup"]["appName"]
    exe.chmod(exe.stat().st_mode | 0o100)


def multipart_file(req: Request) -> bytes:
    """The first file part of a multipart/form-data body; PackageError if there is none."""
    ctype = req.headers.get("content-type", "")
    match = re.search(r'boundary="?([^";]+)"?', ctype)
    if not ctype.startswith("multipart/form-data") or not match:
        raise PackageError(E_INVALID, "upload is not multipart/form-data")
    delimiter = b"--" + match[1].encode()
    for part in req.body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if sep and b"filename=" in head:
            return content[:-2] if content.endswith(b"\r\n") else content
    raise PackageError(E_INVALID, "no file in the upload")


# --------------------------------------------------------------------------------------------------
# Endpoints


def _answer(fn) -> Response:
    try:
        fn()
    except PackageError as exc:
        return Response.text(f"Error: {exc.code}\n")
    return Response.text("OK\n")


@route(ROUTES, "POST", path=UPLOAD, access="admin")
def upload_cgi(cam: Camera, req: Request) -> Response:
    apps = host(cam)

    def install() -> None:
        try:
            app = apps.install(multipart_file(req), cam.extensions.get("apps_max_package", MAX_PACKAGE))
            apps.log.append(f"installed {app.name}")
        except PackageError as exc:
            apps.log.append(f"upload refused (Error: {exc.code}): {exc}")
            raise

    return _answer(install)


@route(ROUTES, "GET", "POST", path="/axis-cgi/applications/control.cgi", access="admin")
def control_cgi(cam: Camera, req: Request) -> Response:
    apps = host(cam)
    args = req.args
    action, name = args.get("action", ""), args.get("package", "")
    actions = {
        "start": lambda: apps.start(name),
        "stop": lambda: apps.stop(name, strict=True),
        "restart": lambda: (apps.stop(name), apps.start(name)),
        "remove": lambda: apps.remove(name),
    }
    if action not in actions or not name:
        return Response.text(f"Error: {E_INVALID}\n")
    return _answer(actions[action])


@route(ROUTES, "GET", "POST", path="/axis-cgi/applications/list.cgi", access="admin")
def list_cgi(cam: Camera, req: Request) -> Response:
    apps = host(cam)
    rows = []
    with apps.lock:
        for name, app in sorted(apps.apps.items()):
            setup = app.setup
            page = app.manifest["acapPackageConf"].get("configuration", {}).get("settingPage", "")
            attrs = {"Name": name, "NiceName": setup.get("friendlyName", name), "Vendor": setup["vendor"],
                     "Version": setup["version"], "ApplicationID": setup.get("appId", ""), "License": "None",
                     "Status": apps.status(app), "ConfigurationPage": f"local/{name}/{page}" if page else "",
                     "VendorHomePage": setup.get("vendorUrl", "")}
            rows.append("<application " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>")
    return Response.text('<reply result="ok">\n' + "\n".join(rows) + ("\n" if rows else "") + "</reply>\n",
                         content_type="text/xml")


def app_log(apps: AppHost, name: str) -> bytes | None:
    """The tail of an app's stdout/stderr (None if no such app)."""
    app = apps.apps.get(name)
    if app is None:
        return None
    try:
        with open(app.log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(app.log_path) - LOG_TAIL))
            return f.read()
    except FileNotFoundError:
        return b""


@route(ROUTES, "GET", path="/axis-cgi/admin/systemlog.cgi", access="admin")
def systemlog_cgi(cam: Camera, req: Request) -> Response:
    name = req.query.get("appname", "")
    apps = host(cam)
    if not name:  # the whole system log is not simulated: the install messages only
        return Response.text("".join(f"camlytics-simcam: {line}\n" for line in apps.log[-200:]))
    log = app_log(apps, name)
    if log is None:
        return Response.text(f"No log entries for application '{name}'\n")
    return Response(200, "text/plain; charset=utf-8", log)


@route(ROUTES, "GET", "POST", path="/axis-cgi/applications/config.cgi", access="admin")
def config_cgi(cam: Camera, req: Request) -> Response:
    apps = host(cam)
    args = req.args
    action, name, value = args.get("action", ""), args.get("name", ""), args.get("value", "")
    if name != "AllowUnsigned" or action not in ("get", "set"):
        return Response.text(f"Error: {E_INVALID}\n")
    if action == "get":
        return Response.text(f'<reply result="ok">\n<param name="AllowUnsigned" '
                             f'value="{"true" if apps.allow_unsigned else "false"}"/>\n</reply>\n', content_type="text/xml")
    if value not in ("true", "false"):
        return Response.text(f"Error: {E_INVALID}\n")
    if value == "true" and os_major(cam) >= 13:
        apps.log.append(f"AllowUnsigned refused: AXIS OS {cam.os_version} installs signed applications only")
        return Response.text(f"Error: {E_SIGNATURE}\n")
    apps.allow_unsigned = value == "true"
    apps.log.append(f"AllowUnsigned set to {value} by {req.user or 'an anonymous admin'}")
    return Response.text("OK\n")


@route(ROUTES, "GET", path="/camlytics-sim/apps")
def sim_apps(cam: Camera, req: Request) -> Response:
    apps = host(cam)
    with apps.lock:
        state: dict[str, Any] = {
            name: {"status": apps.status(app), "pid": app.process.pid if app.running else None,
                   "exit_code": app.exit_code, "restarts": len(app.restarts), "directory": str(app.directory),
                   "architecture": app.setup.get("architecture", "all"), "emulator": app.emulator,
                   "proxies": list(app.proxies)}
            for name, app in apps.apps.items()}
    return Response.json({"apps": state, "log": apps.log[-50:], "allow_unsigned": apps.allow_unsigned})


@route(ROUTES, "GET", path="/camlytics-sim/apps/log")
def sim_app_log(cam: Camera, req: Request) -> Response:
    name = req.query.get("name", "")
    log = app_log(host(cam), name)
    if log is None:
        return Response.text(f"no application {name!r}\n", 404)
    return Response(200, "text/plain; charset=utf-8", log)
