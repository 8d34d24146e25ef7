"""A small MQTT 3.1.1 client for MicroPython and CPython: CONNECT with last will, PUBLISH QoS 0/1
with retain, PINGREQ keepalive, optional TLS (mqtts), and a reconnecting wrapper with exponential
backoff.

Each method is one protocol action and builds its packet by hand (like micropython-lib's
umqtt.simple). Only what a state sensor needs: it publishes and never subscribes.

TLS (`tls=True`, port 8883 by default): the broker's certificate is always verified, and its name
is checked against `server_hostname` (default: `host`; an IP address matches an IP subjectAltName).
- `ca_file` given: the certificate must chain to the CA certificate(s) in that file (PEM, one or
  more certificates, or a single DER certificate), and only to them.
- `ca_file` None: the system's CA store, as Home Assistant, paho-mqtt and mosquitto_pub
  --tls-use-os-certs do: CPython's default verify paths; on MicroPython, which has no store, the
  first CA bundle file of SYSTEM_CA_BUNDLES that exists (most Linux systems have one). Where there
  is none, the client refuses with an MQTTError asking for a ca_file. Verification is never skipped.
A certificate that does not verify, a handshake failure, or an unreadable CA file is an MQTTError
with one readable line. The CA certificates are parsed once, when the client is created.

Portability: MicroPython >= 1.23 has the TLS built-in as `tls` (firmware built without
micropython-lib has no `ssl`; micropython-lib's `ssl.py` wrapper takes a file path as the first
argument of load_verify_locations and defaults to CERT_NONE, so the built-in is preferred).
Its `SSLContext.load_verify_locations(cadata)` takes one positional argument holding exactly one
DER certificate (the unix port's Mbed TLS has no PEM parser: PEM is "invalid cert"), and adds to the
trusted set on each call; so PEM is decoded here and each certificate loaded in turn. Its SSL socket
has read/write (recv/send/sendall only where DTLS is compiled in), and the 1.28 plain socket has no
sendall: on MicroPython all I/O goes through the stream read/write methods.
"""

import socket
import struct

from camlytics.edge.compat import IS_MICROPYTHON, ticks_diff, ticks_ms

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

MAX_PACKET = 65536  # we only ever receive tiny acks; anything larger is a protocol error

CONNACK_ERRORS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883

# CA bundles of the usual Linux layouts, tried in order when TLS has no ca_file on MicroPython.
SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Yocto/OpenEmbedded (Axis OS), Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # Alpine, BSD, macOS
)


class MQTTError(Exception):
    """The broker cannot be reached, refused us, or broke the protocol."""


def _encode_length(n):
    """MQTT variable-length 'remaining length' field."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(s):
    """A UTF-8 string with its 2-byte length prefix."""
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 65535:
        raise MQTTError("string too long for MQTT: %d bytes" % len(s))
    return struct.pack("!H", len(s)) + s


def _tls_module():
    """The platform's TLS module: `ssl` on CPython, the `tls` built-in on MicroPython."""
    if IS_MICROPYTHON:
        try:
            import tls

            return tls
        except ImportError:
            pass
        try:
            import ssl  # MicroPython before 1.23 called the built-in `ssl`

            return ssl
        except ImportError:
            raise MQTTError("MQTT over TLS needs a MicroPython built with TLS (no `tls` or `ssl` module)")
    import ssl

    return ssl


def read_certificates(path):
    """The DER certificates in the file at `path`: each PEM "CERTIFICATE" block, or the whole file when
    it is one DER certificate. Reads line by line (a system bundle is ~200 kB). MQTTError when the file
    cannot be read or holds no certificate."""
    import binascii

    certs = []
    try:
        with open(path, "rb") as f:
            first = f.read(1)
            if first == b"\x30":  # a DER SEQUENCE: one binary certificate
                return [first + f.read()]
            block = None
            line = first + f.readline()
            while line:
                line = line.strip()
                if line == b"-----BEGIN CERTIFICATE-----":
                    block = []
                elif line == b"-----END CERTIFICATE-----" and block is not None:
                    try:
                        certs.append(binascii.a2b_base64(b"".join(block)))
                    except ValueError:  # binascii.Error is a ValueError on CPython
                        raise MQTTError("CA file %s: certificate %d is not valid base64" % (path, len(certs) + 1))
                    block = None
                elif block is not None:
                    block.append(line)
                line = f.readline()
    except OSError as exc:
        raise MQTTError("cannot read CA file %s (%s)" % (path, _reason(exc)))
    if not certs:
        raise MQTTError("CA file %s holds no certificate (PEM or DER expected)" % path)
    return certs


def _system_ca_bundle():
    import os

    for path in SYSTEM_CA_BUNDLES:
        try:
            os.stat(path)
            return path
        except OSError:
            pass
    return None


