"""The simulated camera's ACAP application API: package checks, install, run, stop, respawn, remove."""

from __future__ import annotations

import json
import os
import tarfile
import time

import httpx
import pytest

from camlytics.deploy.manifest import build_manifest
from camlytics.sim.camera import SimulatedCamera
from tests.deploy.conftest import tar_gz

AUTH = ("root", "pass")
APP = "simapp"
# A stand-in app: reports what the camera gave it, then stays up until stopped.
SCRIPT = b"""#!/bin/sh
echo "vapix=$CAMLYTICS_VAPIX_URL"
echo "interpreter=$(command -v micropython)"
cat "$CAMLYTICS_PARAMS_FILE"
echo "args=$*"
exec sleep 60
"""


@pytest.fixture
def cam():
    with SimulatedCamera(auth=AUTH, prewarm=False) as camera:
        yield camera


def manifest_bytes(**overrides) -> bytes:
    options = dict(app_name=APP, friendly_name="Sim app", vendor="tests", version="1.0.0", architecture="all")
    run_mode = overrides.pop("run_mode", "respawn")
    options.update(overrides)
    return json.dumps(build_manifest(run_mode=run_mode, **options)).encode()


def package(manifest: bytes | None = None, script: bytes = SCRIPT, extra=(), skip=()) -> bytes:
    entries = [("manifest.json", manifest or manifest_bytes(), {}), ("LICENSE", b"MIT\n", {}),
               (APP, script, {"mode": 0o755}), ("html/index.html", b"<html></html>", {})]
    return tar_gz([e for e in entries if e[0] not in skip] + list(extra))


def call(cam, cgi: str, auth=AUTH, **params) -> str:
    reply = httpx.post(f"{cam.url}/axis-cgi/applications/{cgi}", params=params, auth=httpx.DigestAuth(*auth),
                       timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.text.strip()


def upload(cam, data: bytes) -> str:
    reply = httpx.post(f"{cam.url}/axis-cgi/applications/upload.cgi", auth=httpx.DigestAuth(*AUTH), timeout=30,
                       files={"packfil": ("app.eap", data, "application/octet-stream")})
    assert reply.status_code == 200, reply.text
    return reply.text.strip()


def listed(cam) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(call(cam, "list.cgi"))
    assert root.tag == "reply" and root.get("result") == "ok"
    return {a.get("Name"): a.get("Status") for a in root.iter("application")}


def state(cam) -> dict:
    return httpx.get(f"{cam.url}/camlytics-sim/apps", timeout=10).json()["apps"]


def log_text(cam, name: str = APP) -> str:
    return httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": name}, timeout=10).text


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_install_start_stop_remove_cycle(cam):
    assert upload(cam, package()) == "OK"
    assert listed(cam) == {APP: "Stopped"}
    params = httpx.get(f"{cam.url}/axis-cgi/param.cgi", params={"action": "list", "group": f"root.{APP}"},
                       auth=httpx.DigestAuth(*AUTH)).text
    assert f"root.{APP}.MqttPort=1883" in params and f"root.{APP}.MqttPrefix=camlytics" in params
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"
    assert listed(cam) == {APP: "Running"}
    log = wait_for(lambda: "args=" in log_text(cam) and log_text(cam))
    assert f"vapix={cam.url}" in log  # the app reaches VAPIX at this camera (127.0.0.12 on a real one)
    assert "interpreter=" in log and log.split("interpreter=")[1].split("\n")[0].endswith("/micropython")
    assert f"root.{APP}.MqttNodeId=door" in log
    assert call(cam, "control.cgi", action="start", package=APP) == "Error: 6"
    assert call(cam, "control.cgi", action="stop", package=APP) == "OK"
    assert listed(cam) == {APP: "Stopped"}
    assert call(cam, "control.cgi", action="stop", package=APP) == "Error: 7"
    directory = state(cam)[APP]["directory"]
    assert call(cam, "control.cgi", action="remove", package=APP) == "OK"
    assert listed(cam) == {} and not os.path.exists(directory)
    assert call(cam, "control.cgi", action="start", package=APP) == "Error: 4"


def test_parameter_updates_reach_the_app_and_survive_an_upgrade(cam):
    assert upload(cam, package()) == "OK"
    reply = httpx.post(f"{cam.url}/axis-cgi/param.cgi", auth=httpx.DigestAuth(*AUTH),
                       data={"action": "update", f"root.{APP}.MqttHost": "broker.lan"})
    assert reply.text.strip() == "OK"
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"
    assert upload(cam, package(manifest_bytes(version="1.1.0"))) == "OK"  # an upgrade stops the old version
    assert listed(cam) == {APP: "Stopped"}
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"
    wait_for(lambda: log_text(cam).count("args=") == 2)
    assert log_text(cam).rsplit("--- simcam: starting", 1)[1].count(f"root.{APP}.MqttHost=broker.lan") == 1


def test_respawn_restarts_an_app_that_exits_and_other_run_modes_do_not(cam):
    crashing = b"#!/bin/sh\necho crashing\nexit 3\n"
    assert upload(cam, package(script=crashing)) == "OK"
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"
    wait_for(lambda: log_text(cam).count("crashing") >= 2)  # started again after it exited
    assert state(cam)[APP]["restarts"] >= 1
    call(cam, "control.cgi", action="stop", package=APP)
    assert upload(cam, package(manifest_bytes(run_mode="once"), script=crashing)) == "OK"
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"
    wait_for(lambda: state(cam)[APP]["exit_code"] == 3)
    time.sleep(1.5)  # longer than the respawn pause
    assert state(cam)[APP]["restarts"] == 0 and listed(cam) == {APP: "Stopped"}


def test_stopping_the_camera_ends_its_apps_and_deletes_the_sandbox():
    with SimulatedCamera(auth=None, prewarm=False) as camera:
        reply = httpx.post(f"{camera.url}/axis-cgi/applications/upload.cgi",
                           files={"packfil": ("app.eap", package(), "application/octet-stream")})
        assert reply.text.strip() == "OK"
        httpx.post(f"{camera.url}/axis-cgi/applications/control.cgi", params={"action": "start", "package": APP})
        info = state(camera)[APP]
    with pytest.raises(ProcessLookupError):
        os.kill(info["pid"], 0)
    assert not os.path.exists(info["directory"])


def test_the_application_api_needs_the_cameras_credentials(cam):
    reply = httpx.post(f"{cam.url}/axis-cgi/applications/list.cgi")
    assert reply.status_code == 401 and "Digest" in reply.headers["www-authenticate"]
    reply = httpx.post(f"{cam.url}/axis-cgi/applications/upload.cgi", auth=httpx.DigestAuth("root", "wrong"),
                       files={"packfil": ("a.eap", package(), "application/octet-stream")})
    assert reply.status_code == 401 and listed(cam) == {}


BAD_PACKAGES = {
    "not gzip": b"PK\x03\x04 a zip file",
    "gzip, not tar": __import__("gzip").compress(b"hello" * 100),
    "truncated": package()[:200],
    "absolute path": package(extra=[("/tmp/evil", b"x", {})]),
    "dot-dot path": package(extra=[("html/../../evil", b"x", {})]),
    "link leaving the package": package(extra=[("lib/passwd", None, {"type": tarfile.SYMTYPE,
                                                                       "linkname": "../../etc/passwd"})]),
    "absolute link": package(extra=[("lib/passwd", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})]),
    "hard link": package(extra=[("lib/h", None, {"type": tarfile.LNKTYPE, "linkname": "LICENSE"})]),
    "device": package(extra=[("lib/dev", None, {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})]),
    "no manifest": package(skip={"manifest.json"}),
    "manifest not JSON": package(b"{not json"),
    "manifest bad appName": package(manifest_bytes(app_name="bad-name")),
    "manifest missing vendor": package(json.dumps({"schemaVersion": "1.7.3", "acapPackageConf": {"setup": {
        "appName": APP, "version": "1.0.0", "runMode": "never"}}}).encode()),
    "empty LICENSE": tar_gz([("manifest.json", manifest_bytes(), {}), ("LICENSE", b"  \n", {}),
                             (APP, SCRIPT, {}), ("html/index.html", b"x", {})]),
    "no LICENSE": package(skip={"LICENSE"}),
    "no executable": package(skip={APP}),
    "no settings page": package(skip={"html/index.html"}),
}


