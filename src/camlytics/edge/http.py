"""A small HTTP/1.1 client for the edge (MicroPython and CPython): GET/POST over `socket`, timeouts,
bounded reads (header and body size; Content-Length, chunked or read-to-close), Digest (MD5,
qop=auth) and Basic authentication for VAPIX cameras.

    client = Client("root", "pass", timeout=5.0)
    response = client.request("GET", "http://192.168.0.90/axis-cgi/jpg/image.cgi")
    response.raise_for_status()            # AuthError / NotFound / ServerError with a clear message
    jpeg = response.body

A 401 is answered once with the challenge's credentials; the Digest challenge is then cached per
host and reused with an incremented nonce count, so later requests need a single round trip.
Credentials never appear in messages (URLs are shown without user info).
"""

import binascii
import errno
import hashlib
import os
import socket

from camlytics.edge.compat import ticks_diff, ticks_ms

DEFAULT_TIMEOUT = 10.0
MAX_HEADER = 16 * 1024
MAX_BODY = 8 * 1024 * 1024
_CHUNK = 4096


class HTTPError(Exception):
    """Any failure of a request: connection, timeout, protocol, size limit or an error status."""


class ConnectError(HTTPError):
    """The host cannot be resolved or refuses or drops the connection."""


class Timeout(HTTPError):
    """The server did not answer (connect, send, read) within the timeout."""


class ProtocolError(HTTPError):
    """The server's answer is not valid HTTP/1.x."""


class TooLarge(HTTPError):
    """The response headers or body exceed the client's limits."""


class StatusError(HTTPError):
    """The server answered with an error status (raised by `Response.raise_for_status`)."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class AuthError(StatusError):
    """401/403: the credentials are missing, wrong or not allowed."""


class NotFound(StatusError):
    """404: no such path on the server."""


class ServerError(StatusError):
    """5xx: the server failed."""


def redact(url):
    """The URL without its user:password part, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = netloc.rpartition("@")[2]
    return scheme + sep + netloc + slash + path


def _unquote(text):
    """%XX-decoding for user names and passwords in URLs."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode()
    i = 0
    while i < len(raw):
        if raw[i] == 37 and i + 3 <= len(raw):  # '%'
            try:
                out.append(int(raw[i + 1:i + 3].decode(), 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return bytes(out).decode()


def parse_url(url):
    """'http://user:pass@host:port/path?q' -> (host, port, target, user, password)."""
    if not isinstance(url, str):
        raise HTTPError("URL must be a string, got %s" % type(url).__name__)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "http":
        raise HTTPError("unsupported URL %r: only http:// is supported" % redact(url))
    netloc, slash, path = rest.partition("/")
    target = "/" + path if slash else "/"
    user = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        user, password = _unquote(user), _unquote(password)
    host, port = netloc, 80
    if netloc.startswith("["):  # IPv6 literal
        end = netloc.find("]")
        host, after = netloc[1:end], netloc[end + 1:]
        if after.startswith(":"):
            port = after[1:]
    elif ":" in netloc:
        host, _, port = netloc.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        raise HTTPError("invalid port in URL %r" % redact(url)) from None
    if not host or not 0 < port < 65536:
        raise HTTPError("invalid host or port in URL %r" % redact(url))
    if "#" in target:
        target = target[:target.find("#")]
    for ch in target:
        if ch in " \r\n":
            raise HTTPError("invalid character in URL path %r" % redact(url))
    return host, port, target, user, password


class Response:
    """status (int), reason (str), headers (lower-case name -> last value), challenges, body (bytes)."""

    def __init__(self, status, reason, headers, challenges, body, url):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.challenges = challenges  # every WWW-Authenticate value
        self.body = body
        self.url = url  # redacted

    @property
    def ok(self):
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def raise_for_status(self):
        """Raise AuthError (401/403), NotFound (404), ServerError (5xx) or StatusError; else self."""
        s = self.status
        if s < 400:
            return self
        what = "%s answered HTTP %d %s" % (self.url, s, self.reason)
        if s == 401:
            raise AuthError(what + ": wrong or missing user name/password", s)
        if s == 403:
            raise AuthError(what + ": the user is not allowed to do this", s)
        if s == 404:
            raise NotFound(what + ": no such path", s)
        if s >= 500:
            raise ServerError(what + ": server error", s)
        raise StatusError(what, s)

    def __repr__(self):
        return "<Response %d %s, %d bytes>" % (self.status, self.reason, len(self.body))


def _hex_md5(text):
    return binascii.hexlify(hashlib.md5(text.encode()).digest()).decode()


def parse_challenge(value):
    """'Digest realm="x", nonce="y", qop="auth"' -> ("digest", {"realm": "x", ...})."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,\t":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            val = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                val.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(val)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


