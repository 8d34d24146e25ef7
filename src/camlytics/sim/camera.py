"""A simulated Axis network camera: the VAPIX HTTP calls camlytics uses, served from the synthetic scene.

`SimulatedCamera` runs a threaded HTTP server on 127.0.0.1 (a free port by default) that answers like
an Axis camera:

- `GET /axis-cgi/jpg/image.cgi` (`resolution`, `compression`, `camera`) and `GET /axis-cgi/mjpg/video.cgi`
  (`fps`, `nbrofframes`, `duration`), rendered from `camlytics.sim.Scene` at the simulated time;
- `POST /axis-cgi/basicdeviceinfo.cgi`, `POST /axis-cgi/apidiscovery.cgi` (JSON APIs),
  `GET|POST /axis-cgi/param.cgi` (`action=list|update`; a POST body is read as a form whatever its
  content type, as the `axis` client library sends `text/plain`);
- `GET /axis-cgi/virtualinput/activate.cgi|deactivate.cgi` with the camera's XML answers;
- HTTP Digest authentication (MD5, qop=auth, realm `AXIS_<serial>`), optionally Basic, or none, for
  users with Axis roles (`users={"root": ("pass", "admin"), "viewer": ("vpass", "viewer")}`; admin >
  operator > viewer > anonymous): a caller whose role is below what an endpoint needs gets 403. The
  application API, config.cgi and the system log need admin; param.cgi updates and virtual inputs
  operator; everything else viewer; an app's reverse-proxy entries the access their manifest names.
- `arch` (armv7hf, aarch64, x86_64) and `os_version` (e.g. "11.11", "12.6", "13.0") are what
  basicdeviceinfo and param.cgi report (Architecture, Soc, Version, Properties.Firmware.Version), and
  what the ACAP application API enforces (camlytics.sim.apps).

Non-VAPIX helpers for tests and demos live under `/camlytics-sim/` and need no authentication:
`GET /camlytics-sim/truth?t=SECONDS` (ground truth, default now), `GET /camlytics-sim/clock`,
`POST /camlytics-sim/fail?status=503&count=N[&after=M]` (or `kind=drop|html|truncated|corrupt`: N image
or MJPEG-part answers, after M good ones, fail that way; with `path=/axis-cgi/...` the next N answers of that
VAPIX call fail with `status`), `GET /camlytics-sim/virtualinput` (port states and call log).
Image answers also carry `X-Camlytics-Sim-Time` and `X-Camlytics-Truth` headers.

Adding endpoints (a new VAPIX call): write a handler `handler(cam, request: Request) -> Response` in a
route table (`camlytics.sim.http`): here in VAPIX_ROUTES, or in another module's own table that ROUTES at
the end of this module lists, as it lists the ACAP application API's (`camlytics.sim.apps.ROUTES`).
Such a module imports `camlytics.sim.http`, never this one; its handlers see the camera as `http.Camera`.
At run time `register_route(method, path, handler)` adds an endpoint to every camera created afterwards
and `cam.add_route(method, path, handler)` to one camera. Routes under `/axis-cgi/` get the camera's
authentication first. Keep per-camera state in `cam.extensions[<your key>]` (a dict), clean it up in a
callable appended to `cam.stop_hooks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import re
import sys
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from camlytics.constants import DAY
from camlytics.frames import encode_jpeg
from camlytics.sim import apps
from camlytics.sim.http import (BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, MAX_BODY, MAX_CONNECTIONS, ROLES,
                                 SECRET_MASK, DeadlineReader, Handler, Request, Response, Routes, required_role,
                                 role_allows, route)
from camlytics.validate import parse_resolution

log = logging.getLogger(__name__)

RESOLUTIONS = ("1280x720", "960x540", "640x360", "480x270", "320x180")
DEFAULT_RESOLUTION = "640x360"
DEFAULT_COMPRESSION = 30  # Axis factory default for Image.I0.Appearance.Compression
MJPEG_BOUNDARY = "myboundary"  # what Axis firmware sends; clients must read it from the header
NONCE_LIFETIME = 300.0  # seconds before a nonce is answered with stale=TRUE
VIRTUAL_INPUT_PORTS = 64
SIM_PREFIX = "/camlytics-sim/"

# What each simulated CPU architecture looks like in basicdeviceinfo: a product with that SoC.
DEVICES = {
    "armv7hf": {"Soc": "Axis Artpec-7", "ProdNbr": "P3245-V", "ProdFullName": "AXIS P3245-V Network Camera",
                "HardwareID": "7A3.1"},
    "aarch64": {"Soc": "Axis Artpec-8", "ProdNbr": "M3086-V", "ProdFullName": "AXIS M3086-V Network Camera",
                "HardwareID": "A41.1"},
    "x86_64": {"Soc": "Intel x86-64 (simulated)", "ProdNbr": "SIM-X86", "ProdFullName": "AXIS SIM-X86 Simulated Camera",
               "HardwareID": "S86.1"},
}
ARCHITECTURES = tuple(DEVICES)
# AXIS OS versions the simulator names by MAJOR.MINOR, with a build number like the real releases'.
OS_BUILDS = {"11.11": "11.11.73", "12.6": "12.6.85", "13.0": "13.0.34"}
OS_VERSION_RE = re.compile(r"(1[0-9])\.([0-9]{1,2})(?:\.([0-9]{1,4}))?")


def parse_os_version(value: str) -> str:
    """The full AXIS OS version (MAJOR.MINOR.BUILD) of "12.6" or "12.6.85"; ValueError names the value."""
    text = str(value).strip()
    if not OS_VERSION_RE.fullmatch(text):
        raise ValueError(f"AXIS OS version {value!r} must look like 12.6 or 12.6.85 (known: {', '.join(OS_BUILDS)})")
    return OS_BUILDS.get(text, text if text.count(".") == 2 else text + ".0")


VAPIX_ROUTES: Routes = {}  # the endpoints defined in this module (ROUTES, at its end, lists every table)


def register_route(method: str, path: str, handler: Handler) -> None:
    """Add (or replace) an endpoint on every SimulatedCamera created afterwards."""
    ROUTES[(method.upper(), path)] = handler


def parse_clock(value: str | float | int) -> float:
    """Seconds since midnight from "HH:MM", "HH:MM:SS" or a number of seconds; ValueError names the value."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?", text)
        if match:
            h, m, s = int(match[1]), int(match[2]), float(match[3] or 0)
            if h > 23 or m > 59 or s >= 60:
                raise ValueError(f"start time {text!r} is not a valid time of day (HH:MM[:SS])")
            seconds = h * 3600 + m * 60 + s
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"start time {text!r} is neither HH:MM[:SS] nor a number of seconds") from None
    if not 0 <= seconds < DAY:
        raise ValueError(f"start time {value!r} is outside the day [0, 86400) seconds")
    return seconds