def _reason(exc):
    """A one-line reason from an OSError/SSLError/ValueError of CPython or MicroPython."""
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
    if not text:
        args = getattr(exc, "args", ())
        if len(args) == 2 and isinstance(args[1], str):
            text = args[1]  # CPython (errno, strerror); MicroPython mbedtls (code, "MBEDTLS_ERR_...")
        else:
            text = str(exc)
    # Mbed TLS lists verification failures one per line: "\nreason 1\nreason 2\n"
    text = "; ".join(" ".join(line.split()) for line in str(text).split("\n") if line.strip())
    return text or type(exc).__name__


def tls_context(ca_file=None):
    """A client SSLContext that requires a valid broker certificate (see the module docstring).
    Returns (context, ssl module, what the certificate is checked against)."""
    ssl = _tls_module()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # micropython-lib's ssl wrapper would default to CERT_NONE
    if not IS_MICROPYTHON:
        ctx.check_hostname = True
        if ca_file is None:
            ctx.load_default_certs()
            return ctx, ssl, "the system CA store"
        try:
            ctx.load_verify_locations(cadata=b"".join(read_certificates(ca_file)))
        except ssl.SSLError as exc:
            raise MQTTError("CA file %s: not a valid X.509 certificate (%s)" % (ca_file, _reason(exc)))
        return ctx, ssl, "CA file %s" % ca_file
    path = ca_file or _system_ca_bundle()
    if path is None:
        raise MQTTError("MQTT over TLS: no CA file given and no system CA bundle found (%s); "
                        "give the broker's CA certificate as ca_file" % ", ".join(SYSTEM_CA_BUNDLES))
    loaded = 0
    for i, der in enumerate(read_certificates(path)):
        try:
            ctx.load_verify_locations(der)
            loaded += 1
        except ValueError:
            if ca_file is not None:
                raise MQTTError("CA file %s: certificate %d is not a valid X.509 certificate" % (path, i + 1))
            # a system bundle may hold an algorithm this Mbed TLS lacks: trust the others
    if not loaded:
        raise MQTTError("CA bundle %s: no certificate could be loaded" % path)
    return ctx, ssl, ("CA file %s" % path) if ca_file else ("the system CA bundle %s" % path)


