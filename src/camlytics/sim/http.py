"""What the simulated camera's endpoints are made of: requests, responses, handlers and route tables.

A handler is `handler(cam, request) -> Response`. A module that serves endpoints keeps them in its own
route table (`ROUTES: Routes = {}`, each handler decorated with `@route(ROUTES, "GET", path=...)`);
`access=` names the least role that may call it (ROLES; default "viewer"), or a function of the request
that returns the role (param.cgi: viewer lists, operator updates); the camera authenticates and answers
401 / 403 before the handler runs, and puts the caller in `request.user` / `request.role`.
`camlytics.sim.camera.ROUTES` lists the tables every SimulatedCamera serves. Handlers outside
camera.py see the camera through the `Camera` protocol, so they need not import camera.py.
"""

from __future__ import annotations

import io
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol
from urllib.parse import parse_qsl

MAX_BODY = 64 << 20  # request bodies above this are refused (413); ACAP uploads are a few MiB
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers
BODY_TIMEOUT = 120.0  # seconds for a request's body (an ACAP upload over a slow link takes a while)
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait for its next request
SECRET_MASK = "********"  # what param.cgi?action=list shows for a password-typed parameter
MAX_CONNECTIONS = 256  # connections served at once; more get 503
# Access levels of an Axis device, least first: a role may do what every role before it may.
ROLES = ("anonymous", "viewer", "operator", "admin")


@dataclass
class Request:
    """One HTTP request as handlers see it: query and form arguments merged into `args`."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    user: str | None = None  # the authenticated user (None: anonymous, or a camera without authentication)
    role: str = "admin"  # the caller's role (ROLES); everyone is admin on a camera without authentication

    @property
    def args(self) -> dict[str, str]:
        """Query arguments, updated with a form-encoded body (any content type), as VAPIX CGIs read them."""
        merged = dict(self.query)
        if self.body and not self.body.lstrip().startswith((b"{", b"[", b"--")):
            try:
                merged.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        return merged

    def json(self) -> Any:
        """The body parsed as JSON; ValueError if it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """An answer: `body` is bytes, or an iterator of byte chunks to stream (then the connection closes)."""

    status: int = 200
    content_type: str = "text/plain"
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> "Response":
        return cls(status, content_type, text.encode("utf-8"))

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> "Response":
        return cls(status, "application/json", json.dumps(obj, indent=1).encode("utf-8"))


Handler = Callable[[Any, Request], Response]  # (the camera, the request) -> the answer
Routes = dict[tuple[str, str], Handler]  # (METHOD, path) -> handler
Access = str | Callable[[Request], str]  # the least role a handler needs, or a function of the request


def route(table: Routes, *methods: str, path: str, access: Access | None = None) -> Callable[[Handler], Handler]:
    """Decorator: serve the handler at `path` for each of `methods`, in `table` (`access`: see the module)."""

    def deco(fn: Handler) -> Handler:
        if access is not None:
            with_access(fn, access)
        for method in methods:
            table[(method.upper(), path)] = fn
        return fn

    return deco


def with_access(fn: Handler, access: Access) -> Handler:
    """Set the least role `fn` needs (a ROLES name or a function of the request); returns `fn`."""
    if isinstance(access, str) and access not in ROLES:
        raise ValueError(f"access {access!r} is not one of {ROLES}")
    fn.access = access  # type: ignore[attr-defined]
    return fn


def required_role(fn: Handler, req: Request) -> str:
    """The least role a request to `fn` needs (default "viewer")."""
    access = getattr(fn, "access", "viewer")
    role = access(req) if callable(access) else access
    return role if role in ROLES else "admin"  # an unknown level: the strictest


def role_allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (admin > operator > viewer > anonymous)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


class Camera(Protocol):
    """What a handler outside camera.py may use of the SimulatedCamera that serves it."""

    params: dict[str, str]  # param.cgi's parameters, root.Group.Name -> value
    secret_params: set[str]  # password-typed parameters: param.cgi lists them masked (SECRET_MASK)
    arch: str  # the camera's CPU architecture (basicdeviceinfo Architecture): armv7hf, aarch64, x86_64
    os_version: str  # AXIS OS version, MAJOR.MINOR.BUILD (basicdeviceinfo Version)
    routes: Routes  # this camera's endpoints
    extensions: dict[str, Any]  # per-camera state of extension modules, by key
    stop_hooks: list[Callable[[], Any]]  # run by stop()

    @property
    def url(self) -> str: ...

    @property
    def stopping(self) -> bool: ...

    def add_route(self, method: str, path: str, handler: Handler) -> None: ...

    def add_prefix_route(self, prefix: str, handler: Handler) -> None: ...

    def set_user(self, name: str, password: str | None, role: str = "viewer") -> None: ...

    def remove_prefix_route(self, prefix: str) -> None: ...


class DeadlineReader(io.RawIOBase):
    """A socket's read side where each phase of a request has a total deadline, not only a per-read timeout.

    A per-read timeout lets a client hold a connection for ever by sending one byte, or one header line,
    just before each read times out. Here `expect_request()` waits up to `idle` seconds for the first
    byte, and from that byte the headers must be complete within `header_timeout`; `expect_body(seconds)`
    sets the body's deadline; `done()` lifts it (the answer is being written). Past a deadline a read
    raises TimeoutError, which the HTTP handler treats as a timed-out request.
    """

    def __init__(self, sock: socket.socket, *, header_timeout: float, idle: float) -> None:
        super().__init__()
        self.sock, self.header_timeout, self.idle = sock, header_timeout, idle
        self.deadline: float | None = None
        self.waiting_first_byte = False

    def readable(self) -> bool:
        return True

    def expect_request(self) -> None:
        self.deadline, self.waiting_first_byte = None, True

    def expect_body(self, seconds: float) -> None:
        self.deadline, self.waiting_first_byte = time.monotonic() + seconds, False

    def done(self) -> None:
        self.deadline, self.waiting_first_byte = None, False

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.waiting_first_byte:
            self.sock.settimeout(self.idle)
        elif self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request not received in time")
            self.sock.settimeout(left)
        n = self.sock.recv_into(buffer)
        if self.waiting_first_byte and n:
            self.waiting_first_byte = False
            self.deadline = time.monotonic() + self.header_timeout
        return n