_SCENES: "OrderedDict[tuple[str, int, int, int], Any]" = OrderedDict()
_SCENE_LOCKS: dict[tuple[str, int, int, int], threading.Lock] = {}
_SCENES_LOCK = threading.Lock()
MAX_SCENES = 8


def shared_scene(preset: str, seed: int, width: int, height: int):
    """A `Scene`, built once per process and key, then shared (rendering is a pure function of t).

    Building a scene precomputes geometry and textures (seconds); cameras and sim sources in one
    process reuse it. The least recently used scenes are dropped beyond MAX_SCENES.
    """
    key = (preset, int(seed), int(width), int(height))
    with _SCENES_LOCK:
        if key in _SCENES:
            _SCENES.move_to_end(key)
            return _SCENES[key]
        key_lock = _SCENE_LOCKS.setdefault(key, threading.Lock())
    with key_lock:  # one thread builds, others for the same key wait; other keys build in parallel
        with _SCENES_LOCK:
            if key in _SCENES:
                return _SCENES[key]
        from camlytics.sim import Scene

        scene = Scene(preset=preset, seed=int(seed), width=int(width), height=int(height))
        with _SCENES_LOCK:
            _SCENES[key] = scene
            while len(_SCENES) > MAX_SCENES:
                _SCENES.popitem(last=False)
            _SCENE_LOCKS.pop(key, None)
        return scene


# --------------------------------------------------------------------------------------------------
# Digest authentication (RFC 7616, MD5, qop=auth) as Axis cameras do it


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def parse_auth_params(value: str) -> dict[str, str]:
    """key=value / key="quoted, value" pairs of an Authorization or WWW-Authenticate header."""
    return {
        m[1].lower(): (m[2][1:-1].replace('\\"', '"') if m[2].startswith('"') else m[2])
        for m in re.finditer(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)', value)
    }