@pytest.mark.parametrize("name", list(BAD_PACKAGES))
def test_invalid_packages_are_refused_with_error_1_and_nothing_is_installed(cam, name):
    assert upload(cam, BAD_PACKAGES[name]) == "Error: 1"
    assert listed(cam) == {}
    sandbox = cam.extensions["apps"].root
    assert sorted(p.name for p in sandbox.iterdir()) == [".dbus", ".device-bin"]
    assert not os.path.exists("/tmp/evil")


def test_other_architectures_and_oversized_packages_get_their_error_numbers(cam):
    assert upload(cam, package(manifest_bytes(architecture="armv7hf"))) == "Error: 5"  # the camera is aarch64
    assert upload(cam, package(manifest_bytes(architecture="aarch64"))) == "OK"
    cam.extensions["apps_max_package"] = 500
    assert upload(cam, package()) == "Error: 3"


def test_control_without_a_valid_action_is_an_error(cam):
    assert call(cam, "control.cgi", action="explode", package=APP) == "Error: 1"
    assert call(cam, "control.cgi", action="start") == "Error: 1"


def test_the_axis_library_reads_the_application_list(cam):
    import asyncio

    from axis.device import AxisDevice
    from axis.models.configuration import Configuration

    assert upload(cam, package()) == "OK"
    assert call(cam, "control.cgi", action="start", package=APP) == "OK"

    async def read():
        async with httpx.AsyncClient() as session:
            device = AxisDevice(Configuration(session, "127.0.0.1", port=cam.port, username=AUTH[0],
                                              password=AUTH[1]))
            await device.vapix.initialize()
            return device.vapix.applications[APP]

    app = asyncio.run(read())
    assert (app.name, app.nice_name, app.vendor, app.version) == (APP, "Sim app", "tests", "1.0.0")
    assert app.status == "Running"