class _Digest:
    """A cached Digest challenge for one host; each use increments the nonce count."""

    def __init__(self, params):
        self.realm = params.get("realm", "")
        self.nonce = params.get("nonce", "")
        self.opaque = params.get("opaque")
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        self.qop = "auth" if "auth" in qops else None
        if qops and not self.qop:
            raise HTTPError("server asks for Digest qop %r; only 'auth' is supported" % params.get("qop"))
        algorithm = params.get("algorithm", "MD5")
        if algorithm.upper() != "MD5":
            raise HTTPError("server asks for Digest algorithm %r; only MD5 is supported" % algorithm)
        self.nc = 0

    def header(self, user, password, method, target):
        self.nc += 1
        ha1 = _hex_md5("%s:%s:%s" % (user, self.realm, password))
        ha2 = _hex_md5("%s:%s" % (method, target))
        fields = 'username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5' % (
            user, self.realm, self.nonce, target)
        if self.qop:
            nc = "%08x" % self.nc
            cnonce = binascii.hexlify(os.urandom(8)).decode()
            response = _hex_md5("%s:%s:%s:%s:auth:%s" % (ha1, self.nonce, nc, cnonce, ha2))
            fields += ', qop=auth, nc=%s, cnonce="%s"' % (nc, cnonce)
        else:
            response = _hex_md5("%s:%s:%s" % (ha1, self.nonce, ha2))
        fields += ', response="%s"' % response
        if self.opaque is not None:
            fields += ', opaque="%s"' % self.opaque
        return "Digest " + fields


def _is_timeout(exc):
    if isinstance(exc, getattr(socket, "timeout", ())):  # CPython's socket.timeout (TimeoutError)
        return True
    code = exc.args[0] if exc.args else None
    return code in (errno.ETIMEDOUT, errno.EAGAIN)


class Client:
    """HTTP/1.1 client: one connection per request; optional credentials (also from the URL).

    timeout: seconds for connecting and for each send/receive; total_timeout: the whole request
    (default 3 x timeout) so a server that trickles bytes cannot hold the caller.
    """

    def __init__(self, user=None, password=None, timeout=DEFAULT_TIMEOUT, total_timeout=None,
                 max_header=MAX_HEADER, max_body=MAX_BODY, user_agent="camlytics-edge/1"):
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds, got %r" % (timeout,))
        self.user = user
        self.password = password
        self.timeout = float(timeout)
        self.total_timeout = float(total_timeout) if total_timeout else 3 * self.timeout
        self.max_header = int(max_header)
        self.max_body = int(max_body)
        self.user_agent = user_agent
        self._auth = {}  # "host:port" -> _Digest or "basic"
        self.exchanges = 0  # request/response round trips made (a 401 challenge counts as one)

    def get(self, url, headers=None):
        """GET and raise for an error status -> Response."""
        return self.request("GET", url, headers=headers).raise_for_status()

    def post(self, url, body, headers=None):
        """POST `body` (bytes or str) and raise for an error status -> Response."""
        return self.request("POST", url, body=body, headers=headers).raise_for_status()

    def request(self, method, url, body=None, headers=None):
        """Send one request (answering one 401 challenge) -> Response of any status."""
        host, port, target, user, password = parse_url(url)
        if user is None:
            user, password = self.user, self.password
        if isinstance(body, str):
            body = body.encode()
        key = "%s:%d" % (host, port)
        shown = redact(url)
        auth = self._auth.get(key) if user is not None else None
        response = self._send(host, port, method, target, body, headers,
                              self._authorization(auth, user, password, method, target), shown)
        if response.status != 401 or user is None:
            return response
        # One retry with the server's challenge: a first contact, an expired (stale) nonce, or a
        # nonce the server forgot. A second 401 means the credentials are wrong.
        fresh = self._choose(response.challenges)
        if fresh is None:
            return response
        self._auth[key] = fresh
        response = self._send(host, port, method, target, body, headers,
                              self._authorization(fresh, user, password, method, target), shown)
        if response.status == 401:
            self._auth.pop(key, None)
        return response

    @staticmethod
    def _choose(challenges):
        digest = basic = None
        for value in challenges:
            scheme, params = parse_challenge(value)
            if scheme == "digest" and digest is None:
                digest = _Digest(params)
            elif scheme == "basic":
                basic = "basic"
        return digest or basic

    @staticmethod
    def _authorization(auth, user, password, method, target):
        if auth is None:
            return None
        if auth == "basic":
            token = binascii.b2a_base64(("%s:%s" % (user, password or "")).encode()).strip()
            return "Basic " + token.decode()
        return auth.header(user, password or "", method, target)

    def _send(self, host, port, method, target, body, headers, authorization, shown):
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % (host if port == 80 else "%s:%d" % (host, port)),
                 "User-Agent: " + self.user_agent, "Connection: close"]
        if authorization:
            lines.append("Authorization: " + authorization)
        if headers:
            for name in headers:
                value = str(headers[name])
                if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                    raise HTTPError("invalid header %r" % name)
                lines.append("%s: %s" % (name, value))
        if body is not None or method in ("POST", "PUT"):
            lines.append("Content-Length: %d" % len(body or b""))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.exchanges += 1
        start = ticks_ms()
        try:
            info = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        except OSError as exc:
            raise ConnectError("cannot resolve %s (%s)" % (host, exc)) from None
        addr = info[-1]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(addr)
            except OSError as exc:
                if _is_timeout(exc):
                    raise Timeout("%s: no connection within %.1f s" % (shown, self.timeout)) from None
                raise ConnectError("cannot connect to %s (%s)" % (shown, _describe(exc))) from None
            try:
                self._send_all(sock, head)
                if body:
                    self._send_all(sock, body)
                return self._read_response(sock, method, shown, start)
            except OSError as exc:
                if _is_timeout(exc):
                    raise Timeout("%s: no answer within %.1f s" % (shown, self.timeout)) from None
                raise ConnectError("connection to %s failed (%s)" % (shown, _describe(exc))) from None
        finally:
            sock.close()

    @staticmethod
    def _send_all(sock, data):
        view = memoryview(data)
        while len(view):
            n = sock.send(view)
            if not n:
                raise OSError(errno.ECONNRESET)
            view = view[n:]

    def _read_response(self, sock, method, shown, start):
        reader = _Reader(sock, self, shown, start)
        head = reader.read_until(b"\r\n\r\n", self.max_header, "headers")
        lines = head.split(b"\r\n")
        try:
            status_line = lines[0].decode()
        except UnicodeError:
            raise ProtocolError("%s: not an HTTP response" % shown) from None
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError("%s: not an HTTP response (%r)" % (shown, status_line[:40]))
        try:
            status = int(parts[1])
        except ValueError:
            raise ProtocolError("%s: invalid status %r" % (shown, parts[1][:10])) from None
        reason = parts[2] if len(parts) > 2 else ""
        headers = {}
        challenges = []
        for raw in lines[1:]:
            if not raw:
                continue
            name, sep, value = raw.partition(b":")
            if not sep:
                raise ProtocolError("%s: invalid header line" % shown)
            try:
                name = name.strip().decode().lower()
                value = value.strip().decode()
            except UnicodeError:
                raise ProtocolError("%s: header is not valid text" % shown) from None
            headers[name] = value
            if name == "www-authenticate":
                challenges.append(value)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = reader.read_chunked()
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit() or len(text) > 12:
                raise ProtocolError("%s: invalid Content-Length %r" % (shown, text[:20]))
            length = int(text)
            if length > self.max_body:
                raise TooLarge("%s: response body of %d bytes exceeds the limit of %d" % (shown, length, self.max_body))
            body = reader.read_exact(length)
        else:
            body = reader.read_to_close()
        return Response(status, reason, headers, challenges, body, shown)


