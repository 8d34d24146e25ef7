"""The simulated camera's HTTP server: read deadlines for headers and body, a connection bound, a listen
backlog that takes a burst of connections, and password-typed parameters never listed in clear."""

from __future__ import annotations

import concurrent.futures
import http.client
import socket

import httpx
import pytest

from camlytics.sim.camera import SimulatedCamera
from camlytics.sim.http import SECRET_MASK
from tests.sim.test_apps import APP, AUTH, log_text, package, upload, wait_for, call

TIMEOUT = 10


def get_clock(port: int) -> int:
    """One request on a fresh connection; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/camlytics-sim/clock")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def half_requests(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each sent half a request's headers."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.sendall(b"GET /camlytics-sim/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    return socks


def read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def test_300_back_to_back_connections_all_succeed():
    with SimulatedCamera(auth=None, prewarm=False) as cam:
        statuses = [get_clock(cam.port) for _ in range(300)]  # one after the other
        with concurrent.futures.ThreadPoolExecutor(300) as pool:  # and all at once (a listen backlog of 5 took 55 s)
            futures = [pool.submit(get_clock, cam.port) for _ in range(300)]
            statuses += [f.result(timeout=120) for f in futures]
    assert statuses == [200] * 600


def test_a_client_sending_one_header_line_at_a_time_is_cut():
    with SimulatedCamera(auth=None, prewarm=False, header_timeout=1) as cam:
        with socket.create_connection(("127.0.0.1", cam.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /camlytics-sim/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for i in range(100):  # a line every 0.3 s: 30 s if nothing cut it
                try:
                    sock.sendall(b"X-Slow-%d: yes\r\n" % i)
                except OSError:
                    break
                sock.settimeout(0.3)
                try:
                    if sock.recv(4096) == b"":
                        break
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    break
            else:
                pytest.fail("the camera kept reading headers for 30 s")
        assert get_clock(cam.port) == 200


def test_a_client_that_never_finishes_its_body_is_cut():
    with SimulatedCamera(auth=None, prewarm=False, body_timeout=1) as cam:
        with socket.create_connection(("127.0.0.1", cam.port), timeout=TIMEOUT * 3) as sock:
            sock.sendall(b"POST /axis-cgi/param.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
                         b"action=update&root.Image.I0.Stream.FPS=")
            assert read_until_closed(sock) == b""  # a TimeoutError (30 s) fails the test
        assert cam.params["root.Image.I0.Stream.FPS"] == "0"


def test_a_good_client_is_served_while_200_slow_ones_are_open_and_over_the_bound_get_503():
    with SimulatedCamera(auth=None, prewarm=False) as cam:
        slow = half_requests(cam.port, 200)
        try:
            assert get_clock(cam.port) == 200
        finally:
            for sock in slow:
                sock.close()
    with SimulatedCamera(auth=None, prewarm=False, max_connections=5) as cam:
        slow = half_requests(cam.port, 5)
        try:
            assert get_clock(cam.port) == 503
        finally:
            for sock in slow:
                sock.close()
        wait_for(lambda: get_clock(cam.port) == 200)  # served again once the slow ones are gone


def test_param_list_masks_password_parameters_and_the_app_still_gets_them():
    with SimulatedCamera(auth=AUTH, prewarm=False) as cam:
        assert upload(cam, package()) == "OK"
        reply = httpx.post(f"{cam.url}/axis-cgi/param.cgi", auth=httpx.DigestAuth(*AUTH),
                           data={"action": "update", f"root.{APP}.VapixPassword": "s3cret-pw",
                                 f"root.{APP}.MqttHost": "broker.lan"})
        assert reply.text.strip() == "OK"
        for group in (f"root.{APP}", f"{APP}.VapixPassword", "root"):
            listed = httpx.get(f"{cam.url}/axis-cgi/param.cgi", params={"action": "list", "group": group},
                               auth=httpx.DigestAuth(*AUTH), timeout=TIMEOUT).text
            assert "s3cret-pw" not in listed and f"root.{APP}.VapixPassword={SECRET_MASK}" in listed, listed
        assert f"root.{APP}.MqttHost=broker.lan" in listed
        assert call(cam, "control.cgi", action="start", package=APP) == "OK"
        wait_for(lambda: "args=" in log_text(cam))
        assert f"root.{APP}.VapixPassword=s3cret-pw" in log_text(cam)  # the app itself reads it
