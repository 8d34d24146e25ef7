"""The edge HTTP client against the simulated Axis camera (Digest auth) and against misbehaving
servers (stall, oversized answers), under CPython and under the real MicroPython."""

from __future__ import annotations

import json
import socket
import threading
from typing import Callable

import pytest

from camlytics.edge import http
from camlytics.sim.camera import SimulatedCamera

SNAPSHOT = "/axis-cgi/jpg/image.cgi?resolution=320x180&compression=30"
PARAMS = "/axis-cgi/param.cgi?action=list&group=Brand"


@pytest.fixture(scope="module")
def camera():
    """A simulated Axis camera that requires Digest authentication as root/pass (shared: its first
    render builds the scene, which takes a while)."""
    with SimulatedCamera(preset="office", seed=0, auth=("root", "pass")) as cam:
        yield cam


class RawServer:
    """A TCP server on a free loopback port whose connections are handled by `handler(conn)`."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.handler = handler
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def stall(conn: socket.socket) -> None:
    threading.Event().wait(3)  # accept, read the request, never answer


def huge_length(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 1000)


def endless_chunks(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(200):
        conn.sendall(b"4000\r\n" + b"y" * 0x4000 + b"\r\n")


def endless_headers(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(5000):
        conn.sendall(b"X-Filler-%d: %s\r\n" % (i, b"z" * 50))


def chunked_ok(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")


def close_delimited(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")


# --- CPython ----------------------------------------------------------------------------------

def test_digest_snapshot_needs_one_round_trip_after_the_first(camera):
    client = http.Client("root", "pass", timeout=10)
    first = client.get(camera.url + SNAPSHOT)
    assert first.status == 200 and first.body[:2] == b"\xff\xd8"
    assert client.exchanges == 2  # 401 challenge, then the answer
    for _ in range(3):
        assert client.get(camera.url + SNAPSHOT).body[:2] == b"\xff\xd8"
    assert client.exchanges == 5  # the cached challenge is reused with nc = 2, 3, 4


def test_credentials_in_the_url(camera):
    url = camera.url.replace("http://", "http://root:pass@") + PARAMS
    response = http.Client(timeout=10).get(url)
    assert b"AXIS" in response.body
    assert "pass" not in response.url


def test_wrong_password_is_a_clear_auth_error_without_the_password(camera):
    client = http.Client("root", "s3cret-wrong", timeout=10)
    response = client.request("GET", camera.url + PARAMS)
    assert response.status == 401
    with pytest.raises(http.AuthError, match="401.*user name/password") as info:
        response.raise_for_status()
    assert "s3cret-wrong" not in str(info.value)
    with pytest.raises(http.AuthError) as info:
        http.Client(timeout=10).get(camera.url.replace("http://", "http://root:s3cret-wrong@") + PARAMS)
    assert "s3cret-wrong" not in str(info.value)


def test_basic_auth_when_the_server_offers_only_basic():
    seen: list[bytes] = []
    # A server that records each request; 401 with a Basic challenge unless authorised.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    port = sock.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = sock.accept()
            with conn:
                request = conn.recv(65536)
                seen.append(request)
                if b"Authorization: Basic cm9vdDpwYXNz" in request:  # root:pass
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    conn.sendall(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="x"\r\n'
                                 b"Content-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        response = http.Client("root", "pass", timeout=5).get(f"http://127.0.0.1:{port}/x")
    finally:
        thread.join(5)
        sock.close()
    assert response.body == b"ok"
    assert len(seen) == 2 and b"Authorization" not in seen[0]


def test_404_and_503_are_clear_errors(camera):
    client = http.Client("root", "pass", timeout=10)
    with pytest.raises(http.NotFound, match="404"):
        client.get(camera.url + "/axis-cgi/no-such.cgi")
    client.post(camera.url + "/camlytics-sim/fail?status=503&count=1", b"")
    with pytest.raises(http.ServerError, match="503"):
        client.get(camera.url + SNAPSHOT)


def test_connection_refused_is_a_connect_error(free_port):
    with pytest.raises(http.ConnectError, match="refused"):
        http.Client(timeout=2).get(f"http://127.0.0.1:{free_port}/")


def test_a_stalled_server_times_out(raw_server):
    server = raw_server(stall)
    with pytest.raises(http.Timeout, match="0.5 s"):
        http.Client(timeout=0.5).get(server.url + "/")


@pytest.mark.parametrize("handler", [huge_length, endless_chunks, endless_headers])
def test_oversized_answers_are_bounded(raw_server, handler):
    server = raw_server(handler)
    with pytest.raises(http.TooLarge, match="exceed"):
        http.Client(timeout=5, max_body=1 << 20).get(server.url + "/")


def test_chunked_and_close_delimited_bodies(raw_server):
    assert http.Client(timeout=5).get(raw_server(chunked_ok).url + "/").body == b"hello world"
    assert http.Client(timeout=5).get(raw_server(close_delimited).url + "/").body == b"until the end"


@pytest.mark.parametrize("url", ["https://x/", "ftp://x/", "http://host:99999/", "http://:80/", "nonsense"])
def test_bad_urls(url):
    with pytest.raises(http.HTTPError):
        http.Client().request("GET", url)


def test_parse_url_and_redact():
    assert http.parse_url("http://us%40er:p%3Ass@cam.local:8080/a/b?c=1") == (
        "cam.local", 8080, "/a/b?c=1", "us@er", "p:ss")
    assert http.parse_url("http://[::1]/") == ("::1", 80, "/", None, None)
    assert http.redact("http://root:pass@cam/x") == "http://cam/x"


# --- MicroPython ------------------------------------------------------------------------------

MP_SCRIPT = """
import json, sys
from camlytics.edge import http
from camlytics.edge.jpeg import decode_luma
cam, stall, huge = sys.argv[1:4]
out = {}
client = http.Client("root", "pass", timeout=10)
r = client.get(cam + "%(snapshot)s")
w, h, luma = decode_luma(r.body, 8)
client.get(cam + "%(snapshot)s")
out["snapshot"] = [r.status, w, h, client.exchanges]
def error(fn):
    try:
        fn()
    except http.HTTPError as exc:
        return [type(exc).__name__, str(exc)]
    return None
out["wrong"] = error(lambda: http.Client("root", "nope", timeout=10).get(cam + "%(params)s"))
out["404"] = error(lambda: client.get(cam + "/axis-cgi/no-such.cgi"))
out["stall"] = error(lambda: http.Client(timeout=0.5).get(stall + "/"))
out["huge"] = error(lambda: http.Client(timeout=5, max_body=100000).get(huge + "/"))
print(json.dumps(out))
""" % {"snapshot": SNAPSHOT, "params": PARAMS}


def test_micropython_client(micropython, camera, raw_server):
    stalled = raw_server(stall)
    huge = raw_server(endless_chunks)
    out = json.loads(micropython(MP_SCRIPT, args=(camera.url, stalled.url, huge.url)).strip().splitlines()[-1])
    assert out["snapshot"] == [200, 40, 23, 3]
    assert out["wrong"][0] == "AuthError" and "nope" not in out["wrong"][1]
    assert out["404"][0] == "NotFound"
    assert out["stall"][0] == "Timeout"
    assert out["huge"][0] == "TooLarge"
