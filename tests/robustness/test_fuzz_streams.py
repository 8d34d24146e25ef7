"""Parsers of what comes over the network, fed hostile bytes through real loopback sockets where they read
sockets: the MJPEG multipart parser (SourceError only), the edge HTTP client's response parser (HTTPError
subclasses only) and the edge MQTT client's packet reader (MQTTError only)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from camlytics.edge import http as edge_http
from camlytics.edge.mqtt import MQTTClient, MQTTError
from camlytics.errors import SourceError
from camlytics.sources.mjpeg import MultipartReader, boundary_from_content_type
from tests.robustness.conftest import budget
from tests.robustness.servers import ScriptedServer, read_http_request, read_mqtt_packet

# --- MJPEG: multipart/x-mixed-replace -------------------------------------------------------------------

BOUNDARY = "myboundary"
PARTS = [b"\xff\xd8" + bytes(range(256)) * 2 + b"\xff\xd9", b"\xff\xd8--myboundary\r\n\xff\xd9", b"\xff\xd8\xff\xd9"]


def stream(parts: list[bytes], lengths: list[bool]) -> bytes:
    out = b""
    for body, with_length in zip(parts, lengths):
        head = "Content-Type: image/jpeg\r\n" + (f"Content-Length: {len(body)}\r\n" if with_length else "")
        out += f"--{BOUNDARY}\r\n{head}\r\n".encode() + body + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@budget(150)
@given(lengths=st.lists(st.booleans(), min_size=3, max_size=3), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_a_valid_stream_gives_its_parts_however_it_is_chunked(lengths, cuts):
    data = stream(PARTS, lengths)
    assert [body for _, body in MultipartReader(chunked(data, cuts), BOUNDARY)] == PARTS


@budget(300)
@given(lengths=st.lists(st.booleans(), min_size=3, max_size=3), cuts=st.lists(st.integers(0, 10_000), max_size=8),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=12), st.integers(0, 8)), max_size=5),
       cut_at=st.none() | st.integers(0, 10_000), max_part=st.sampled_from([64, 4096, 16 << 20]))
def test_a_mangled_stream_gives_parts_or_a_source_error(lengths, cuts, edits, cut_at, max_part):
    data = bytearray(stream(PARTS, lengths))
    for pos, insert, drop in edits:  # replace `drop` bytes at pos with `insert` (lengths, headers, boundaries)
        pos %= len(data) + 1
        data[pos:pos + drop] = insert
    if cut_at is not None:
        data = data[: cut_at % (len(data) + 1)]
    try:
        for headers, body in MultipartReader(chunked(bytes(data), cuts), BOUNDARY, max_part=max_part):
            assert isinstance(headers, dict) and isinstance(body, bytes) and len(body) <= max(max_part, len(data))
    except SourceError:
        pass


@budget(150)
@given(text=st.text(max_size=80) | st.sampled_from(["multipart/x-mixed-replace; boundary=", "multipart/x; boundary=\"\"",
                                                      "multipart/x-mixed-replace;boundary=--", "MULTIPART/X; BOUNDARY=a"]))
def test_content_types_give_a_boundary_or_a_source_error(text):
    try:
        boundary = boundary_from_content_type(text)
    except SourceError:
        return
    assert isinstance(boundary, str)


# --- the edge HTTP client (camera snapshots, VAPIX, webhooks) --------------------------------------------

STATUS_LINES = [b"HTTP/1.1 200 OK", b"HTTP/1.0 401 Unauthorized", b"HTTP/1.1 204 No Content", b"HTTP/1.1 99 x",
                b"HTTP/2 200", b"HTTP/1.1 abc", b"ICY 200 OK", b"HTTP/1.1 200", b"\xff\xfe"]
HEADERS = [b"Content-Length: 5", b"Content-Length: 999999999999", b"Content-Length: -1", b"Content-Length: 0x10",
           b"Transfer-Encoding: chunked", b"WWW-Authenticate: Digest realm=\"a\", nonce=\"b\", qop=\"auth\"",
           b"WWW-Authenticate: Digest realm=a, nonce=, algorithm=SHA-999", b"WWW-Authenticate: Basic realm=\"x\"",
           b"WWW-Authenticate: Digest", b"WWW-Authenticate: Digest ,,,=,\"", b"Content-Type: image/jpeg",
           b"no colon here", b"X: \xff\xfe", b": empty name"]
BODIES = [b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"ffffffffffff\r\n", b"z\r\n", b"3\r\nabcXY0\r\n\r\n",
          b"0\r\nTrailer: x\r\n\r\n", b"\xff\xd8" + bytes(100)]


@st.composite
def responses(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    lines = [draw(st.sampled_from(STATUS_LINES) | st.binary(max_size=20))]
    lines += draw(st.lists(st.sampled_from(HEADERS) | st.binary(max_size=30), max_size=5))
    sep = draw(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]))
    raw = sep.join(lines) + b"\r\n\r\n" + draw(st.sampled_from(BODIES) | st.binary(max_size=60))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def test_http_responses_parse_or_raise_http_errors():
    """Hostile responses over a real socket: a Response or an edge HTTPError, nothing else, never a hang."""
    with ScriptedServer(read_http_request) as server:
        client = edge_http.Client("root", "pass", timeout=2.0, max_body=1 << 16)
        url = "http://127.0.0.1:%d/axis-cgi/jpg/image.cgi" % server.port

        @budget(250)
        @given(raw=responses())
        def check(raw):
            server.payload = raw
            try:
                response = client.request("GET", url)
            except edge_http.HTTPError:
                return
            assert isinstance(response.status, int) and isinstance(response.body, bytes)
            assert len(response.body) <= 1 << 16

        check()


# --- the edge MQTT client (state and availability to a broker) ---------------------------------------------

CONNACK_OK = b"\x20\x02\x00\x00"
PACKETS = [CONNACK_OK, b"\x20\x02\x00\x05", b"\x20\x03\x00\x00\x00", b"\xd0\x00", b"\x40\x02\x00\x01", b"\x40\x02\xff\xff",
           b"\x30\x05\x00\x01ab", b"\xff\xff\xff\xff\xff", b"\x90\x80\x80\x80\x01", b"\x30\xff\xff\xff\x7f", b"\x00"]


def test_mqtt_packets_from_a_hostile_broker_raise_mqtt_errors():
    """A broker answering anything: connect, publish (QoS 1: reads the PUBACK) and poll raise MQTTError only."""
    with ScriptedServer(read_mqtt_packet) as server:

        @budget(250)
        @given(packets=st.lists(st.sampled_from(PACKETS) | st.binary(max_size=12), max_size=4),
               first_ok=st.booleans())
        def check(packets, first_ok):
            server.payload = (CONNACK_OK if first_ok else b"") + b"".join(packets)
            client = MQTTClient("fuzz", "127.0.0.1", server.port, keepalive=1, timeout=1.0)
            try:
                client.connect()
                client.publish("camlytics/fuzz/state", "open", qos=1)
                client.poll()
            except MQTTError:
                pass
            finally:
                client.close()

        check()
