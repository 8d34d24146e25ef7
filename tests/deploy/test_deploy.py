"""`camlytics deploy` and `camlytics apps` against the simulated camera (real HTTP, Digest auth)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from camlytics.cli import main
from camlytics.deploy.bundle import BundleOptions, build_bundle
from camlytics.deploy.vapix_apps import AppsClient, error_message
from camlytics.errors import DeployError
from tests.conftest import find_free_port, one_line_error
from tests.deploy.conftest import tar_gz


def test_deploy_installs_sets_parameters_starts_and_apps_lists_and_controls(cam, package, capsys):
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--param", "MqttNodeId=garage", "--start"]) == 0
    out = capsys.readouterr().out
    assert "installed camlytics_door" in out and "started camlytics_door" in out
    assert "pass" not in out  # no credentials printed
    assert cam.params["root.camlytics_door.MqttNodeId"] == "garage"
    assert main(["apps", "--camera", cam.admin_url]) == 0
    table = capsys.readouterr().out
    assert "camlytics_door" in table and "Running" in table and "1.0.0" in table
    with AppsClient(cam.admin_url) as client:  # the launcher's first line reaches the camera's log
        deadline = time.monotonic() + 20
        while "interpreter:" not in client.log("camlytics_door") and time.monotonic() < deadline:
            time.sleep(0.05)
    assert main(["apps", "--camera", cam.admin_url, "--log", "camlytics_door"]) == 0
    assert "interpreter:" in capsys.readouterr().out
    assert main(["apps", "--camera", cam.admin_url, "--stop", "camlytics_door"]) == 0
    with AppsClient(cam.admin_url) as client:
        assert [(a.name, a.status) for a in client.list()] == [("camlytics_door", "Stopped")]
    assert main(["apps", "--camera", cam.admin_url, "--stop", "camlytics_door"]) == 2
    one_line_error(capsys, "not running", "Error: 7")
    assert main(["apps", "--camera", cam.admin_url, "--remove", "camlytics_door"]) == 0
    assert main(["apps", "--camera", cam.admin_url]) == 0
    assert "no applications installed" in capsys.readouterr().out
    assert main(["apps", "--camera", cam.admin_url, "--start", "camlytics_door"]) == 2
    one_line_error(capsys, "not found", "Error: 4")


def test_a_package_for_another_architecture_is_refused_before_uploading(cam, model_dir, firmware_binary, tmp_path,
                                                                        capsys):
    armv7 = build_bundle(model_dir, tmp_path, BundleOptions(arch="armv7hf"))  # the simulated camera is aarch64
    assert main(["deploy", str(armv7), "--camera", cam.admin_url, "--start"]) == 2
    one_line_error(capsys, "built for armv7hf", "aarch64", "nothing uploaded", "--arch aarch64")
    with AppsClient(cam.admin_url) as client:
        assert client.list() == []


def test_an_upload_the_camera_refuses_names_its_reason(cam, tmp_path):
    bad = tmp_path / "bad.eap"
    bad.write_bytes(tar_gz([("manifest.json", b"{}", {})]))
    with AppsClient(cam.admin_url) as client, pytest.raises(DeployError, match="package is invalid.*Error: 1"):
        client.upload(bad)


def test_wrong_password_unreachable_camera_and_non_camera_each_give_one_clear_line(cam, package, capsys):
    assert main(["deploy", str(package), "--camera", cam.admin_url.replace(":pass@", ":nope@")]) == 2
    err = one_line_error(capsys, "refused the credentials")
    assert "nope" not in err
    dead = f"http://root:pass@127.0.0.1:{find_free_port()}"
    assert main(["apps", "--camera", dead]) == 2
    one_line_error(capsys, "cannot reach camera")

    class NotACamera(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotACamera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert main(["deploy", str(package), "--camera", f"http://127.0.0.1:{server.server_address[1]}"]) == 2
        one_line_error(capsys, "no /axis-cgi/basicdeviceinfo.cgi", "not an Axis camera")
    finally:
        server.shutdown()
        server.server_close()


def test_bad_local_input_is_reported_before_contacting_the_camera(cam, tmp_path, capsys):
    assert main(["deploy", str(tmp_path / "missing.eap"), "--camera", cam.admin_url]) == 2
    one_line_error(capsys, "no such package")
    junk = tmp_path / "junk.eap"
    junk.write_bytes(b"not a tar")
    assert main(["deploy", str(junk), "--camera", cam.admin_url]) == 2
    one_line_error(capsys, "not an ACAP package")
    assert main(["apps", "--camera", "ftp://camera"]) == 2
    one_line_error(capsys, "camera URL must look like")


def test_unknown_parameters_are_refused_without_echoing_values(cam, package, capsys):
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--param", "NoSuchThing=s3cret"]) == 2
    err = one_line_error(capsys, "NoSuchThing")
    assert "s3cret" not in err


@pytest.mark.parametrize("reply, expected", [
    ("OK\n", None), ("Error: 2", "signature"), ("Error: 3\n", "too large"), ("Error: 99", "Error: 99"),
    ("<html>login</html>", "unexpected camera answer"),
])
def test_camera_replies_map_to_messages(reply, expected):
    message = error_message(reply, "upload x.eap")
    assert message is None if expected is None else expected in message
