"""The app's own small HTTP endpoint: status JSON and the spool of surprising frames.

A non-blocking HTTP/1.0 server on `socket` + `select.poll` (MicroPython and CPython), polled from
the app's main loop between frames; it never blocks longer than the poll timeout it is given. The
camera exposes it through its reverse proxy at /local/APPNAME/... and does the authentication, so
it listens on 127.0.0.1 only by default and trusts every request it gets.

Routes (paths as the proxy forwards them; a query string and one trailing slash are ignored):

    GET /status          JSON: state ("unknown" too), confidence, the latest frame's raw class and
                         confidence, frame counts, model, backend, uptime, heap, version
    GET /spool           JSON list of the spooled frames [{"name", "size", "time", "reason"}], oldest first
    GET /spool/NAME      that JPEG, if NAME is one the spool lists right now (nothing else is served)

Unknown paths get 404, other methods 405 (with Allow: GET), a malformed request 400, a request
over MAX_REQUEST bytes 431, a client that does not finish its request within TIMEOUT_MS is dropped.
At most MAX_CONNECTIONS are served at once; a newer client pushes out the oldest one.
"""

import errno
import json
import select
import socket

from camlytics.edge.compat import ticks_diff, ticks_ms, wall_time

MAX_REQUEST = 4096  # request line + headers; GET has no body
MAX_CONNECTIONS = 4
TIMEOUT_MS = 3000  # a connection's whole life: read the request, write the answer
_CHUNK = 4096

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error"}

_AGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN))


def _would_block(exc):
    return bool(exc.args) and exc.args[0] in _AGAIN


class _Connection:
    """One client: "read" its request, "write" the answer (bytes, then an open file), then close;
    after a 431, "drain" what the client still sends so it can read the answer (no reset)."""

    def __init__(self, sock, now):
        self.sock = sock
        self.fd = sock.fileno()
        self.started = now
        self.phase = "read"
        self.request = b""
        self.out = None  # memoryview of what is left to send
        self.file = None  # the rest of the body, streamed in _CHUNK pieces
        self.drain = False


class Server:
    """Listen on host:port; `poll(timeout_ms)` serves what is ready; `handler(path) -> (status, type, body)`.

    `body` is bytes or an open binary file (streamed, then closed)."""

    def __init__(self, host, port, handler):
        self.handler = handler
        self.conns = []
        self.served = 0
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart within TIME_WAIT
            sock.bind(addr)
            sock.listen(MAX_CONNECTIONS)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.fd = sock.fileno()
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def poll(self, timeout_ms=0):
        """Wait up to timeout_ms for clients, serve what is ready, drop expired connections."""
        if self.sock is None:
            return
        try:
            events = self.poller.poll(max(0, int(timeout_ms)))
        except OSError as exc:  # EINTR: a signal arrived; the caller polls again
            if exc.args and exc.args[0] == errno.EINTR:
                return
            raise
        for obj, flags in events:
            if obj is self.sock or obj == self.fd:
                self._accept()
                continue
            for conn in self.conns:
                if obj is conn.sock or obj == conn.fd:
                    self._service(conn, flags)
                    break
        now = ticks_ms()
        for conn in list(self.conns):
            if ticks_diff(now, conn.started) > TIMEOUT_MS:
                self._drop(conn)

    def close(self):
        """Stop listening and drop every connection."""
        for conn in list(self.conns):
            self._drop(conn)
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close()
            self.sock = None

    # --- connections ------------------------------------------------------------------------

    def _accept(self):
        try:
            sock, _ = self.sock.accept()
        except OSError as exc:
            if _would_block(exc) or (exc.args and exc.args[0] == errno.ECONNABORTED):
                return
            raise
        sock.setblocking(False)
        if len(self.conns) >= MAX_CONNECTIONS:
            self._drop(self.conns[0])  # the oldest is the likeliest to be stuck
        conn = _Connection(sock, ticks_ms())
        self.conns.append(conn)
        self.poller.register(sock, select.POLLIN)

    def _drop(self, conn):
        if conn in self.conns:
            self.conns.remove(conn)
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        if conn.file is not None:
            conn.file.close()
            conn.file = None
        conn.sock.close()

    def _service(self, conn, flags):
        try:
            if conn.phase == "write":
                self._write(conn)
            elif flags & select.POLLIN:
                self._read(conn)
            else:  # POLLHUP / POLLERR while waiting for the request
                self._drop(conn)
        except OSError as exc:
            if not _would_block(exc):
                self._drop(conn)

    def _read(self, conn):
        data = conn.sock.recv(1024)
        if not data:  # the client closed its side before a whole request, or after a drained 431
            self._drop(conn)
            return
        if conn.phase == "drain":
            return
        conn.request += data
        end = conn.request.find(b"\r\n\r\n")
        if end < 0:
            end = conn.request.find(b"\n\n")
        if end < 0 and len(conn.request) <= MAX_REQUEST:
            return  # not complete yet: the next poll reads more
        if end < 0 or end > MAX_REQUEST:
            conn.drain = True
            self._answer(conn, 431, "text/plain", b"request too large\n")
            return
        status, ctype, body = self._route(conn.request[:end])
        self._answer(conn, status, ctype, body)

    def _route(self, head):
        line = head.split(b"\n", 1)[0].strip()
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1].startswith(b"/"):
            return 400, "text/plain", b"malformed request\n"
        try:
            method, path = parts[0].decode(), parts[1].decode()
        except UnicodeError:
            return 400, "text/plain", b"malformed request\n"
        if method != "GET":
            return 405, "text/plain", b"only GET is allowed\n"
        path = path.split("?", 1)[0]
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        try:
            return self.handler(path)
        except Exception as exc:  # noqa: BLE001 - a failing route must not stop the sensor
            return 500, "text/plain", ("error: %s\n" % exc).encode()

    def _answer(self, conn, status, ctype, body):
        length = len(body) if isinstance(body, bytes) else _file_size(body)
        head = "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n" % (
            status, REASONS.get(status, "Error"), ctype, length)
        if status == 405:
            head += "Allow: GET\r\n"
        head += "Cache-Control: no-store\r\n\r\n"
        if isinstance(body, bytes):
            conn.out = memoryview(head.encode() + body)
        else:
            conn.out = memoryview(head.encode())
            conn.file = body
        conn.request = b""
        conn.phase = "write"
        self.served += 1
        self.poller.modify(conn.sock, select.POLLOUT)
        self._write(conn)  # most answers fit the socket buffer: done without another poll

    def _write(self, conn):
        while True:
            if not len(conn.out):
                chunk = conn.file.read(_CHUNK) if conn.file is not None else b""
                if not chunk:
                    break
                conn.out = memoryview(chunk)
            n = conn.sock.send(conn.out)  # raises EAGAIN when the socket is full: the next poll goes on
            if not n:
                return
            conn.out = conn.out[n:]
        if conn.drain:  # keep reading (and dropping) until the client closes or the deadline
            conn.phase = "drain"
            self.poller.modify(conn.sock, select.POLLIN)
        else:
            self._drop(conn)


