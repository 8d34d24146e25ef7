"""Client for a camera's VAPIX application API: upload an .eap, start/stop/restart/remove, list.

    with AppsClient("http://root:pass@192.168.0.90") as cam:
        cam.upload(Path("camlytics_door_1_0_0_all.eap"))
        cam.control("start", "camlytics_door")
        for app in cam.list(): print(app.name, app.status)

Every failure is a DeployError with one readable line: unreachable camera, refused credentials,
and the camera's `Error: N` answers translated.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from camlytics.errors import AuthError, DeployError

UPLOAD_ERRORS = {
    1: "the camera says the package is invalid (not an ACAP package, or a bad manifest)",
    2: "the package's signature could not be verified (unsigned apps need AllowUnsigned on AXIS OS 12+)",
    3: "the package is too large for the camera",
    4: "the application was not found",
    5: "the package is not compatible with this camera (wrong architecture or firmware)",
    6: "the application is already running",
    7: "the application is not running",
    8: "the application could not be started",
    9: "the application could not be stopped",
    10: "the application could not be removed",
}
CONTROL_ACTIONS = ("start", "stop", "restart", "remove")
MAX_PACKAGE = 256 << 20
MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class InstalledApp:
    """One row of list.cgi."""

    name: str
    nice_name: str
    vendor: str
    version: str
    status: str


def camera_endpoint(url: str) -> tuple[str, httpx.Auth | None]:
    """Base URL and Digest auth from http://user:pass@host[:port] (credentials never printed).

    As for `snapshot` and `run`, a URL without a user or password takes them from $CAMLYTICS_USER /
    $CAMLYTICS_PASSWORD; a malformed URL is a DeployError naming the problem (`urls.parse_url`)."""
    from camlytics.errors import SourceError
    from camlytics.urls import camera_settings

    try:
        cam = camera_settings(url)
    except SourceError as exc:
        raise DeployError(str(exc)) from None
    auth = httpx.DigestAuth(cam["user"], cam["password"] or "") if cam["user"] else None
    return cam["url"], auth


def error_message(reply: str, action: str) -> str | None:
    """A readable line for an `Error: N` reply (None when the reply is OK)."""
    text = reply.strip()
    if text.startswith("OK"):
        return None
    match = re.match(r"Error:\s*(\d+)", text)
    if match:
        code = int(match[1])
        return f"{action}: {UPLOAD_ERRORS.get(code, 'the camera reported an error')} (camera answered Error: {code})"
    return f"{action}: unexpected camera answer {text[:120]!r}"


class AppsClient:
    """The application API of one camera; a context manager closing its HTTP connections."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.base, auth = camera_endpoint(url)
        self.host = urlsplit(self.base).netloc
        # uploads of a few MiB to a camera can take a while: long write/read, short connect
        self.http = httpx.Client(auth=auth, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))

    def __enter__(self) -> "AppsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, what: str, **kwargs) -> str:
        try:
            reply = self.http.post(self.base + path, **kwargs)
        except httpx.TimeoutException:
            raise DeployError(f"{what}: camera {self.host} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise DeployError(f"{what}: cannot reach camera {self.host} ({exc.__class__.__name__}: {exc})") from None
        if reply.status_code in (401, 403):
            raise AuthError(f"{what}: camera {self.host} refused the credentials (HTTP {reply.status_code})")
        if reply.status_code == 404:
            raise DeployError(f"{what}: camera {self.host} has no {path} (not an Axis camera, or no ACAP support)")
        if reply.status_code >= 300:
            raise DeployError(f"{what}: camera {self.host} answered HTTP {reply.status_code}")
        if len(reply.content) > MAX_REPLY:
            raise DeployError(f"{what}: camera {self.host} answered {len(reply.content)} bytes, too many")
        return reply.text

    def upload(self, package: Path) -> None:
        """Install (or upgrade) an .eap; DeployError with the camera's reason if refused."""
        from camlytics.deploy.bundle import read_limited

        data = read_limited(package, MAX_PACKAGE, "package", "that is not an ACAP package")
        reply = self._post("/axis-cgi/applications/upload.cgi", f"upload {package.name}",
                           files={"packfil": (package.name, data, "application/octet-stream")})
        problem = error_message(reply, f"upload {package.name}")
        if problem:
            raise DeployError(problem)

    def control(self, action: str, name: str) -> None:
        """start | stop | restart | remove an installed application."""
        if action not in CONTROL_ACTIONS:
            raise DeployError(f"action must be one of {', '.join(CONTROL_ACTIONS)}, got {action!r}")
        reply = self._post("/axis-cgi/applications/control.cgi", f"{action} {name}",
                           params={"action": action, "package": name})
        problem = error_message(reply, f"{action} {name}")
        if problem:
            raise DeployError(problem)

    def list(self) -> list[InstalledApp]:
        """The installed applications."""
        reply = self._post("/axis-cgi/applications/list.cgi", "list applications")
        try:
            root = ET.fromstring(reply.strip())
        except ET.ParseError:
            problem = error_message(reply, "list applications")
            raise DeployError(problem or f"list applications: camera {self.host} answered something that is not XML") from None
        if root.tag != "reply" or root.get("result", "ok") != "ok":
            raise DeployError(f"list applications: camera {self.host} answered result={root.get('result')!r}")
        return [InstalledApp(a.get("Name", ""), a.get("NiceName", ""), a.get("Vendor", ""), a.get("Version", ""),
                             a.get("Status", "")) for a in root.iter("application")]

    def log(self, name: str) -> str:
        """The application's lines of the camera's system log (systemlog.cgi?appname=NAME)."""
        what = f"log of {name}"
        try:
            reply = self.http.get(self.base + "/axis-cgi/admin/systemlog.cgi", params={"appname": name})
        except httpx.HTTPError as exc:
            raise DeployError(f"{what}: cannot reach camera {self.host} ({exc.__class__.__name__}: {exc})") from None
        if reply.status_code in (401, 403):
            raise AuthError(f"{what}: camera {self.host} refused the credentials (HTTP {reply.status_code})")
        if reply.status_code != 200:
            raise DeployError(f"{what}: camera {self.host} answered HTTP {reply.status_code}")
        return reply.text[-MAX_REPLY:]

    def set_params(self, name: str, params: dict[str, str]) -> None:
        """Update `root.<name>.<param>` values through param.cgi (they apply when the app (re)starts)."""
        if not params:
            return
        form = {"action": "update", **{f"root.{name}.{k}": v for k, v in params.items()}}
        reply = self._post("/axis-cgi/param.cgi", f"set parameters of {name}", data=form)
        if not reply.strip().startswith("OK"):
            first = reply.strip().splitlines()[0] if reply.strip() else "empty answer"
            # the camera's line names the parameter; it echoes the value, which may be a password
            first = re.sub(r"to '.*'", "to <value>", first)
            raise DeployError(f"set parameters of {name}: camera refused: {first[:160]}")