def _describe(exc):
    code = exc.args[0] if exc.args else exc
    names = {errno.ECONNREFUSED: "connection refused", errno.ECONNRESET: "connection reset",
             errno.EHOSTUNREACH: "host unreachable"}
    return names.get(code, str(exc))


class _Reader:
    """Buffered, bounded reads from a socket with a whole-request deadline."""

    def __init__(self, sock, client, shown, start):
        self.sock = sock
        self.client = client
        self.shown = shown
        self.start = start
        self.buf = b""

    def _more(self):
        if ticks_diff(ticks_ms(), self.start) > 1000 * self.client.total_timeout:
            raise Timeout("%s: response not complete within %.1f s" % (self.shown, self.client.total_timeout))
        data = self.sock.recv(_CHUNK)
        return data

    def read_until(self, sep, limit, what):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                line = self.buf[:i]
                self.buf = self.buf[i + len(sep):]
                return line
            if len(self.buf) > limit:
                raise TooLarge("%s: response %s exceed %d bytes" % (self.shown, what, limit))
            data = self._more()
            if not data:
                raise ProtocolError("%s: connection closed in the middle of the response %s" % (self.shown, what))
            self.buf += data

    def read_exact(self, n):
        parts = [self.buf[:n]]
        got = len(parts[0])
        self.buf = self.buf[n:]
        while got < n:
            data = self._more()
            if not data:
                raise ProtocolError("%s: connection closed after %d of %d body bytes" % (self.shown, got, n))
            if got + len(data) > n:
                self.buf = data[n - got:]
                data = data[:n - got]
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def read_to_close(self):
        parts = [self.buf]
        got = len(self.buf)
        self.buf = b""
        while True:
            if got > self.client.max_body:
                raise TooLarge("%s: response body exceeds the limit of %d bytes" % (self.shown, self.client.max_body))
            data = self._more()
            if not data:
                return b"".join(parts)
            parts.append(data)
            got += len(data)

    def read_chunked(self):
        parts = []
        got = 0
        while True:
            line = self.read_until(b"\r\n", 1024, "chunk header")
            size_text = line.split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("%s: invalid chunk size %r" % (self.shown, size_text[:20])) from None
            if size < 0:
                raise ProtocolError("%s: invalid chunk size" % self.shown)
            if size == 0:
                while self.read_until(b"\r\n", self.client.max_header, "trailers"):
                    pass
                return b"".join(parts)
            got += size
            if got > self.client.max_body:
                raise TooLarge("%s: response body exceeds the limit of %d bytes" % (self.shown, self.client.max_body))
            parts.append(self.read_exact(size))
            if self.read_exact(2) != b"\r\n":
                raise ProtocolError("%s: chunk not followed by CRLF" % self.shown)
