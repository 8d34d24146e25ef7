"""A small MQTT 3.1.1 client for MicroPython and CPython: CONNECT with last will, PUBLISH QoS 0/1
with retain, PINGREQ keepalive, and a reconnecting wrapper with exponential backoff.

Each method is one protocol action and builds its packet by hand (like micropython-lib's
umqtt.simple). Only what a state sensor needs: it publishes and never subscribes.
"""

import socket
import struct

from camlytics.edge.compat import ticks_diff, ticks_ms

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


class MQTTClient:
    """One connection to a broker. Not thread-safe; call `poll()` regularly for the keepalive."""

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30, timeout=5.0):
        self.client_id = client_id
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password
        self.keepalive = int(keepalive)
        self.timeout = timeout
        self.sock = None
        self.will = None
        self.packet_id = 0
        self.last_io = 0
        self.ping_outstanding = False

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
        kind, body = self._read_packet()
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
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # --- wire helpers -------------------------------------------------------------------------

    def _send(self, header, body):
        if self.sock is None:
            raise MQTTError("not connected")
        try:
            self.sock.sendall(bytes((header,)) + _encode_length(len(body)) + body)
        except OSError as exc:
            self.close()
            raise MQTTError("connection to broker lost (%s)" % exc)
        self.last_io = ticks_ms()

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except OSError as exc:
                self.close()
                raise MQTTError("connection to broker lost (%s)" % exc)
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

        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        events = poller.poll(0)
        for event in events:
            if event[1] & (select.POLLHUP | select.POLLERR):
                self.close()
                raise MQTTError("connection to broker lost")
        return bool(events)


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
                self.log("mqtt connected to %s:%d" % (self.client.host, self.client.port))
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
