"""The annotation server refuses what a hostile or clumsy client sends with a 4xx (never a 500), cuts clients
that send too slowly, bounds its connections, and ends cleanly (exit 128+N) on SIGINT, SIGTERM and SIGHUP."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from camlytics.store import Dataset
from tests.annotate.helpers import serve
from tests.sim.test_camera_hardening import read_until_closed

TIMEOUT = 10
HUGE = 2**63


# -- requests the API refuses (in-process) ----------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/records/{}", "/api/image/{}"])
@pytest.mark.parametrize("rid, status", [(HUGE, 404), (2**64 + 5, 404), (10**29, 404), (-1, 404), ("abc", 404),
                                         ("1.5", 404), ("9" * 200, 404), ("%ff", 404), ("1e3", 404)])
def test_record_ids_out_of_range_or_not_numbers_get_a_json_4xx(client, path, rid, status):
    resp = client.get(path.format(rid))
    assert resp.status_code == status, resp.text
    assert "error" in resp.json()


@pytest.mark.parametrize("body", [{"id": HUGE, "label": "open"}, {"id": -1, "label": "open"},
                                  {"ids": [1, HUGE], "label": "open"}, {"id": 1.0, "label": "open"},
                                  {"id": "1", "label": "open"}, {"id": 1, "label": 5}, {"id": 1},
                                  {"ids": "1,2", "label": "open"}, {"ids": [], "label": "open"}])
def test_label_with_a_bad_id_or_label_is_400(client, body):
    resp = client.post("/api/label", json=body)
    assert resp.status_code == 400, resp.text
    assert "error" in resp.json()


def test_a_deeply_nested_json_body_is_400(client):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        resp = client.post("/api/label", content=body, headers={"content-type": "application/json"})
        assert resp.status_code in (400, 413), resp.text
        assert "error" in resp.json()


def test_roi_must_lie_inside_the_datasets_frames(client):
    # the test frames are 320x180
    for roi in ([0, 0, 65536, 65536], [0, 0, 321, 180], [0, 0, 320, 181]):
        resp = client.post("/api/roi", json={"roi": roi})
        assert resp.status_code == 400 and "320x180" in resp.json()["error"], resp.text
    assert client.post("/api/roi", json={"roi": [0, 0, 320, 180]}).json()["roi"] == [0, 0, 320, 180]


def test_unknown_routes_and_wrong_methods_answer_json(client):
    assert client.get("/api/nothing").status_code == 404 and "error" in client.get("/api/nothing").json()
    resp = client.get("/api/label")
    assert resp.status_code == 405 and "error" in resp.json() and "POST" in resp.headers["allow"]


# -- raw malformed requests to the real server ------------------------------------------------------
def raw_exchange(url: str, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send `data` on a fresh connection, half-close, and read the answer until the server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed while we were still sending
            pass
        answer = read_until_closed(sock)
    return answer


def status_of(answer: bytes) -> int | None:
    """The status code of an HTTP answer, None if there is none."""
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


MALFORMED = {
    "bad request line": b"GARBAGE\r\n\r\n",
    "no version": b"GET /api/state\r\nHost: 127.0.0.1\r\n\r\n",
    "bad version": b"GET /api/state HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    "binary request line": b"\x00\xff\xfe\x01 / HTTP/1.1\r\n\r\n",
    "huge header": b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    "many headers": b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n",
    "header without colon": b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nnocolon\r\n\r\n",
    "bad content-length": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: abc\r\n\r\n{}",
    "negative content-length": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"Content-Length: -5\r\n\r\n{}",
    "two content-lengths": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "huge content-length": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 99999999999999999999\r\n\r\n{}",
    "short body": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 50\r\n\r\n{}",
    "non-utf8 body": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
    "non-utf8 path": b"GET /api/records/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "percent-encoded junk": b"GET /api/records/%ff%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "non-utf8 query": b"GET /api/state?order=%ff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "wrong method": b"DELETE /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "unknown method": b"BREW /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "no host": b"GET /api/state HTTP/1.1\r\n\r\n",
    "foreign host": b"GET /api/state HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    "form post": b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 3\r\n\r\na=b",
}
JSON_BODIES = {
    "missing fields": {},
    "wrong types": {"id": [1], "label": {"a": 1}},
    "null id": {"id": None, "label": "open"},
    "float id": {"id": 1e308, "label": "open"},
    "huge id": {"id": 10**30, "label": "open"},
    "bool id": {"id": True, "label": "open"},
    "label not a class": {"id": 1, "label": "ajar"},
}


def test_a_battery_of_malformed_requests_gets_4xx_never_5xx(dataset_dir):
    with serve(dataset_dir) as server:
        for name, data in MALFORMED.items():
            status = status_of(raw_exchange(server.url, data))
            assert status is None or 400 <= status < 500, (name, status)  # None: the server just closed
        cases = [(path, name, body) for name, body in JSON_BODIES.items() for path in ("api/label", "api/roi")]
        cases += [("api/undo", f"count {c!r}", {"count": c}) for c in (0, -1, "1", 10**30, True, None, [1], 1.5)]
        for path, name, body in cases:
            if True:
                resp = httpx.post(server.url + path, json=body, timeout=TIMEOUT)
                assert 400 <= resp.status_code < 500 and "error" in resp.json(), (name, path, resp.text)
        for bad in (b"[" * 100_000, b"\xff" * 10, b"1" * 300_000, b'{"roi": [0, 0, 1e999, 5]}', b'"just a string"'):
            resp = httpx.post(server.url + "api/roi", content=bad, headers={"content-type": "application/json"},
                              timeout=TIMEOUT)
            assert 400 <= resp.status_code < 500, (bad[:20], resp.text)
        assert httpx.get(server.url + "api/state", timeout=TIMEOUT).status_code == 200  # still serving
    assert "Traceback" not in server.output() and "500" not in server.output(), server.output()


# -- slow clients and many connections ---------------------------------------------------------------
def test_a_client_sending_one_header_line_at_a_time_is_cut(dataset_dir):
    with serve(dataset_dir, "--header-timeout", "1") as server:
        parts = urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            answer = b""
            for i in range(100):  # one line every 0.3 s would hold the connection for 30 s
                try:
                    sock.sendall(b"X-Slow-%d: yes\r\n" % i)
                except OSError:
                    break
                sock.settimeout(0.3)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                except ConnectionResetError:  # cut while we were still sending: the 408 may be lost with it
                    break
                answer += chunk
                if not chunk:
                    break
            else:
                pytest.fail("the server kept reading headers for 30 s")
        assert answer == b"" or status_of(answer) == 408, answer
        assert httpx.get(server.url + "api/state", timeout=TIMEOUT).status_code == 200


def test_a_client_that_never_finishes_its_body_is_cut(dataset_dir):
    with serve(dataset_dir, "--body-timeout", "1") as server:
        parts = urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT * 3) as sock:
            sock.sendall(b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"id\": 1, ")
            answer = b""
            while chunk := sock.recv(4096):  # a TimeoutError here (30 s) fails the test
                answer += chunk
        assert answer == b"" or 400 <= status_of(answer) < 500, answer
        with Dataset.open(dataset_dir) as ds:
            assert ds.get(1).label is None


def open_half_requests(url: str, count: int) -> list[socket.socket]:
    """`count` connections that each sent half a request's headers."""
    parts = urlsplit(url)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
        sock.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    return socks