class MQTTClient:
    """One connection to a broker. Not thread-safe; call `poll()` regularly for the keepalive.

    `port` None means 1883, or 8883 with `tls`. With `tls`, the broker's certificate is verified
    against `ca_file` (or the system store, see the module docstring) and must name
    `server_hostname` (default `host`). A bad `ca_file` raises MQTTError here, not at connect."""

    def __init__(self, client_id, host, port=None, user=None, password=None, keepalive=30, timeout=5.0,
                 tls=False, ca_file=None, server_hostname=None):
        self.client_id = client_id
        self.host = host
        self.tls = bool(tls)
        if port is None:
            port = DEFAULT_TLS_PORT if self.tls else DEFAULT_PORT
        self.port = int(port)
        self.user = user
        self.password = password
        self.keepalive = int(keepalive)
        self.timeout = timeout
        self.ca_file = ca_file
        self.server_hostname = server_hostname or host
        self.sock = None
        self._raw = None  # the TCP socket under the TLS one
        self._rbuf = b""  # bytes read ahead by _readable() on a TLS connection
        self.will = None
        self.packet_id = 0
        self.last_io = 0
        self.ping_outstanding = False
        self._ssl_context = self._ssl = self._trust = None
        if ca_file is not None and not self.tls:
            raise MQTTError("a CA file (%s) is given but TLS is off: enable TLS to use it" % ca_file)
        if self.tls:
            self._ssl_context, self._ssl, self._trust = tls_context(ca_file)

    @property
    def url(self):
        """mqtt://host:port or mqtts://host:port, for log lines."""
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", self.host, self.port)

    def set_last_will(self, topic, message, retain=False, qos=0):
        """The message the broker publishes for us when we vanish without DISCONNECT."""
        self.will = (topic, message, retain, qos)

    def connect(self, clean_session=True):
        """Open the TCP connection and do the CONNECT/CONNACK handshake; returns session_present."""
        self.close()
        try:
            addr = socket.getaddrinfo(self.host, self.port)[0][-1]
            sock = socket.socket()
            sock.settimeout(self.timeout)
            sock.connect(addr)
        except OSError as exc:
            raise MQTTError("cannot connect to MQTT broker %s:%d (%s)" % (self.host, self.port, exc))
        if self.tls:
            self._raw = sock
            sock = self._handshake(sock)
        self.sock = sock
        flags = 0x02 if clean_session else 0
        payload = _string(self.client_id)
        if self.will:
            topic, message, retain, qos = self.will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload += _string(topic) + _string(message)
        if self.user is not None:
            flags |= 0x80
            payload += _string(self.user)
            if self.password is not None:
                flags |= 0x40
                payload += _string(self.password)
        variable = _string("MQTT") + bytes((4, flags)) + struct.pack("!H", self.keepalive)
        self._send(CONNECT, variable + payload)
        try:
            kind, body = self._read_packet()
        except MQTTError as exc:
            if self.tls:
                raise
            raise MQTTError("%s before CONNACK from %s:%d (if that port expects TLS, enable TLS: mqtts)"
                            % (exc, self.host, self.port))
        if kind != CONNACK or len(body) != 2:
            self.close()
            raise MQTTError("broker did not answer CONNECT with CONNACK")
        if body[1]:
            self.close()
            raise MQTTError("broker refused connection: " + CONNACK_ERRORS.get(body[1], "code %d" % body[1]))
        self.ping_outstanding = False
        return bool(body[0] & 1)

    def publish(self, topic, message, retain=False, qos=0):
        """PUBLISH; with qos=1, wait for the matching PUBACK."""
        if isinstance(message, str):
            message = message.encode()
        header = PUBLISH | (qos << 1) | (1 if retain else 0)
        variable = _string(topic)
        if qos:
            self.packet_id = self.packet_id % 65535 + 1
            pid = self.packet_id
            variable += struct.pack("!H", pid)
        self._send(header, variable + message)
        if qos:
            deadline = ticks_ms() + int(self.timeout * 1000)
            while ticks_diff(deadline, ticks_ms()) > 0:
                kind, body = self._read_packet()
                if kind == PUBACK and len(body) == 2 and struct.unpack("!H", body)[0] == pid:
                    return
                if kind == PINGRESP:
                    self.ping_outstanding = False
            raise MQTTError("no PUBACK for packet %d" % pid)

    def ping(self):
        """PINGREQ; the PINGRESP is consumed by poll()."""
        self._send(PINGREQ, b"")
        self.ping_outstanding = True

    def poll(self):
        """Keep the connection alive: ping when idle, read pending acks, detect a dead broker."""
        if self.sock is None:
            raise MQTTError("not connected")
        idle = ticks_diff(ticks_ms(), self.last_io)
        if self.ping_outstanding and idle > self.keepalive * 1000:
            self.close()
            raise MQTTError("broker did not answer PINGREQ")
        if not self.ping_outstanding and idle > self.keepalive * 500:
            self.ping()
        while self._readable():
            kind, _ = self._read_packet()
            if kind == PINGRESP:
                self.ping_outstanding = False

    def disconnect(self):
        """Polite DISCONNECT (the last will is then not sent) and close."""
        if self.sock is not None:
            try:
                self._send(DISCONNECT, b"")
            except MQTTError:
                pass
        self.close()

    def close(self):
        """Drop the socket without DISCONNECT (the broker sends the last will)."""
        for sock in (self.sock, self._raw):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.sock = self._raw = None
        self._rbuf = b""

    # --- wire helpers -------------------------------------------------------------------------

    def _handshake(self, sock):
        """Wrap the connected TCP socket in TLS; the handshake verifies the broker's certificate."""
        ssl = self._ssl
        try:
            return self._ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except Exception as exc:  # noqa: BLE001 - every TLS failure becomes one MQTTError line
            try:
                sock.close()
            except OSError:
                pass
            self._raw = None
            where = "MQTT broker %s:%d" % (self.host, self.port)
            if (IS_MICROPYTHON and isinstance(exc, ValueError)) or \
                    (not IS_MICROPYTHON and isinstance(exc, ssl.SSLCertVerificationError)):
                # Mbed TLS reports a failed verification as ValueError("\n<reason>\n")
                raise MQTTError("TLS certificate of %s is not trusted: %s (checked against %s, name %s)"
                                % (where, _reason(exc), self._trust, self.server_hostname))
            if isinstance(exc, (OSError, ValueError)):
                raise MQTTError("TLS handshake with %s failed (%s); is it a TLS port?" % (where, _reason(exc)))
            raise

    def _write(self, data):
        if IS_MICROPYTHON:  # stream write: the 1.28 socket has no sendall, its SSL socket may lack it
            view = memoryview(data)
            while len(view):
                n = self.sock.write(view)
                if not n:
                    raise OSError("write timed out")
                view = view[n:]
        else:
            self.sock.sendall(data)

    def _send(self, header, body):
        if self.sock is None:
            raise MQTTError("not connected")
        try:
            self._write(bytes((header,)) + _encode_length(len(body)) + body)
        except OSError as exc:
            self.close()
            raise MQTTError("connection to broker lost (%s)" % _reason(exc))
        self.last_io = ticks_ms()

    def _recv_exact(self, n):
        data = self._rbuf[:n]
        self._rbuf = self._rbuf[n:]
        while len(data) < n:
            try:
                if IS_MICROPYTHON:
                    chunk = self.sock.read(n - len(data))
                    if chunk is None:
                        raise OSError("read timed out")
                else:
                    chunk = self.sock.recv(n - len(data))
            except OSError as exc:
                self.close()
                raise MQTTError("connection to broker lost (%s)" % _reason(exc))
            if not chunk:
                self.close()
                raise MQTTError("broker closed the connection")
            data += chunk
        return data

    def _read_packet(self):
        """Read one packet: (type, body). The remaining length is checked against MAX_PACKET."""
        kind = self._recv_exact(1)[0] & 0xF0
        length = 0
        for i in range(4):
            byte = self._recv_exact(1)[0]
            length |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                break
        else:
            self.close()
            raise MQTTError("malformed packet length from broker")
        if length > MAX_PACKET:
            self.close()
            raise MQTTError("packet of %d bytes from broker exceeds limit" % length)
        body = self._recv_exact(length) if length else b""
        self.last_io = ticks_ms()
        return kind, body

    def _readable(self):
        import select

        if self._rbuf:
            return True
        if self.tls and not IS_MICROPYTHON and self.sock.pending():
            return True  # decrypted bytes already buffered by OpenSSL: the socket may not poll readable
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        events = poller.poll(0)
        for event in events:
            if event[1] & (select.POLLHUP | select.POLLERR):
                self.close()
                raise MQTTError("connection to broker lost")
        if not events or not self.tls:
            return bool(events)
        return self._tls_peek()

    def _tls_peek(self):
        """The TCP socket is readable, but on TLS that may be a record without application data (a TLS
        1.3 session ticket): read one byte without blocking, keep it for _recv_exact."""
        sock = self.sock
        try:
            sock.setblocking(False)
            try:
                byte = sock.read(1) if IS_MICROPYTHON else sock.recv(1)
            finally:
                # MicroPython's SSL socket has no settimeout: set it on the TCP socket under it
                (sock if hasattr(sock, "settimeout") else self._raw).settimeout(self.timeout)
        except OSError as exc:
            import errno

            if (not IS_MICROPYTHON and isinstance(exc, self._ssl.SSLWantReadError)) or \
                    (exc.args and exc.args[0] == errno.EAGAIN):
                return False
            self.close()
            raise MQTTError("connection to broker lost (%s)" % _reason(exc))
        if byte is None:  # MicroPython: nothing to read yet
            return False
        if not byte:
            self.close()
            raise MQTTError("broker closed the connection")
        self._rbuf += byte
        return True