def _file_size(f):
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    return size


# --- the app's routes --------------------------------------------------------------------------


def heap():
    """{"alloc", "free"} bytes of the MicroPython heap; None on CPython."""
    import gc

    if not hasattr(gc, "mem_alloc"):
        return None
    return {"alloc": gc.mem_alloc(), "free": gc.mem_free()}


def status(app):
    """The /status document of a running App."""
    from camlytics.edge import jpeg
    from camlytics.edge.app import version

    tr = app.tracker
    meta = app.meta
    return {
        "state": tr.state,
        "confidence": round(tr.confidence, 4),
        "since": app.since,
        "state_changes": tr.changes,
        "raw_class": tr.raw_class,  # the latest frame's top class and probability, before unknown/debounce
        "raw_confidence": round(tr.raw_confidence, 4),
        "unknown_votes": tr.unknown_votes,
        "min_confidence": tr.min_confidence,
        "active_class": app.active_class,
        "frames": {"seen": app.seen, "decoded": app.frames, "failed": app.failed,
                   "camera_errors": app.camera_failures},
        "model": {"name": app.model_name, "version": app.model_version, "format_version": meta.get("version"),
                  "classes": app.classes},
        "backend": app.net.backend,
        "jpeg_kernels": jpeg.KERNELS,
        "uptime_s": int(wall_time() - app.started),
        "heap": heap(),
        "spooled": len(app.spool.files()) if app.spool else None,
        "version": version(),
    }


def spool_listing(spool):
    """[{"name", "size", "time", "reason"}] of the spooled frames, oldest first."""
    out = []
    for name, size in spool.files():
        stamp, _, reason = name[:-4].partition("-")
        try:
            t = int(stamp) / 1000
        except ValueError:
            t = None
        out.append({"name": name, "size": size, "time": t, "reason": reason})
    return out


def route(app, path):
    """Answer one GET for `app`: (status, content type, bytes or open file)."""
    if path == "/status":
        return 200, "application/json", json.dumps(status(app)).encode()
    if path == "/spool" or path.startswith("/spool/"):
        if app.spool is None:
            return 404, "text/plain", b"no spool configured\n"
        if path == "/spool":
            return 200, "application/json", json.dumps(spool_listing(app.spool)).encode()
        name = path[7:]
        for listed, _ in app.spool.files():  # only what the spool lists: no path ever built from input
            if listed == name:
                try:
                    return 200, "image/jpeg", open(app.spool.directory + "/" + listed, "rb")
                except OSError:
                    break  # deleted by the quota meanwhile
        return 404, "text/plain", b"no such spooled frame\n"
    return 404, "text/plain", b"not found\n"