class DigestAuthenticator:
    """Checks Digest (and optionally Basic) credentials; nonces are HMAC-signed timestamps, replays refused.

    `allow_basic=True` also accepts Basic; `"only"` accepts Basic alone (an Axis "basic" policy).
    """

    def __init__(self, users: dict[str, str], realm: str, allow_basic: bool | str = False) -> None:
        if allow_basic not in (False, True, "only"):
            raise ValueError(f"basic must be False, True or 'only', got {allow_basic!r}")
        if not users:
            raise ValueError("an authenticator needs at least one user")
        self.realm, self.allow_basic = realm, bool(allow_basic)
        self.allow_digest = allow_basic != "only"
        self._ha1 = {user: _md5(f"{user}:{realm}:{password}") for user, password in users.items()}
        self._basic = {base64.b64encode(f"{user}:{password}".encode()).decode(): user
                       for user, password in users.items()}
        self._secret = os.urandom(16)
        self._seen: set[tuple[str, str]] = set()  # (nonce, nc) pairs already used
        self._lock = threading.Lock()

    def set_user(self, user: str, password: str | None) -> None:
        """Add or change a user's password; None removes the user."""
        with self._lock:
            self._ha1.pop(user, None)
            self._basic = {token: name for token, name in self._basic.items() if name != user}
            if password is not None:
                self._ha1[user] = _md5(f"{user}:{self.realm}:{password}")
                self._basic[base64.b64encode(f"{user}:{password}".encode()).decode()] = user

    def new_nonce(self) -> str:
        stamp = f"{time.time():.6f}"
        sig = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        return base64.b64encode(f"{stamp}:{sig}".encode()).decode().rstrip("=")

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since this server issued `nonce`, or None if it did not issue it."""
        try:
            stamp, sig = base64.b64decode(nonce + "=" * (-len(nonce) % 4)).decode().split(":")
        except (ValueError, UnicodeDecodeError):
            return None
        expected = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        if not hmac.compare_digest(sig, expected):
            return None
        return time.time() - float(stamp)

    def challenge(self, stale: bool = False) -> list[str]:
        """WWW-Authenticate header values for a 401."""
        digest = (
            f'Digest realm="{self.realm}", nonce="{self.new_nonce()}", algorithm=MD5, qop="auth"'
            + (", stale=TRUE" if stale else "")
        )
        return ([digest] if self.allow_digest else []) + ([f'Basic realm="{self.realm}"'] if self.allow_basic else [])

    def check(self, method: str, target: str, header: str | None) -> str:
        """"ok", "stale" (valid credentials, expired nonce) or "denied"."""
        return self.identify(method, target, header)[0]

    def identify(self, method: str, target: str, header: str | None) -> tuple[str, str | None]:
        """(verdict as `check` gives it, the user name when the verdict is "ok")."""
        if not header:
            return "denied", None
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "basic":
            if not self.allow_basic:
                return "denied", None
            for token, user in self._basic.items():
                if hmac.compare_digest(rest.strip(), token):
                    return "ok", user
            return "denied", None
        if scheme.lower() != "digest" or not self.allow_digest:
            return "denied", None
        p = parse_auth_params(rest)
        needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(k not in p for k in needed) or p["qop"] != "auth":
            return "denied", None
        if p.get("algorithm", "MD5").upper() != "MD5" or p["realm"] != self.realm:
            return "denied", None
        ha1 = self._ha1.get(p["username"])
        if ha1 is None or p["uri"] != target:
            return "denied", None
        ha2 = _md5(f"{method}:{p['uri']}")
        expected = _md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected, p["response"].lower()):
            return "denied", None
        age = self._nonce_age(p["nonce"])
        if age is None:
            return "denied", None
        if age > NONCE_LIFETIME:
            return "stale", None
        with self._lock:
            key = (p["nonce"], p["nc"])
            if key in self._seen:  # a replayed request: make the client start over
                return "stale", None
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen.add(key)
        return "ok", p["username"]


# --------------------------------------------------------------------------------------------------
# The camera


@dataclass
class Fault:
    """An injected failure for the next `count` image answers."""

    kind: str  # "status" | "drop" | "html" | "truncated" | "corrupt"
    count: int
    status: int = 503
    after: int = 0  # good answers to give before the first failure


class SimulatedCamera:
    """A simulated Axis camera serving the synthetic scene over VAPIX; also a context manager.

    `start` is the simulated time of day (seconds or "HH:MM") when the server starts and `speed` how
    many simulated seconds pass per wall-clock second. `auth=("root", "pass")` enables Digest
    authentication for that admin (`basic=True` also accepts Basic, `basic="only"` accepts only Basic);
    `users={"name": ("password", "admin"|"operator"|"viewer")}` adds users with roles; `auth=None` and
    no users serves everyone as admin. `arch` and `os_version` are the CPU and AXIS OS it reports.
    """

    def __init__(
        self,
        preset: str = "office",
        seed: int = 0,
        *,
        speed: float = 1.0,
        start: float | str = 12 * 3600.0,
        auth: tuple[str, str] | None = ("root", "pass"),
        basic: bool | str = False,
        host: str = "127.0.0.1",
        port: int = 0,
        serial: str = "ACCC8E5D7A01",
        resolutions: Iterable[str] = RESOLUTIONS,
        default_resolution: str = DEFAULT_RESOLUTION,
        mjpeg_boundary: str = MJPEG_BOUNDARY,
        max_fps: float = 30.0,
        prewarm: bool = True,
        arch: str = "aarch64",
        os_version: str = "11.11",
        users: dict[str, tuple[str, str]] | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        from camlytics.sim import PRESETS  # the scene module loads lazily: `simcam --help` stays fast

        if preset not in PRESETS:
            raise ValueError(f"unknown scene preset {preset!r}; choose one of {sorted(PRESETS)}")
        if not (isinstance(speed, (int, float)) and 0 < speed <= 1e6):
            raise ValueError(f"speed must be a number in (0, 1e6], got {speed!r}")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port!r}")
        if not re.fullmatch(r"[0-9A-F]{12}", serial):
            raise ValueError(f"serial {serial!r} must be 12 upper-case hex digits, like an Axis MAC")
        self.resolutions = ["%dx%d" % parse_resolution(r, error=ValueError) for r in resolutions]
        if default_resolution not in self.resolutions:
            raise ValueError(f"default resolution {default_resolution!r} is not in {self.resolutions}")
        if not re.fullmatch(r"[0-9A-Za-z'()+_,./:=?-]{1,70}", mjpeg_boundary):
            raise ValueError(f"MJPEG boundary {mjpeg_boundary!r} is not a valid multipart boundary")
        if arch not in DEVICES:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        for name, value in (("header_timeout", header_timeout), ("body_timeout", body_timeout),
                            ("max_connections", max_connections)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.limits = {"header_timeout": float(header_timeout), "body_timeout": float(body_timeout)}
        self.max_connections = int(max_connections)
        self.arch = arch
        self.os_version = parse_os_version(os_version)
        self.users: dict[str, tuple[str, str]] = {}
        if auth:
            self.users[auth[0]] = (auth[1], "admin")
        for name, (password, role) in (users or {}).items():
            if role not in ROLES[1:]:
                raise ValueError(f"user {name!r}: role {role!r} is not one of {', '.join(ROLES[1:])}")
            if not name or ":" in name or not password:
                raise ValueError(f"user {name!r}: a name without ':' and a non-empty password are needed")
            if name in self.users:
                raise ValueError(f"user {name!r} is given twice")
            self.users[name] = (password, role)
        self.preset, self.seed, self.speed = preset, int(seed), float(speed)
        self.start_time = parse_clock(start)
        self.serial = serial
        self.host, self._port = host, int(port)
        self.mjpeg_boundary = mjpeg_boundary
        self.max_fps = float(max_fps)
        self.prewarm = prewarm
        self.authenticator = (
            DigestAuthenticator({u: p for u, (p, _) in self.users.items()}, f"AXIS_{serial}", allow_basic=basic)
            if self.users else None
        )
        self.routes: dict[tuple[str, str], Handler] = dict(ROUTES)
        self.prefix_routes: dict[str, Handler] = {}  # path prefix -> handler for every method (reverse proxy)
        self.extensions: dict[str, Any] = {}
        self.stop_hooks: list[Callable[[], Any]] = []  # run by stop(), e.g. to end processes an extension started
        self.params = default_params(self)
        self.secret_params: set[str] = set()  # password-typed: listed masked, never in clear
        self.params["root.Image.I0.Appearance.Resolution"] = default_resolution
        self.virtual_inputs: dict[int, bool] = {}
        self.virtual_input_log: list[dict[str, Any]] = []
        self._path_faults: dict[str, list[int]] = {}  # VAPIX path -> [HTTP status, answers left to fail]
        self._vi_timers: dict[int, threading.Timer] = {}
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wall_start = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "SimulatedCamera":
        """Build the default-resolution scene, bind, serve in a background thread; the clock starts now."""
        if self._server:
            return self
        if self.prewarm:  # building a scene takes seconds: not inside the first client's timeout
            self.scene(*parse_resolution(self.params["root.Image.I0.Appearance.Resolution"]))
        handler = type("Handler", (_HTTPHandler,), {"camera": self, **self.limits})
        try:
            self._server = _Server((self.host, self._port), handler)
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from None
        self._server.max_connections = self.max_connections
        self._port = self._server.server_address[1]
        self._stopping.clear()
        self._wall_start = time.monotonic()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"simcam:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (open MJPEG streams end) and release the port."""
        self._stopping.set()
        while self.stop_hooks:
            self.stop_hooks.pop()()
        for timer in list(self._vi_timers.values()):
            timer.cancel()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> "SimulatedCamera":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL without credentials, e.g. "http://127.0.0.1:8080"."""
        return f"http://{self.host}:{self.port}"

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Add (or replace) an endpoint on this camera only."""
        self.routes[(method.upper(), path)] = handler

    def add_prefix_route(self, prefix: str, handler: Handler) -> None:
        """Serve every method at `prefix` and below it (`prefix/...`) when no exact route matches."""
        self.prefix_routes[prefix.rstrip("/")] = handler

    def remove_prefix_route(self, prefix: str) -> None:
        self.prefix_routes.pop(prefix.rstrip("/"), None)

    def find_handler(self, method: str, path: str) -> Handler | None:
        """The exact route, else the longest prefix route that covers `path`."""
        handler = self.routes.get((method, path))
        if handler is not None:
            return handler
        best = None
        for prefix, fn in list(self.prefix_routes.items()):
            if (path == prefix or path.startswith(prefix + "/")) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, fn)
        return best[1] if best else None

    def set_user(self, name: str, password: str | None, role: str = "viewer") -> None:
        """Add (or change) a user with a role at run time, e.g. an app's VAPIX service account; None removes it.
        On a camera without authentication this changes nothing (everyone is admin there)."""
        if password is None:
            self.users.pop(name, None)
        else:
            if role not in ROLES[1:]:
                raise ValueError(f"role {role!r} is not one of {', '.join(ROLES[1:])}")
            self.users[name] = (password, role)
        if self.authenticator:
            self.authenticator.set_user(name, password)

    def role_of(self, user: str | None) -> str:
        """The role of an authenticated user ("anonymous" for None)."""
        return self.users[user][1] if user in self.users else "anonymous"

    @property
    def stopping(self) -> bool:
        """Whether `stop()` has begun (extensions' processes must not restart then)."""
        return self._stopping.is_set()

    # -- simulation --------------------------------------------------------------------------------
    def sim_time(self) -> float:
        """The simulated time of day now, seconds since midnight in [0, 86400)."""
        return (self.start_time + (time.monotonic() - self._wall_start) * self.speed) % DAY

    def scene(self, width: int, height: int):
        """The scene renderer for one resolution (built once per process, see `shared_scene`)."""
        return shared_scene(self.preset, self.seed, width, height)

    def truth(self, t: float | None = None) -> dict[str, Any]:
        """Ground truth of the scene at simulated time `t` (default: now); the same at every resolution."""
        with _SCENES_LOCK:
            built = [sc for (p, s, _, _), sc in _SCENES.items() if (p, s) == (self.preset, self.seed)]
        scene = built[-1] if built else self.scene(*parse_resolution(self.params["root.Image.I0.Appearance.Resolution"]))
        return _jsonable(scene.truth(self.sim_time() if t is None else t))

    def snapshot(self, resolution: str, quality: int, t: float | None = None) -> tuple[bytes, float]:
        """A JPEG of the scene at `t` (default now) and the time it shows."""
        t = self.sim_time() if t is None else t
        w, h = parse_resolution(resolution)
        image = self.scene(w, h).render(t)
        return encode_jpeg(np.asarray(image), quality), t

    def inject_fault(self, kind: str = "status", count: int = 1, status: int = 503, after: int = 0) -> None:
        """Make `count` image answers (snapshots or MJPEG parts) fail after `after` good ones.

        Kinds: "status" (HTTP `status`), "drop" (close the connection), "html" (a login page),
        "truncated" (half a JPEG), "corrupt" (a JPEG-sized body decoders reject).
        """
        if kind not in ("status", "drop", "html", "truncated", "corrupt"):
            raise ValueError(f"unknown fault kind {kind!r}; use status, drop, html, truncated or corrupt")
        if count < 1 or after < 0:
            raise ValueError(f"count must be >= 1 and after >= 0, got count={count}, after={after}")
        with self._lock:
            self._faults.append(Fault(kind, int(count), int(status), int(after)))

    def inject_path_fault(self, path: str, status: int = 503, count: int = 1) -> None:
        """Make the next `count` requests to VAPIX `path` (e.g. /axis-cgi/applications/control.cgi) answer
        HTTP `status`, after authentication, before the handler runs (a camera that is busy or failing)."""
        if count < 1 or not 400 <= status <= 599 or not path.startswith("/axis-cgi/"):
            raise ValueError(f"need a /axis-cgi/ path, count >= 1 and an error status, got {path!r}, {count}, {status}")
        with self._lock:
            self._path_faults[path] = [int(status), int(count)]

    def take_path_fault(self, path: str) -> int | None:
        """The HTTP status the next answer for `path` must fail with, if one was injected."""
        with self._lock:
            fault = self._path_faults.get(path)
            if not fault or fault[1] <= 0:
                return None
            fault[1] -= 1
            return fault[0]

    def take_fault(self, stream_open: bool = False) -> Fault | None:
        """Consume one pending injected fault, if any; opening a stream only takes ones that stop it."""
        with self._lock:
            while self._faults and self._faults[0].count <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            if stream_open and (fault.after > 0 or fault.kind in ("truncated", "corrupt")):
                return None  # meant for a part of the stream
            if fault.after > 0:
                fault.after -= 1
                return None
            fault.count -= 1
            return Fault(fault.kind, 1, fault.status)

    def set_virtual_input(self, port: int, active: bool, duration: float | None = None) -> bool:
        """Set a virtual input port; True if its state changed. A duration deactivates it later."""
        with self._lock:
            changed = self.virtual_inputs.get(port, False) != active
            self.virtual_inputs[port] = active
            if (timer := self._vi_timers.pop(port, None)) is not None:
                timer.cancel()
            if active and duration:
                timer = threading.Timer(duration, self._expire_virtual_input, (port,))
                timer.daemon = True
                self._vi_timers[port] = timer
                timer.start()
            self.virtual_input_log.append(
                {"wall": time.time(), "sim_t": round(self.sim_time(), 3), "port": port,
                 "action": "activate" if active else "deactivate", "duration": duration, "state_changed": changed}
            )
            return changed

    def _expire_virtual_input(self, port: int) -> None:
        with self._lock:
            self._vi_timers.pop(port, None)
            if self.virtual_inputs.get(port):
                self.virtual_inputs[port] = False
                self.virtual_input_log.append(
                    {"wall": time.time(), "sim_t": round(self.sim_time(), 3), "port": port,
                     "action": "expire", "duration": None, "state_changed": True}
                )