class ReconnectingPublisher:
    """An MQTTClient that reconnects with exponential backoff and re-runs `on_connect` each time
    (to re-publish availability, discovery and retained state after a broker restart)."""

    def __init__(self, client, on_connect=None, min_backoff_ms=500, max_backoff_ms=30000, log=None):
        self.client = client
        self.on_connect = on_connect
        self.min_backoff_ms = min_backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.backoff_ms = min_backoff_ms
        self.next_try = ticks_ms()
        self.connected = False
        self.connects = 0
        self.log = log

    def ensure(self):
        """Connect if needed and the backoff allows; returns True when connected."""
        if self.connected:
            return True
        if ticks_diff(ticks_ms(), self.next_try) < 0:
            return False
        try:
            self.client.connect()
            self.connected = True
            self.connects += 1
            self.backoff_ms = self.min_backoff_ms
            if self.on_connect:
                self.on_connect(self)
            if self.log:
                self.log("mqtt connected to %s" % self.client.url)
            return True
        except MQTTError as exc:
            self._failed(exc)
            return False

    def publish(self, topic, message, retain=False, qos=0):
        """Publish if connected; returns False (and schedules a reconnect) on failure."""
        if not self.ensure():
            return False
        try:
            self.client.publish(topic, message, retain, qos)
            return True
        except MQTTError as exc:
            self._failed(exc)
            return False

    def poll(self):
        """Keepalive and broker-death detection; reconnects when due."""
        if not self.ensure():
            return
        try:
            self.client.poll()
        except MQTTError as exc:
            self._failed(exc)

    def _failed(self, exc):
        was = self.connected
        self.connected = False
        self.client.close()
        self.next_try = ticks_ms() + self.backoff_ms
        if self.log and (was or self.backoff_ms == self.min_backoff_ms):
            self.log("mqtt: %s; retrying in %d ms" % (exc, self.backoff_ms))
        self.backoff_ms = min(self.backoff_ms * 2, self.max_backoff_ms)
