"""The simulated Axis camera answers the VAPIX calls camlytics uses the way a camera does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from camlytics.sim import camera as camera_module
from camlytics.sim.camera import Response, SimulatedCamera, parse_auth_params, parse_clock
from camlytics.sources.mjpeg import MultipartReader, boundary_from_content_type

USER, PASSWORD = "root", "s3cret-pass"
HTTP = httpx.Client(timeout=60)  # one client: building one per request costs ~0.1 s (TLS context)


@pytest.fixture
def authcam():
    """A simulated camera that requires Digest authentication."""
    with SimulatedCamera(preset="office", seed=0, auth=(USER, PASSWORD)) as cam:
        yield cam


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def vapix_json(cam, path: str, payload, method: str = "POST", auth=None) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = HTTP.request(method, cam.url + path, content=body, auth=auth)
    assert r.status_code == 200  # VAPIX JSON APIs report errors inside a 200 answer
    return r.json()


# -- images -----------------------------------------------------------------------------------------

def test_image_cgi_serves_a_jpeg_of_the_default_resolution(simcam):
    r = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert int(r.headers["content-length"]) == len(r.content)
    assert jpeg_size(r.content) == (640, 360)


def test_image_cgi_renders_the_requested_resolution(simcam):
    r = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi", params={"resolution": "320x180", "camera": "1"})
    assert r.status_code == 200
    assert jpeg_size(r.content) == (320, 180)


def test_unsupported_resolution_and_camera_get_the_cameras_text_error(simcam):
    r = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi", params={"resolution": "123x45"})
    assert r.headers["content-type"].startswith("text/html")
    assert re.search(r"<!--.*123x45.*-->", r.text)
    r = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi", params={"camera": "2"})
    assert "<!--Camera 2 not available.-->" in r.text


def test_compression_trades_quality_for_size(simcam):
    sizes = [len(HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi",
                           params={"resolution": "320x180", "compression": c}).content) for c in (0, 90)]
    assert sizes[0] > sizes[1] * 1.5
    r = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi", params={"compression": "101"})
    assert "compression" in r.text and r.headers["content-type"].startswith("text/html")


def test_imagesize_cgi_reports_width_and_height(simcam):
    r = HTTP.get(simcam.url + "/axis-cgi/imagesize.cgi", params={"resolution": "480x270"})
    assert "image width = 480" in r.text and "image height = 270" in r.text


def test_mjpeg_stream_is_multipart_with_a_part_per_frame(simcam):
    with HTTP.stream("GET", simcam.url + "/axis-cgi/mjpg/video.cgi",
                      params={"resolution": "320x180", "fps": "20", "nbrofframes": "3"}) as r:
        assert r.status_code == 200
        boundary = boundary_from_content_type(r.headers["content-type"])
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        raw = r.read()
    assert raw.startswith(f"--{boundary}\r\n".encode())
    parts = list(MultipartReader([raw], boundary))
    assert len(parts) == 3
    for headers, body in parts:
        assert headers["content-type"] == "image/jpeg"
        assert int(headers["content-length"]) == len(body)
        assert jpeg_size(body) == (320, 180)


def test_mjpeg_duration_ends_the_stream_and_the_boundary_is_configurable():
    with SimulatedCamera(auth=None, mjpeg_boundary="axis-Boundary.42") as cam:
        with HTTP.stream("GET", cam.url + "/axis-cgi/mjpg/video.cgi",
                          params={"resolution": "320x180", "fps": "10", "duration": "0.35"}) as r:
            assert "boundary=axis-Boundary.42" in r.headers["content-type"]
            raw = r.read()
    parts = list(MultipartReader([raw], "axis-Boundary.42"))
    assert 1 <= len(parts) <= 5


# -- JSON APIs and parameters -----------------------------------------------------------------------

def test_basicdeviceinfo_returns_all_14_properties(simcam):
    answer = vapix_json(simcam, "/axis-cgi/basicdeviceinfo.cgi",
                        {"apiVersion": "1.1", "context": "t", "method": "getAllProperties"})
    props = answer["data"]["propertyList"]
    assert set(props) == {"Architecture", "Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr",
                          "ProdShortName", "ProdType", "ProdVariant", "SerialNumber", "Soc", "SocSerialNumber",
                          "Version", "WebURL"}
    assert props["SerialNumber"] == simcam.serial and props["Brand"] == "AXIS"
    assert answer["context"] == "t" and answer["method"] == "getAllProperties"
    some = vapix_json(simcam, "/axis-cgi/basicdeviceinfo.cgi",
                      {"apiVersion": "1.0", "method": "getProperties", "params": {"propertyList": ["ProdNbr"]}})
    assert some["data"]["propertyList"] == {"ProdNbr": props["ProdNbr"]}


@pytest.mark.parametrize("payload, method, code", [
    (b"{not json", "POST", 4000),
    ({"apiVersion": "1.0", "method": "getEverything"}, "POST", 2004),
    ({"apiVersion": "2.0", "method": "getAllProperties"}, "POST", 2003),
    ({"method": "getAllProperties"}, "POST", 4002),
    (b"", "GET", 2002),
])
def test_basicdeviceinfo_errors_are_json_error_objects(simcam, payload, method, code):
    answer = vapix_json(simcam, "/axis-cgi/basicdeviceinfo.cgi", payload, method)
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert "data" not in answer


def test_apidiscovery_lists_the_apis(simcam):
    answer = vapix_json(simcam, "/axis-cgi/apidiscovery.cgi", {"apiVersion": "1.0", "method": "getApiList"})
    ids = {api["id"]: api["version"] for api in answer["data"]["apiList"]}
    assert ids["basic-device-info"].startswith("1.") and "api-discovery" in ids


def test_param_list_keeps_the_root_prefix(simcam):
    r = HTTP.get(simcam.url + "/axis-cgi/param.cgi",
                  params={"action": "list", "group": "Properties.Image.Resolution"})
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "root.Properties.Image.Resolution=1280x720,960x540,640x360,480x270,320x180\n"
    brand = HTTP.get(simcam.url + "/axis-cgi/param.cgi", params={"action": "list", "group": "root.Brand"}).text
    assert "root.Brand.Brand=AXIS\n" in brand and "root.Brand.ProdNbr=" in brand


def test_param_post_reads_a_form_body_sent_as_text_plain(simcam):
    r = HTTP.post(simcam.url + "/axis-cgi/param.cgi", content=b"action=list&group=root.Properties,Nope",
                   headers={"Content-Type": "text/plain"})
    lines = r.text.splitlines()
    assert "root.Properties.System.SerialNumber=" + simcam.serial in lines
    assert lines[-1] == "# Error: Error -1 getting param in group 'Nope'"


def test_param_update_changes_writable_parameters_only(simcam):
    ok = HTTP.get(simcam.url + "/axis-cgi/param.cgi",
                   params={"action": "update", "Image.I0.Appearance.Resolution": "320x180"})
    assert ok.text.strip() == "OK"
    assert jpeg_size(HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi").content) == (320, 180)
    for name, value in [("Brand.ProdNbr", "X"), ("Image.I0.Appearance.Resolution", "1x1"), ("No.Such", "1")]:
        bad = HTTP.get(simcam.url + "/axis-cgi/param.cgi", params={"action": "update", name: value})
        assert bad.text.startswith("# Error") and name in bad.text


# -- virtual inputs ---------------------------------------------------------------------------------

def vi(cam, action: str, **params) -> str:
    return HTTP.get(f"{cam.url}/axis-cgi/virtualinput/{action}.cgi", params=params).text


def test_virtual_input_activate_deactivate_report_state_changes(simcam):
    first = vi(simcam, "activate", schemaversion=1, port=3)
    assert 'xmlns="http://www.axis.com/vapix/http_cgi/virtualinput1"' in first
    assert "<ActivateSuccess><StateChanged>true</StateChanged></ActivateSuccess>" in first
    assert "<StateChanged>false</StateChanged>" in vi(simcam, "activate", schemaversion=1, port=3)
    assert "<DeactivateSuccess><StateChanged>true</StateChanged>" in vi(simcam, "deactivate", schemaversion=1, port=3)
    state = HTTP.get(simcam.url + "/camlytics-sim/virtualinput").json()
    assert state["ports"] == {"3": False}
    assert [e["action"] for e in state["log"]] == ["activate", "activate", "deactivate"]


@pytest.mark.parametrize("params, code", [
    ({"schemaversion": 1}, 10),
    ({"port": 1}, 10),
    ({"schemaversion": 1, "port": 65}, 20),
    ({"schemaversion": 2, "port": 1}, 30),
    ({"schemaversion": 1, "port": 1, "duration": "soon"}, 50),
])
def test_virtual_input_errors_carry_the_camera_error_codes(simcam, params, code):
    assert f"<ErrorCode>{code}</ErrorCode>" in vi(simcam, "activate", **params)


def test_virtual_input_duration_deactivates_by_itself(simcam):
    vi(simcam, "activate", schemaversion=1, port=1, duration=0.2)
    deadline = time.monotonic() + 10
    while HTTP.get(simcam.url + "/camlytics-sim/virtualinput").json()["ports"]["1"]:
        assert time.monotonic() < deadline, "virtual input 1 never expired"
        time.sleep(0.05)


# -- authentication ---------------------------------------------------------------------------------

def test_digest_challenge_names_the_axis_realm(authcam):
    r = HTTP.get(authcam.url + "/axis-cgi/jpg/image.cgi")
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Digest ")
    params = parse_auth_params(challenge[7:])
    assert params["realm"] == f"AXIS_{authcam.serial}"
    assert params["qop"] == "auth" and params["algorithm"] == "MD5" and params["nonce"]


def test_digest_accepts_the_right_password_only(authcam):
    good = HTTP.get(authcam.url + "/axis-cgi/jpg/image.cgi", auth=httpx.DigestAuth(USER, PASSWORD))
    assert good.status_code == 200 and good.content[:2] == b"\xff\xd8"
    for user, password in [(USER, "wrong"), ("admin", PASSWORD)]:
        bad = HTTP.get(authcam.url + "/axis-cgi/jpg/image.cgi", auth=httpx.DigestAuth(user, password))
        assert bad.status_code == 401
    basic = HTTP.get(authcam.url + "/axis-cgi/jpg/image.cgi", auth=httpx.BasicAuth(USER, PASSWORD))
    assert basic.status_code == 401  # Basic is off unless basic=True


def digest_header(challenge: str, method: str, uri: str, nc: str = "00000001", password: str = PASSWORD) -> str:
    p = parse_auth_params(challenge[7:])
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{USER}:{p['realm']}:{password}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{p['nonce']}:{nc}:abcdef:auth:{ha2}")
    return (f'Digest username="{USER}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{response}", qop=auth, nc={nc}, cnonce="abcdef", algorithm=MD5')


def test_digest_refuses_replays_and_expired_nonces(authcam, monkeypatch):
    uri = "/axis-cgi/param.cgi?action=list&group=Brand.Brand"
    challenge = HTTP.get(authcam.url + uri).headers["www-authenticate"]
    header = digest_header(challenge, "GET", uri)
    assert HTTP.get(authcam.url + uri, headers={"Authorization": header}).status_code == 200
    replay = HTTP.get(authcam.url + uri, headers={"Authorization": header})
    assert replay.status_code == 401 and "stale=TRUE" in replay.headers["www-authenticate"]
    other_uri = HTTP.get(authcam.url + "/axis-cgi/jpg/image.cgi",
                          headers={"Authorization": digest_header(challenge, "GET", uri, nc="00000002")})
    assert other_uri.status_code == 401  # the digest covers the request URI
    monkeypatch.setattr(camera_module, "NONCE_LIFETIME", -1.0)
    expired = HTTP.get(authcam.url + uri, headers={"Authorization": digest_header(challenge, "GET", uri, nc="3")})
    assert expired.status_code == 401 and "stale=TRUE" in expired.headers["www-authenticate"]


def test_basic_auth_when_enabled_and_credentials_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with SimulatedCamera(auth=(USER, PASSWORD), basic=True) as cam:
        r = HTTP.get(cam.url + "/axis-cgi/jpg/image.cgi", params={"resolution": "320x180"},
                      auth=httpx.BasicAuth(USER, PASSWORD))
        assert r.status_code == 200
        challenges = HTTP.get(cam.url + "/axis-cgi/jpg/image.cgi").headers.get_list("www-authenticate")
        assert [c.split()[0] for c in challenges] == ["Digest", "Basic"]
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    server_log = " ".join(rec.getMessage() for rec in caplog.records if rec.name == "camlytics.sim.camera")
    assert "/axis-cgi/jpg/image.cgi" in server_log  # request lines are logged...
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert PASSWORD not in logged and token not in logged  # ...credentials never


def test_axis_library_v60_initializes_against_the_simulator(authcam):
    from axis.device import AxisDevice
    from axis.models.configuration import Configuration

    async def connect() -> tuple[str, str, str]:
        async with httpx.AsyncClient() as session:
            device = AxisDevice(Configuration(session, "127.0.0.1", port=authcam.port,
                                              username=USER, password=PASSWORD))
            await device.vapix.initialize()
            vapix = device.vapix
            return vapix.serial_number, vapix.product_number, vapix.firmware_version

    serial, product, firmware = asyncio.run(connect())
    assert serial == authcam.serial
    assert product == "M3086-V"
    assert re.fullmatch(r"\d+\.\d+\.\d+", firmware)


# -- simulator endpoints ----------------------------------------------------------------------------

def test_clock_runs_at_the_requested_speed_from_the_start_time():
    with SimulatedCamera(auth=None, speed=3600, start="06:00", prewarm=False) as cam:
        first = HTTP.get(cam.url + "/camlytics-sim/clock").json()
        time.sleep(0.3)
        second = HTTP.get(cam.url + "/camlytics-sim/clock").json()
    assert 6 * 3600 <= first["t"] < second["t"]
    assert second["t"] - first["t"] >= 0.3 * 3600 * 0.9  # simulated time ran ~3600x faster
    assert first["speed"] == 3600 and first["preset"] == "office"


def test_truth_matches_the_scene_and_validates_t(simcam):
    from camlytics.sim.camera import shared_scene

    truth = HTTP.get(simcam.url + "/camlytics-sim/truth", params={"t": "30000"}).json()
    expected = shared_scene("office", 0, 640, 360).truth(30000.0)
    assert truth["state"] == expected["state"] and truth["condition"] == expected["condition"]
    assert truth["state"] in ("open", "closed")
    assert HTTP.get(simcam.url + "/camlytics-sim/truth", params={"t": "90000"}).status_code == 400
    now = HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi")
    assert json.loads(now.headers["x-camlytics-truth"])["state"] in ("open", "closed")


def test_fault_injection_fails_the_next_n_image_requests(simcam):
    assert HTTP.post(simcam.url + "/camlytics-sim/fail", params={"status": 503, "count": 2}).status_code == 200
    codes = [HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    HTTP.post(simcam.url + "/camlytics-sim/fail", params={"kind": "drop"})
    with pytest.raises(httpx.TransportError):
        HTTP.get(simcam.url + "/axis-cgi/jpg/image.cgi")
    assert HTTP.post(simcam.url + "/camlytics-sim/fail", params={"kind": "melt"}).status_code == 400


def test_unknown_paths_and_methods(simcam):
    assert HTTP.get(simcam.url + "/axis-cgi/nothing.cgi").status_code == 404
    assert HTTP.post(simcam.url + "/axis-cgi/jpg/image.cgi").status_code == 405


def test_routes_can_be_added_and_are_authenticated(authcam):
    authcam.add_route("POST", "/axis-cgi/applications/list.cgi",
                      lambda cam, req: Response.text('<reply result="ok"></reply>', content_type="text/xml"))
    url = authcam.url + "/axis-cgi/applications/list.cgi"
    assert HTTP.post(url).status_code == 401
    r = HTTP.post(url, auth=httpx.DigestAuth(USER, PASSWORD))
    assert r.status_code == 200 and r.text == '<reply result="ok"></reply>'


def test_bad_constructor_arguments_name_the_value():
    with pytest.raises(ValueError, match="nowhere"):
        SimulatedCamera(preset="nowhere")
    with pytest.raises(ValueError, match="25:00"):
        parse_clock("25:00")
    assert parse_clock("06:30") == 6.5 * 3600 and parse_clock("90") == 90.0


def test_simcam_command_serves_until_interrupted(free_port):
    env = dict(os.environ, CAMLYTICS_SIM_PASSWORD="pw-from-env")
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "simcam", "--port", str(free_port), "--speed", "60",
                             "--resolution", "320x180"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{free_port}" in banner and "pw-from-env" not in banner
        while "Ctrl-C to stop" not in proc.stdout.readline():  # the last banner line: now it serves
            assert proc.poll() is None
        r = HTTP.get(f"http://127.0.0.1:{free_port}/axis-cgi/jpg/image.cgi",
                     auth=httpx.DigestAuth("root", "pw-from-env"))
        assert r.status_code == 200 and jpeg_size(r.content) == (320, 180)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # generous: CI runs this beside training
    assert proc.returncode == 0 and "Traceback" not in err


@pytest.mark.parametrize("extra, named", [(["--basic", "only"], "--basic"), (["--password", "x"], "--password")])
def test_simcam_without_auth_refuses_auth_settings(extra, named):
    proc = subprocess.run([sys.executable, "-m", "camlytics", "simcam", "--no-auth", *extra, "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"camlytics simcam: error: --no-auth serves without authentication; leave out {named}"


def test_simcam_on_another_address_warns_that_anyone_can_install_apps(free_port):
    env = {k: v for k, v in os.environ.items() if k != "CAMLYTICS_SIM_PASSWORD"}
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "simcam", "--host", "0.0.0.0", "--port", str(free_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        warning = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert warning.startswith("camlytics simcam: warning: listening on 0.0.0.0 with the default password 'pass'")
    assert "install and run ACAP packages" in warning


def test_a_client_that_resets_its_connection_prints_nothing(capfd):
    # A client hanging up mid-request is normal; the in-process camera must not print a traceback
    # into the output of the command that runs it (it did, now and then, in `snapshot` tests).
    import socket
    import struct

    with SimulatedCamera(auth=None, prewarm=False) as cam:
        host, port = cam.url.removeprefix("http://").split(":")
        for _ in range(5):
            s = socket.create_connection((host, int(port.strip("/"))))
            s.sendall(b"GET /axis-cgi/jpg/image.cgi HTTP/1.1\r\nHost: x")  # no end of headers
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            s.close()
        time.sleep(0.5)
        assert httpx.get(cam.url + "/axis-cgi/jpg/image.cgi", timeout=30).status_code == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "Exception occurred" not in err, err