def _jsonable(obj: Any) -> Any:
    """Truth dicts may hold numpy scalars; make them plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# --------------------------------------------------------------------------------------------------
# Device identity and parameters


def device_properties(cam: SimulatedCamera) -> dict[str, str]:
    """The 14 basic device information properties (product and SoC follow the camera's architecture)."""
    device = DEVICES[cam.arch]
    return {
        "Architecture": cam.arch,
        "Brand": "AXIS",
        "BuildDate": "Oct 02 2024 12:00",
        "HardwareID": device["HardwareID"],
        "ProdFullName": device["ProdFullName"],
        "ProdNbr": device["ProdNbr"],
        "ProdShortName": f"AXIS {device['ProdNbr']}",
        "ProdType": "Network Camera",
        "ProdVariant": "",
        "SerialNumber": cam.serial,
        "Soc": device["Soc"],
        "SocSerialNumber": "00000000-00000000-" + cam.serial[:8] + "-" + cam.serial[4:],
        "Version": cam.os_version,
        "WebURL": "http://www.axis.com",
    }


def default_params(cam: SimulatedCamera) -> dict[str, str]:
    """The parameter tree (full `root.` names -> values) param.cgi serves."""
    info = device_properties(cam)
    resolutions = ",".join(cam.resolutions)
    params = {
        "root.Brand.Brand": info["Brand"],
        "root.Brand.ProdFullName": info["ProdFullName"],
        "root.Brand.ProdNbr": info["ProdNbr"],
        "root.Brand.ProdShortName": info["ProdShortName"],
        "root.Brand.ProdType": info["ProdType"],
        "root.Brand.ProdVariant": info["ProdVariant"],
        "root.Brand.WebURL": info["WebURL"],
        "root.Image.I0.Appearance.Compression": str(DEFAULT_COMPRESSION),
        "root.Image.I0.Appearance.Resolution": DEFAULT_RESOLUTION,
        "root.Image.I0.Stream.FPS": "0",
        "root.IOPort.I0.Configurable": "no",
        "root.IOPort.I0.Direction": "input",
        "root.IOPort.I0.Input.Name": "Door contact",
        "root.IOPort.I0.Input.Trig": "closed",
        "root.Properties.API.HTTP.AdminPath": "/",
        "root.Properties.API.HTTP.Version": "3",
        "root.Properties.API.Metadata.Metadata": "yes",
        "root.Properties.API.Metadata.Version": "1.0",
        "root.Properties.EmbeddedDevelopment.Version": "3.0",
        "root.Properties.Firmware.BuildDate": info["BuildDate"],
        "root.Properties.Firmware.BuildNumber": info["Version"].rsplit(".", 1)[-1],
        "root.Properties.Firmware.Version": info["Version"],
        "root.Properties.Image.Format": "jpeg,mjpeg,h264,h265",
        "root.Properties.Image.NbrOfViews": "1",
        "root.Properties.Image.Resolution": resolutions,
        "root.Properties.Image.Rotation": "0,180",
        "root.Properties.System.Architecture": info["Architecture"],
        "root.Properties.System.HardwareID": info["HardwareID"],
        "root.Properties.System.Language": "English",
        "root.Properties.System.LanguageType": "default",
        "root.Properties.System.SerialNumber": cam.serial,
        "root.Properties.System.Soc": info["Soc"],
        "root.StreamProfile.MaxGroups": "26",
        "root.StreamProfile.S0.Description": "Low bandwidth snapshot profile",
        "root.StreamProfile.S0.Name": "camlytics",
        "root.StreamProfile.S0.Parameters": "resolution=640x360&compression=30&fps=1",
    }
    if cam.authenticator:
        a = cam.authenticator
        params["root.Network.HTTP.AuthenticationPolicy"] = (
            "basic_digest" if a.allow_basic and a.allow_digest else "basic" if a.allow_basic else "digest")
    return params


READ_ONLY_GROUPS = ("root.Brand.", "root.Properties.")
WRITABLE_CHECKS: dict[str, Callable[[SimulatedCamera, str], bool]] = {
    "root.Image.I0.Appearance.Resolution": lambda cam, v: v in cam.resolutions,
    "root.Image.I0.Appearance.Compression": lambda cam, v: v.isdigit() and 0 <= int(v) <= 100,
    "root.Image.I0.Stream.FPS": lambda cam, v: v.isdigit() and int(v) <= 30,
}


# --------------------------------------------------------------------------------------------------
# VAPIX endpoints


def _image_options(cam: SimulatedCamera, args: dict[str, str]) -> tuple[str, int] | Response:
    """(resolution, JPEG quality) from image arguments, or the camera's error answer."""
    camera = args.get("camera", "1")
    if camera != "1":
        # VAPIX answers a bad image request with a text body holding the reason in an HTML comment.
        return Response.text(f"<!--Camera {camera} not available.-->\r\n", content_type="text/html")
    resolution = args.get("resolution", cam.params["root.Image.I0.Appearance.Resolution"]).lower()
    if resolution not in cam.resolutions:
        return Response.text(f"<!--Invalid resolution {resolution!r}: supported {','.join(cam.resolutions)}.-->\r\n",
                             content_type="text/html")
    compression = args.get("compression", cam.params["root.Image.I0.Appearance.Compression"])
    if not compression.isdigit() or int(compression) > 100:
        return Response.text(f"<!--Invalid compression {compression!r}: use 0..100.-->\r\n", content_type="text/html")
    # Axis maps compression 0..100 (higher = smaller) to the encoder; quality ~ 100 - compression.
    return resolution, max(5, min(95, 100 - int(compression)))


def _fault_response(fault: Fault, jpeg: bytes) -> Response | None:
    if fault.kind == "status":
        return Response.text(f"<HTML><HEAD><TITLE>{fault.status}</TITLE></HEAD><BODY>Simulated failure</BODY></HTML>",
                             status=fault.status, content_type="text/html")
    if fault.kind == "html":
        return Response.text("<html><body><h1>Login</h1>Please sign in.</body></html>", content_type="text/html")
    if fault.kind == "truncated":
        return Response(200, "image/jpeg", jpeg[: len(jpeg) // 2])
    if fault.kind == "corrupt":
        return Response(200, "image/jpeg", corrupt_jpeg(jpeg))
    return None


def corrupt_jpeg(jpeg: bytes) -> bytes:
    """Same length, starts and ends like a JPEG, but no valid segment in between: decoders reject it."""
    return jpeg[:2] + bytes(max(0, len(jpeg) - 4)) + b"\xff\xd9"


def _image_headers(cam: SimulatedCamera, t: float) -> dict[str, str]:
    return {"X-Camlytics-Sim-Time": f"{t:.3f}", "X-Camlytics-Truth": json.dumps(cam.truth(t), separators=(",", ":"))}


@route(VAPIX_ROUTES, "GET", path="/axis-cgi/jpg/image.cgi")
def image_cgi(cam: SimulatedCamera, req: Request) -> Response:
    options = _image_options(cam, req.query)
    if isinstance(options, Response):
        return options
    fault = cam.take_fault()
    if fault and fault.kind == "drop":
        raise _DropConnection()
    jpeg, t = cam.snapshot(*options)
    if fault and (answer := _fault_response(fault, jpeg)):
        return answer
    return Response(200, "image/jpeg", jpeg, _image_headers(cam, t))


@route(VAPIX_ROUTES, "GET", path="/axis-cgi/mjpg/video.cgi")
def video_cgi(cam: SimulatedCamera, req: Request) -> Response:
    options = _image_options(cam, req.query)
    if isinstance(options, Response):
        return options
    try:
        fps = float(req.query.get("fps", cam.params["root.Image.I0.Stream.FPS"]))
        nbrofframes = int(req.query.get("nbrofframes", "0"))
        duration = float(req.query.get("duration", "0"))
        if fps < 0 or nbrofframes < 0 or duration < 0:
            raise ValueError
    except ValueError:
        return Response.text("<!--Invalid fps, nbrofframes or duration.-->\r\n", content_type="text/html")
    fault = cam.take_fault(stream_open=True)
    if fault and fault.kind == "drop":
        raise _DropConnection()
    if fault:  # the stream itself fails to open
        return _fault_response(fault, b"") or Response(500)
    return Response(
        200, f"multipart/x-mixed-replace; boundary={cam.mjpeg_boundary}",
        _mjpeg_parts(cam, *options, fps=min(fps or cam.max_fps, cam.max_fps), count=nbrofframes, duration=duration),
        {"Cache-Control": "no-cache", "Pragma": "no-cache"},
    )


def _mjpeg_parts(cam: SimulatedCamera, resolution: str, quality: int, *, fps: float, count: int,
                 duration: float) -> Iterator[bytes]:
    """The multipart body: one part per frame, paced at `fps`, until count/duration/shutdown."""
    period = 1.0 / fps
    began = time.monotonic()
    sent = 0
    while not cam._stopping.is_set():
        if count and sent >= count:
            return
        if duration and time.monotonic() - began >= duration:
            return
        jpeg, t = cam.snapshot(resolution, quality)
        fault = cam.take_fault()
        if fault and fault.kind == "truncated":
            jpeg = jpeg[: len(jpeg) // 2]
        elif fault and fault.kind == "corrupt":
            jpeg = corrupt_jpeg(jpeg)
        head = (f"--{cam.mjpeg_boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                f"X-Camlytics-Sim-Time: {t:.3f}\r\n\r\n")
        yield head.encode("ascii") + jpeg + b"\r\n"
        sent += 1
        wait = began + sent * period - time.monotonic()
        if wait > 0 and cam._stopping.wait(wait):
            return


def _json_error(method: str, context: str | None, api_version: str, code: int, message: str) -> Response:
    body: dict[str, Any] = {"apiVersion": api_version, "method": method, "error": {"code": code, "message": message}}
    if context is not None:
        body["context"] = context
    return Response.json(body)


def _json_api(req: Request, versions: list[str], methods: dict[str, Callable[[dict], dict]]) -> Response:
    """Dispatch a VAPIX JSON API call the way Axis devices do (errors are HTTP 200 + error object)."""
    latest = versions[-1]
    if req.method != "POST":
        return _json_error("", None, latest, 2002, "HTTP request type not supported. Only POST is supported")
    try:
        call = req.json()
        if not isinstance(call, dict):
            raise ValueError
    except ValueError:
        return _json_error("", None, latest, 4000, "Invalid JSON")
    method, context = call.get("method"), call.get("context")
    if not isinstance(method, str) or method not in methods:
        return _json_error(str(method or ""), context, latest, 2004, "Method not supported")
    api_version = str(call.get("apiVersion", latest))
    if method != "getSupportedVersions":
        if "apiVersion" not in call:
            return _json_error(method, context, latest, 4002, "Required parameter missing or invalid")
        if api_version.split(".")[0] not in {v.split(".")[0] for v in versions}:
            return _json_error(method, context, latest, 2003, "Requested API version is not supported")
    try:
        data = methods[method](call.get("params") or {})
    except KeyError as exc:
        return _json_error(method, context, api_version, 4002, f"Required parameter missing or invalid: {exc}")
    body = {"apiVersion": api_version, "method": method, "data": data}
    if context is not None:
        body["context"] = context
    return Response.json(body)


@route(VAPIX_ROUTES, "GET", "POST", path="/axis-cgi/basicdeviceinfo.cgi")
def basicdeviceinfo_cgi(cam: SimulatedCamera, req: Request) -> Response:
    props = device_properties(cam)
    versions = ["1.0", "1.1", "1.2", "1.3"]

    def get_properties(params: dict) -> dict:
        wanted = params["propertyList"]
        if not isinstance(wanted, list) or any(k not in props for k in wanted):
            raise KeyError("propertyList")
        return {"propertyList": {k: props[k] for k in wanted}}

    return _json_api(req, versions, {
        "getAllProperties": lambda _: {"propertyList": props},
        "getAllUnrestrictedProperties": lambda _: {"propertyList": {
            k: props[k] for k in ("Brand", "BuildDate", "ProdFullName", "ProdNbr", "ProdShortName", "ProdType",
                                  "ProdVariant", "SerialNumber", "Version", "WebURL")}},
        "getProperties": get_properties,
        "getSupportedVersions": lambda _: {"apiVersions": versions},
    })


API_LIST = [
    {"id": "api-discovery", "version": "1.0", "name": "API Discovery Service", "status": "official"},
    {"id": "basic-device-info", "version": "1.3", "name": "Basic Device Information", "status": "official"},
    {"id": "param-cgi", "version": "1.0", "name": "Legacy Parameter Handling", "status": "official"},
]


@route(VAPIX_ROUTES, "GET", "POST", path="/axis-cgi/apidiscovery.cgi")
def apidiscovery_cgi(cam: SimulatedCamera, req: Request) -> Response:
    apis = [dict(a, docLink="https://developer.axis.com/vapix/") for a in cam.extensions.get("apis", API_LIST)]
    return _json_api(req, ["1.0"], {
        "getApiList": lambda _: {"apiList": apis},
        "getSupportedVersions": lambda _: {"apiVersions": ["1.0"]},
    })


def _full_name(name: str) -> str:
    name = name.strip()
    return name if name.startswith("root.") or name == "root" else f"root.{name}"


@route(VAPIX_ROUTES, "GET", "POST", path="/axis-cgi/param.cgi",
       access=lambda req: "operator" if req.args.get("action") == "update" else "viewer")
def param_cgi(cam: SimulatedCamera, req: Request) -> Response:
    args = req.args
    action = args.pop("action", "")
    if action == "list":
        groups = [g for g in args.get("group", "").split(",") if g.strip()] or ["root"]
        lines: list[str] = []
        for group in groups:
            full = _full_name(group)
            hits = [f"{k}={SECRET_MASK if k in cam.secret_params else v}" for k, v in cam.params.items()
                    if full == "root" or k == full or k.startswith(full + ".")]
            lines += hits or [f"# Error: Error -1 getting param in group '{group.strip()}'"]
        return Response.text("\n".join(lines) + "\n")
    if action == "update":
        errors = []
        with cam._lock:
            for name, value in args.items():
                full = _full_name(name)
                check = WRITABLE_CHECKS.get(full)
                if full not in cam.params or full.startswith(READ_ONLY_GROUPS) or (check and not check(cam, value)):
                    errors.append(f"# Error: Error setting '{name}' to '{value}'!")
                else:
                    cam.params[full] = value
        if not args:
            errors.append("# Error: No parameters to update")
        return Response.text("\n".join(errors) + "\n" if errors else "OK\n")
    return Response.text(f"# Request failed: invalid action '{action}'\n")


VI_NS = "http://www.axis.com/vapix/http_cgi/virtualinput1"
VI_ERRORS = {10: "Missing argument", 20: "Invalid port", 30: "Schema version not supported",
             40: "Internal error", 50: "Invalid duration"}


def _vi_xml(inner: str) -> Response:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<VirtualInputResponse xmlns="{VI_NS}" '
           f'SchemaVersion="1.1">{inner}</VirtualInputResponse>\n')
    return Response.text(xml, content_type="text/xml")


def _vi_error(code: int) -> Response:
    return _vi_xml(f"<Error><GeneralError><ErrorCode>{code}</ErrorCode>"
                   f"<ErrorDescription>{VI_ERRORS[code]}</ErrorDescription></GeneralError></Error>")


def _virtual_input(cam: SimulatedCamera, req: Request, active: bool) -> Response:
    args = req.args
    if "schemaversion" not in args or "port" not in args:
        return _vi_error(10)
    if args["schemaversion"].split(".")[0] != "1":
        return _vi_error(30)
    port = args["port"]
    if not port.isdigit() or not 1 <= int(port) <= VIRTUAL_INPUT_PORTS:
        return _vi_error(20)
    duration = None
    if active and "duration" in args:
        try:
            duration = float(args["duration"])
        except ValueError:
            return _vi_error(50)
        if not 0 < duration <= DAY:
            return _vi_error(50)
    changed = cam.set_virtual_input(int(port), active, duration)
    tag = "ActivateSuccess" if active else "DeactivateSuccess"
    return _vi_xml(f"<Success><{tag}><StateChanged>{'true' if changed else 'false'}</StateChanged></{tag}></Success>")


@route(VAPIX_ROUTES, "GET", "POST", path="/axis-cgi/virtualinput/activate.cgi", access="operator")
def virtualinput_activate(cam: SimulatedCamera, req: Request) -> Response:
    return _virtual_input(cam, req, True)


@route(VAPIX_ROUTES, "GET", "POST", path="/axis-cgi/virtualinput/deactivate.cgi", access="operator")
def virtualinput_deactivate(cam: SimulatedCamera, req: Request) -> Response:
    return _virtual_input(cam, req, False)


@route(VAPIX_ROUTES, "GET", path="/axis-cgi/imagesize.cgi")
def imagesize_cgi(cam: SimulatedCamera, req: Request) -> Response:
    options = _image_options(cam, req.query)
    if isinstance(options, Response):
        return options
    w, h = parse_resolution(options[0])
    return Response.text(f"image width = {w}\r\nimage height = {h}\r\n")


# --------------------------------------------------------------------------------------------------
# Simulator-only endpoints (not VAPIX)


def _float_arg(args: dict[str, str], name: str, default: float) -> float:
    try:
        return float(args[name]) if name in args else default
    except ValueError:
        raise _BadRequest(f"{name}={args[name]!r} is not a number") from None


@route(VAPIX_ROUTES, "GET", path=SIM_PREFIX + "truth")
def sim_truth(cam: SimulatedCamera, req: Request) -> Response:
    t = _float_arg(req.query, "t", cam.sim_time())
    if not 0 <= t < DAY:
        raise _BadRequest(f"t={t} is outside the day [0, 86400)")
    return Response.json(cam.truth(t))


@route(VAPIX_ROUTES, "GET", path=SIM_PREFIX + "clock")
def sim_clock(cam: SimulatedCamera, req: Request) -> Response:
    t = cam.sim_time()
    return Response.json({"t": round(t, 3), "hhmmss": time.strftime("%H:%M:%S", time.gmtime(t)),
                          "speed": cam.speed, "start": cam.start_time, "preset": cam.preset, "seed": cam.seed})


@route(VAPIX_ROUTES, "POST", path=SIM_PREFIX + "fail")
def sim_fail(cam: SimulatedCamera, req: Request) -> Response:
    args = req.args
    kind = args.get("kind", "status")
    count = int(_float_arg(args, "count", 1))
    status = int(_float_arg(args, "status", 503))
    after = int(_float_arg(args, "after", 0))
    if kind == "status" and not 400 <= status <= 599:
        raise _BadRequest(f"status={status} is not an HTTP error status (400..599)")
    try:
        if args.get("path"):  # any VAPIX call, not only images
            cam.inject_path_fault(args["path"], status, count)
            return Response.json({"path": args["path"], "count": count, "status": status})
        cam.inject_fault(kind, count, status, after)
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None
    return Response.json({"kind": kind, "count": count, "status": status, "after": after})


@route(VAPIX_ROUTES, "GET", path=SIM_PREFIX + "virtualinput")
def sim_virtualinput(cam: SimulatedCamera, req: Request) -> Response:
    with cam._lock:
        return Response.json({"ports": {str(p): a for p, a in sorted(cam.virtual_inputs.items())},
                              "log": list(cam.virtual_input_log)})


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _DropConnection(Exception):
    """Close the connection without answering (a simulated network failure)."""


class _BadRequest(Exception):
    """A simulator endpoint got a bad argument: 400 with the message."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 drops the SYNs of a burst of connections, and each
    # dropped one waits for a TCP retransmission (1 s, 3 s, ...): 300 at once took 55 s instead of < 1 s.
    request_queue_size = 1024
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open = 0
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread, or answer 503 at once when `max_connections` are open."""
        with self._open_lock:
            busy = self._open >= self.max_connections
            if not busy:
                self._open += 1
        if busy:
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 21\r\nConnection: close\r\n\r\nToo many connections\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (reset, broken pipe) is normal for a camera; log anything else, never print.

        socketserver's default prints a traceback to stderr, which lands in the middle of the
        output of whatever CLI runs the simulated camera in-process.
        """
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            log.debug("client %s hung up: %s", client_address, exc)
        else:
            log.warning("request from %s failed", client_address, exc_info=True)


class _HTTPHandler(BaseHTTPRequestHandler):
    camera: SimulatedCamera
    protocol_version = "HTTP/1.1"  # keep-alive, as Digest clients reuse connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms ACK stalls
    server_version = "camlytics-simcam"
    sys_version = ""
    timeout = IDLE_TIMEOUT  # seconds a connection may idle before the server drops it (and a write may stall)
    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def setup(self) -> None:
        super().setup()
        # Reads go through a DeadlineReader: headers and body each have a total deadline.
        self.reader = DeadlineReader(self.connection, header_timeout=self.header_timeout, idle=self.timeout)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.expect_request()
        try:
            super().handle_one_request()
        except TimeoutError:  # raised past a deadline outside the request line (which the base class catches)
            self.close_connection = True
        finally:
            self.reader.done()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt: str, *args: Any) -> None:  # the request line only, never headers
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        cam = self.camera
        parts = urlsplit(self.path)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(Response.text("Length Required: send a Content-Length\n", 411), close=True)
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._send(Response.text("Request body too large or bad Content-Length\n", 413), close=True)
            return
        self.reader.expect_body(self.body_timeout)
        body = self.rfile.read(int(length)) if int(length) else b""
        self.reader.done()
        self.connection.settimeout(self.timeout)
        if len(body) < int(length):  # the client closed before sending the whole body
            self.close_connection = True
            return
        req = Request(method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                      {k.lower(): v for k, v in self.headers.items()}, body)
        handler = cam.find_handler(method, parts.path)
        if handler is None:
            known = any(path == parts.path for _, path in cam.routes)
            status = 405 if known else 404
            self._send(Response.text(f"{status} {'Method Not Allowed' if known else 'Not Found'}\n", status))
            return
        if cam.authenticator and not parts.path.startswith(SIM_PREFIX):
            needed = required_role(handler, req)
            req.role = "anonymous"
            header = self.headers.get("Authorization")
            if needed != "anonymous" or header:
                verdict, user = cam.authenticator.identify(method, self.path, header)
                if verdict != "ok" and needed != "anonymous":
                    answer = Response.text("<HTML><HEAD><TITLE>401 Unauthorized</TITLE></HEAD><BODY>"
                                           "Authorization required</BODY></HTML>\n", 401, "text/html")
                    self._send(answer, challenges=cam.authenticator.challenge(stale=verdict == "stale"))
                    return
                if verdict == "ok":
                    req.user, req.role = user, cam.role_of(user)
            if not role_allows(req.role, needed):
                self._send(Response.text("<HTML><HEAD><TITLE>403 Forbidden</TITLE></HEAD><BODY>"
                                         f"Access denied: {needed} rights needed</BODY></HTML>\n", 403, "text/html"))
                return
        failed = cam.take_path_fault(parts.path)
        try:
            response = Response.text(f"{failed} Simulated failure\n", failed) if failed else handler(cam, req)
        except _DropConnection:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        except _BadRequest as exc:
            response = Response.text(f"{exc}\n", 400)
        except Exception:  # a bug in a handler: answer 500 like a camera would, keep serving
            log.exception("simulated camera handler failed for %s %s", method, parts.path)
            response = Response.text("500 Internal Server Error\n", 500)
        self._send(response)

    def _send(self, response: Response, challenges: list[str] = (), close: bool = False) -> None:
        streaming = not isinstance(response.body, (bytes, bytearray))
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for value in challenges:
            self.send_header("WWW-Authenticate", value)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if streaming or close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if not streaming:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if streaming:
                for chunk in response.body:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            else:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # the client went away mid-stream: normal for MJPEG
            self.close_connection = True


# Every endpoint a SimulatedCamera serves: VAPIX and the simulator's helpers (above), the ACAP
# application API (camlytics.sim.apps). A module with more endpoints adds its table here.
ROUTES: Routes = {**VAPIX_ROUTES, **apps.ROUTES}
