"""How `camlytics annotate` serves its app: uvicorn with read deadlines, a connection bound and clean signals.

uvicorn alone waits for ever on a client that sends half a request (or one header line every few
seconds), accepts as many connections as the file descriptors allow, ends SIGTERM by re-raising it
(the process dies of the signal) and ignores SIGHUP. `GuardedH11Protocol` cuts a request whose headers
or body do not arrive in time and answers 503 to connections over the bound; `AnnotateServer` stops
gracefully on SIGINT, SIGTERM and SIGHUP and remembers which one came, so the command exits 128+N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any, Iterator

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one client may hold: seconds to send the headers, then the body; open connections."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 256


def raw_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer with a JSON error body that closes the connection."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\nCache-Control: no-store\r\n\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers and body, and a connection bound.

    The header deadline starts when the connection opens (and again after each answer, for the next
    request on a kept-alive connection); the body deadline when the headers are complete.
    """

    limits = ServerLimits()  # replaced per server by `protocol_with`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None
        self._waiting_for: str | None = None
        if len(self.connections) > self.limits.max_connections:
            transport.write(raw_response(503, "Service Unavailable",
                                         f"too many connections (over {self.limits.max_connections}); try again"))
            transport.close()
            return
        self._arm("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.cycle is self._seen_cycle:  # idle until the next request: its headers have a deadline again
            self._arm("headers")
        else:  # a pipelined request was already read
            self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _track(self) -> None:
        """Move the deadline along: headers complete -> body deadline; body complete -> none."""
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen_cycle:
            self._seen_cycle = cycle
            if cycle.more_body:
                self._arm("body")
            else:
                self._cancel()
        elif self._waiting_for == "body" and cycle is not None and not cycle.more_body:
            self._cancel()

    def _arm(self, what: str) -> None:
        self._cancel()
        seconds = self.limits.header_timeout if what == "headers" else self.limits.body_timeout
        self._waiting_for = what
        self._read_timer = self.loop.call_later(seconds, self._timed_out)

    def _cancel(self) -> None:
        timer = getattr(self, "_read_timer", None)
        if timer is not None:
            timer.cancel()
        self._read_timer = None
        self._waiting_for = None

    def _timed_out(self) -> None:
        """The client was too slow: a 408 when no answer has begun, then close (the app sees a disconnect)."""
        what, self._read_timer, self._waiting_for = self._waiting_for, None, None
        if self.transport.is_closing():
            return
        if what == "headers":
            seconds = self.limits.header_timeout
            self.transport.write(raw_response(408, "Request Timeout", f"request headers not sent within {seconds:g} s"))
        self.transport.close()


def protocol_with(limits: ServerLimits) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol class bound to these limits (uvicorn creates one protocol per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


class AnnotateServer(uvicorn.Server):
    """uvicorn's server that stops gracefully on SIGINT, SIGTERM and SIGHUP; `stop_signal` is the one that came."""

    stop_signal: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Unlike uvicorn's own, this one handles SIGHUP too and does not re-raise the signal afterwards:
        # the command ends normally (its cleanup runs) and exits 128+N itself.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = sig
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: do not wait for open connections
        self.should_exit = True


def server_config(app: Any, limits: ServerLimits) -> uvicorn.Config:
    """The uvicorn configuration of the annotation server."""
    return uvicorn.Config(app, http=protocol_with(limits), log_level="warning", access_log=False,
                          timeout_graceful_shutdown=5)
