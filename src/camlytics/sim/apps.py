"""The simulated camera's ACAP application API: install, run, list and remove `.eap` packages for real.

VAPIX endpoints (behind the camera's authentication), answering like a camera (`OK` / `Error: N`):
- `POST /axis-cgi/applications/upload.cgi` (multipart, one file field): checks the package (gzip'd
  tar; member paths relative, no `..`, no links leaving the package, no devices; size and count
  limits; `manifest.json` valid against the documented schema fields; non-empty `LICENSE`; the
  `appName` executable present; architecture `all` or the camera's) and unpacks it into this
  camera's sandbox directory. The app's parameters appear in param.cgi as `root.<appName>.<name>`
  (values kept across upgrades, like a camera).
- `POST|GET /axis-cgi/applications/control.cgi?action=start|stop|restart|remove&package=NAME`:
  `start` runs the launcher as a subprocess: its device PATH holds the PyPI MicroPython as
  `micropython`, `CAMLYTICS_VAPIX_URL` points at this camera (a real app uses 127.0.0.12) and
  `CAMLYTICS_PARAMS_FILE` holds the app's parameters in param.cgi list format. runMode `respawn`
  restarts an app that exits (at most 5 times a minute, then it stays Stopped).
- `POST|GET /axis-cgi/applications/list.cgi`: `<reply result="ok"><application Name=... Status=.../></reply>`.

`GET /axis-cgi/admin/systemlog.cgi?appname=NAME` returns the app's output (a camera's system log
lines of that app).
The files under an installed app's `html/` are served at `/local/<appName>/...` (authenticated), as a
camera serves an app's settings page.

Simulator-only (no authentication): `GET /camlytics-sim/apps` (JSON: status, pid, exit code,
restarts per app) and `GET /camlytics-sim/apps/log?name=NAME` (the app's stdout and stderr).
The sandbox and every app process go away with the camera (`SimulatedCamera.stop`).
Tests can lower the package size limit with `cam.extensions["apps_max_package"] = N` (bytes).
"""

from __future__ import annotations

import atexit
import io
import json
import mimetypes
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from camlytics.errors import DeployError
from camlytics.sim.http import MAX_BODY, Camera, Request, Response, Routes, route

MAX_PACKAGE = MAX_BODY - (1 << 16)  # bytes of an uploaded .eap: what fits in a request, less the envelope
MAX_UNPACKED = 256 << 20  # bytes of all members together (a gzip bomb stops here)
MAX_MEMBERS = 4096
MAX_MANIFEST = 1 << 20
RESPAWN_LIMIT = (5, 60.0)  # restarts within seconds, then the app stays stopped (like systemd)
LOG_TAIL = 1 << 20  # bytes of log the log endpoint returns at most

# VAPIX application API error numbers (see VAPIX-ACAP.md)
E_INVALID, E_SIGNATURE, E_TOO_LARGE, E_NOT_FOUND, E_INCOMPATIBLE, E_RUNNING, E_NOT_RUNNING = 1, 2, 3, 4, 5, 6, 7

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
        self.log = []  # install messages, like the camera's system log
        atexit.register(self.close)  # also when the process ends without stopping the camera

    # -- install ---------------------------------------------------------------------------------
    def install(self, package: bytes, max_package: int = MAX_PACKAGE) -> InstalledApp:
        """Check and unpack a package (replacing an installed version); PackageError if refused."""
        if len(package) > max_package:
            raise PackageError(E_TOO_LARGE, f"package is {len(package)} bytes, the limit is {max_package}")
        members = read_package(package)
        manifest = package_manifest(members)
        setup = manifest["acapPackageConf"]["setup"]
        arch = setup.get("architecture", "all")
        device_arch = self.cam.params.get("root.Properties.System.Architecture", "aarch64")
        if arch not in ("all", device_arch):
            raise PackageError(E_INCOMPATIBLE, f"package architecture {arch} does not run on this {device_arch} camera")
        name = setup["appName"]
        with self.lock:
            old = self.apps.get(name)
            if old is not None:
                self.stop(name)
            directory = self.root / name
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
            try:
                unpack(members, staging)
                if directory.exists():
                    shutil.rmtree(directory)
                staging.rename(directory)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if old is not None:
                self._unserve(old)
            app = InstalledApp(name, manifest, directory, self.root / f"{name}.log")
            self.apps[name] = app
            self._serve(app)
            for param in manifest["acapPackageConf"].get("configuration", {}).get("paramConfig", []):
                self.cam.params.setdefault(f"root.{name}.{param['name']}", param["default"])
        return app

    def _web_paths(self, app: InstalledApp) -> list[tuple[Path, str]]:
        html = app.directory / "html"
        return [(f, f"/local/{app.name}/{f.relative_to(html).as_posix()}")
                for f in sorted(html.rglob("*")) if f.is_file() and not f.is_symlink()] if html.is_dir() else []

    def _serve(self, app: InstalledApp) -> None:
        """Routes for the app's web pages (the settings page), like a camera's /local/<appName>/."""
        for file, path in self._web_paths(app):
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self.cam.add_route("GET", path, lambda cam, req, f=file, t=ctype: Response(200, t, f.read_bytes()))

    def _unserve(self, app: InstalledApp) -> None:
        for _, path in self._web_paths(app):
            self.cam.routes.pop(("GET", path), None)

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
        with open(app.log_path, "ab") as log:
            log.write(f"--- simcam: starting {app.name} {time.strftime('%H:%M:%S')}\n".encode())
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

    def remove(self, name: str) -> None:
        with self.lock:
            self.stop(name)
            app = self.apps.pop(name)
            self._unserve(app)
            shutil.rmtree(app.directory, ignore_errors=True)
            app.log_path.unlink(missing_ok=True)
            (self.root / f"{name}.params").unlink(missing_ok=True)
            for key in [k for k in self.cam.params if k.startswith(f"root.{name}.")]:
                del self.cam.params[key]

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


@route(ROUTES, "POST", path=UPLOAD)
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


@route(ROUTES, "GET", "POST", path="/axis-cgi/applications/control.cgi")
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


@route(ROUTES, "GET", "POST", path="/axis-cgi/applications/list.cgi")
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


@route(ROUTES, "GET", path="/axis-cgi/admin/systemlog.cgi")
def systemlog_cgi(cam: Camera, req: Request) -> Response:
    name = req.query.get("appname", "")
    log = app_log(host(cam), name) if name else None
    if log is None:  # the whole system log is not simulated: only installed apps' lines
        return Response.text(f"No log entries for application '{name}'\n" if name else "Usage: ?appname=NAME\n")
    return Response(200, "text/plain; charset=utf-8", log)


@route(ROUTES, "GET", path="/camlytics-sim/apps")
def sim_apps(cam: Camera, req: Request) -> Response:
    apps = host(cam)
    with apps.lock:
        state: dict[str, Any] = {
            name: {"status": apps.status(app), "pid": app.process.pid if app.running else None,
                   "exit_code": app.exit_code, "restarts": len(app.restarts), "directory": str(app.directory)}
            for name, app in apps.apps.items()}
    return Response.json({"apps": state, "log": apps.log[-50:]})


@route(ROUTES, "GET", path="/camlytics-sim/apps/log")
def sim_app_log(cam: Camera, req: Request) -> Response:
    name = req.query.get("name", "")
    log = app_log(host(cam), name)
    if log is None:
        return Response.text(f"no application {name!r}\n", 404)
    return Response(200, "text/plain; charset=utf-8", log)