def test_the_server_answers_a_good_client_while_200_slow_ones_are_open(dataset_dir):
    with serve(dataset_dir) as server:
        socks = open_half_requests(server.url, 200)
        try:
            resp = httpx.get(server.url + "api/state", timeout=TIMEOUT)
            assert resp.status_code == 200 and len(resp.json()["records"]) == 30
            resp = httpx.post(server.url + "api/label", json={"id": 3, "label": "open"}, timeout=TIMEOUT)
            assert resp.status_code == 200
        finally:
            for sock in socks:
                sock.close()


def test_connections_over_the_bound_get_503(dataset_dir):
    with serve(dataset_dir, "--max-connections", "20") as server:
        socks = open_half_requests(server.url, 20)
        try:
            parts = urlsplit(server.url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
            conn.request("GET", "/api/state")
            resp = conn.getresponse()
            assert resp.status == 503 and "too many connections" in json.loads(resp.read())["error"]
            conn.close()
        finally:
            for sock in socks:
                sock.close()
        deadline = time.monotonic() + TIMEOUT  # the server notices the closed sockets shortly
        while time.monotonic() < deadline:
            if httpx.get(server.url + "api/state", timeout=TIMEOUT).status_code == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server still refuses connections after the slow ones closed")


# -- signals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_annotate_cleanly_with_exit_128_plus_n(dataset_dir, sig):
    with serve(dataset_dir) as server:
        assert httpx.post(server.url + "api/label", json={"id": 4, "label": "open"}, timeout=TIMEOUT).status_code == 200
        slow = open_half_requests(server.url, 3)  # open connections must not hold the shutdown up for long
        server.proc.send_signal(sig)
        assert server.proc.wait(30) == 128 + sig
        for sock in slow:
            sock.close()
    out = server.output()
    assert "Traceback" not in out and f"stopped by {signal.Signals(sig).name}" in out, out
    with Dataset.open(dataset_dir) as ds:
        assert ds.integrity_check() == "ok" and ds.get(4).label == "open"
    assert not list(dataset_dir.rglob("*.tmp")) and not list(dataset_dir.rglob("*-journal"))
