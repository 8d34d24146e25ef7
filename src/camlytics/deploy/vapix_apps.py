"""Client for a camera's VAPIX application API: upload an .eap, start/stop/restart/remove, list.

    with AppsClient("http://root:pass@192.168.0.90") as cam:
        cam.upload(Path("camlytics_door_1_0_0_all.eap"))
        cam.control("start", "camlytics_door")
        for app in cam.list(): print(app.name, app.status)

Every failure is a DeployError with one readable line: unreachable camera, refused credentials,
and the camera's `Error: N` answers translated.
"""

from __future__ import annotations

import json
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
E_SIGNATURE = 2
CONTROL_ACTIONS = ("start", "stop", "restart", "remove")
# basicdeviceinfo `Soc` -> ACAP architecture, for a camera whose `Architecture` is not one of ours
SOC_ARCHES = (("artpec-6", "armv7hf"), ("artpec-7", "armv7hf"), ("artpec-8", "aarch64"), ("artpec-9", "aarch64"),
              ("cv25", "aarch64"), ("cv52", "aarch64"), ("s5l", "aarch64"), ("s5", "aarch64"), ("s3l", "armv7hf"),
              ("s2l", "armv7hf"), ("i.mx6", "armv7hf"), ("imx6", "armv7hf"))
ARCH_ALIASES = {"armv7hf": "armv7hf", "armv7l": "armv7hf", "armv7": "armv7hf", "armhf": "armv7hf",
                "aarch64": "aarch64", "arm64": "aarch64", "armv8": "aarch64"}
MAX_PACKAGE = 256 << 20
MAX_REPLY = 1 << 20


class UploadRefused(DeployError):
    """upload.cgi answered `Error: N`; `code` is N."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DeviceInfo:
    """What deploy and bundle need from basicdeviceinfo: the CPU and the AXIS OS version."""

    architecture: str  # as the camera reports it
    soc: str
    version: str  # AXIS OS, e.g. "12.6.85"
    product: str

    @property
    def acap_arch(self) -> str | None:
        """armv7hf / aarch64 for this camera (from Architecture, else from Soc), or None if neither fits."""
        arch = ARCH_ALIASES.get(self.architecture.strip().lower())
        if arch:
            return arch
        soc = self.soc.lower()
        return next((a for key, a in SOC_ARCHES if key in soc), None)

    @property
    def os_major(self) -> int | None:
        match = re.match(r"\s*(\d+)\.", self.version)
        return int(match[1]) if match else None


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
            match = re.match(r"\s*Error:\s*(\d+)", reply)
            raise UploadRefused(problem, int(match[1]) if match else 0)

    def device_info(self) -> DeviceInfo:
        """Architecture, Soc and AXIS OS version from basicdeviceinfo.cgi (getAllProperties)."""
        what = "read the camera's device information"
        body = {"apiVersion": "1.0", "context": "camlytics", "method": "getAllProperties"}
        reply = self._post("/axis-cgi/basicdeviceinfo.cgi", what, json=body)
        try:
            answer = json.loads(reply)
            if "error" in answer:
                raise DeployError(f"{what}: camera {self.host} answered error {answer['error'].get('code')}: "
                                  f"{str(answer['error'].get('message', ''))[:120]}")
            props = answer["data"]["propertyList"]
            return DeviceInfo(str(props.get("Architecture", "")), str(props.get("Soc", "")),
                              str(props.get("Version", "")), str(props.get("ProdFullName", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DeployError(f"{what}: camera {self.host} answered something that is not basicdeviceinfo JSON") from None

    def allow_unsigned(self) -> None:
        """applications/config.cgi?action=set&name=AllowUnsigned&value=true (AXIS OS 12: install unsigned apps)."""
        reply = self._post("/axis-cgi/applications/config.cgi", "allow unsigned apps",
                           params={"action": "set", "name": "AllowUnsigned", "value": "true"})
        text = reply.strip()
        if not (text.startswith("OK") or re.match(r"<reply\s+result=\"ok\"", text)):
            raise DeployError(f"allow unsigned apps: camera {self.host} refused: {(text.splitlines() or ['an empty answer'])[0][:160]}")

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
