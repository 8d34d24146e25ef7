"""The simulated camera as the camera it claims to be (issue #24): architecture and AXIS OS version in
basicdeviceinfo, what the OS enforces on upload (schema, signatures and AllowUnsigned, architecture and
ELF binaries), users with roles, the reverse proxy to an app's own endpoint, and an ARM launcher run
under qemu-user as on the camera."""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from camlytics.sim import apps
from camlytics.sim.camera import SimulatedCamera
from tests.deploy.conftest import tar_gz

ADMIN = ("root", "pass")
VIEWER = ("watcher", "vpass")
OPERATOR = ("op", "opass")
APP = "acapapp"
SCRIPT = b"#!/bin/sh\necho \"emulator=${CAMLYTICS_EMULATOR-unset}\"\nexec sleep 60\n"


def camera(**options) -> SimulatedCamera:
    users = {VIEWER[0]: (VIEWER[1], "viewer"), OPERATOR[0]: (OPERATOR[1], "operator")}
    return SimulatedCamera(auth=ADMIN, users=users, prewarm=False, **options)


def manifest(schema: str = "2.0.0", arch: str = "all", proxy: list | None = None, **setup_extra) -> dict:
    """A hand-written manifest (independent of what `camlytics bundle` writes)."""
    setup = {"appName": APP, "friendlyName": "ACAP test", "vendor": "tests", "version": "1.0.0",
             "architecture": arch, "runMode": "never"}
    if schema.startswith("2"):
        setup.update(vendorId="0000000000", compatibleOsVersions=[{"min": "11.0", "max": "13"}])
    setup.update(setup_extra)
    config = {"reverseProxy": proxy} if proxy else {}
    return {"schemaVersion": schema, "acapPackageConf": {"setup": setup, "configuration": config}}


def package(man: dict | None = None, script: bytes = SCRIPT, extra=()) -> bytes:
    return tar_gz([("manifest.json", json.dumps(man or manifest()).encode(), {}), ("LICENSE", b"MIT\n", {}),
                   (APP, script, {"mode": 0o755})] + list(extra))


def fake_elf(arch: str) -> bytes:
    """An ELF header for `arch` (all that the architecture check reads); not runnable."""
    machine, cls, flags = {"armv7hf": (40, 1, 0x05000400), "aarch64": (183, 2, 0), "x86_64": (62, 2, 0),
                           "armel": (40, 1, 0x05000200)}[arch]
    head = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9) + struct.pack("<HHI", 2, machine, 1)
    head += bytes(12 if cls == 1 else 24)  # entry, phoff, shoff
    return head + struct.pack("<I", flags) + bytes(64)


def vapix(cam, path: str, auth=ADMIN, method: str = "POST", **kwargs) -> httpx.Response:
    return httpx.request(method, f"{cam.url}{path}", auth=httpx.DigestAuth(*auth) if auth else None,
                         timeout=30, **kwargs)


def upload(cam, data: bytes, auth=ADMIN) -> str:
    reply = vapix(cam, "/axis-cgi/applications/upload.cgi", auth,
                  files={"packfil": ("app.eap", data, "application/octet-stream")})
    assert reply.status_code == 200, reply.text
    return reply.text.strip()


def control(cam, action: str, auth=ADMIN) -> str:
    return vapix(cam, "/axis-cgi/applications/control.cgi", auth, params={"action": action, "package": APP}).text.strip()


def allow_unsigned(cam, value: str, auth=ADMIN) -> httpx.Response:
    return vapix(cam, "/axis-cgi/applications/config.cgi", auth,
                 params={"action": "set", "name": "AllowUnsigned", "value": value})


def refusals(cam) -> str:
    return vapix(cam, "/axis-cgi/admin/systemlog.cgi", method="GET").text


# -- identity -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,os_version,soc,version", [
    ("armv7hf", "12.6", "Artpec-7", "12.6.85"),
    ("aarch64", "13.0", "Artpec-8", "13.0.34"),
    ("x86_64", "11.11.205", "x86-64", "11.11.205"),
])
def test_basicdeviceinfo_and_params_report_the_architecture_and_os(arch, os_version, soc, version):
    with camera(arch=arch, os_version=os_version) as cam:
        props = vapix(cam, "/axis-cgi/basicdeviceinfo.cgi", json={
            "apiVersion": "1.0", "method": "getAllProperties"}).json()["data"]["propertyList"]
        assert props["Architecture"] == arch and soc in props["Soc"] and props["Version"] == version
        assert len(props) == 14
        params = vapix(cam, "/axis-cgi/param.cgi", method="GET", params={
            "action": "list", "group": "root.Properties"}).text
        assert f"root.Properties.Firmware.Version={version}" in params
        assert f"root.Properties.System.Architecture={arch}" in params


def test_bad_architecture_os_or_roles_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="architecture"):
        SimulatedCamera(arch="mips", prewarm=False)
    with pytest.raises(ValueError, match="AXIS OS version"):
        SimulatedCamera(os_version="twelve", prewarm=False)
    with pytest.raises(ValueError, match="role"):
        SimulatedCamera(users={"x": ("y", "superuser")}, prewarm=False)


# -- users and roles ------------------------------------------------------------------------------------

def test_roles_admin_operator_viewer_on_vapix_endpoints():
    with camera() as cam:
        assert vapix(cam, "/axis-cgi/jpg/image.cgi", VIEWER, "GET").status_code == 200
        assert vapix(cam, "/axis-cgi/param.cgi", VIEWER, data={"action": "list", "group": "Brand"}).status_code == 200
        update = {"action": "update", "Image.I0.Appearance.Compression": "40"}
        assert vapix(cam, "/axis-cgi/param.cgi", VIEWER, data=update).status_code == 403
        assert vapix(cam, "/axis-cgi/param.cgi", OPERATOR, data=update).text.strip() == "OK"
        for user in (VIEWER, OPERATOR):
            reply = vapix(cam, "/axis-cgi/applications/upload.cgi", user,
                          files={"packfil": ("a.eap", package(), "application/octet-stream")})
            assert reply.status_code == 403
            assert vapix(cam, "/axis-cgi/applications/list.cgi", user).status_code == 403
        assert vapix(cam, "/axis-cgi/applications/list.cgi", ("watcher", "wrong")).status_code == 401
        assert upload(cam, package()) == "OK"  # admin


# -- AllowUnsigned, schema and OS ---------------------------------------------------------------------

def test_allow_unsigned_is_admin_only_and_defaults_by_os():
    for os_version, default in (("11.11", "true"), ("12.6", "false"), ("13.0", "false")):
        with camera(os_version=os_version) as cam:
            get = vapix(cam, "/axis-cgi/applications/config.cgi", params={"action": "get", "name": "AllowUnsigned"})
            assert f'name="AllowUnsigned" value="{default}"' in get.text
            assert allow_unsigned(cam, "true", VIEWER).status_code == 403
            assert allow_unsigned(cam, "true", OPERATOR).status_code == 403
            expected = "Error: 2" if os_version == "13.0" else "OK"  # AXIS OS 13: signed apps only
            assert allow_unsigned(cam, "true").text.strip() == expected
            assert allow_unsigned(cam, "maybe").text.strip() == "Error: 1"
            wrong = vapix(cam, "/axis-cgi/applications/config.cgi", params={"action": "set", "name": "AllowRoot",
                                                                             "value": "true"})
            assert wrong.text.strip() == "Error: 1"


def test_os_12_refuses_unsigned_packages_until_an_admin_allows_them():
    with camera(os_version="12.6") as cam:
        for schema in ("1.7.3", "2.0.0"):  # 12.x installs both schema majors
            assert upload(cam, package(manifest(schema))) == "Error: 2"
        assert "AllowUnsigned" in refusals(cam)
        assert vapix(cam, "/axis-cgi/applications/list.cgi").text.count("<application") == 0
        assert allow_unsigned(cam, "true").text.strip() == "OK"
        for schema in ("1.7.3", "2.0.0"):
            assert upload(cam, package(manifest(schema))) == "OK"
        assert allow_unsigned(cam, "false").text.strip() == "OK"
        assert upload(cam, package()) == "Error: 2"
        assert 'Name="acapapp"' in vapix(cam, "/axis-cgi/applications/list.cgi").text  # installed stays installed


def test_os_13_installs_schema_2_only_and_refuses_unsigned_packages():
    with camera(os_version="13.0") as cam:
        assert upload(cam, package(manifest("1.7.3"))) == "Error: 5"
        assert "schema 2.x only" in refusals(cam)
        assert upload(cam, package(manifest("2.0.0"))) == "Error: 2"
        assert "signed applications only" in refusals(cam)


def test_os_11_installs_unsigned_packages_of_both_schema_majors():
    with camera(os_version="11.11") as cam:
        assert upload(cam, package(manifest("1.7.3"))) == "OK"
        assert upload(cam, package(manifest("2.0.0"))) == "OK"


def test_a_signature_the_simulator_cannot_verify_counts_as_unsigned():
    signed_looking = package() + b"AXIS-SIGNATURE-BLOCK" + os.urandom(256)  # Axis appends it after the gzip'd tar
    with camera(os_version="12.6") as cam:
        assert upload(cam, signed_looking) == "Error: 2"
        assert "cannot be verified" in refusals(cam)
        allow_unsigned(cam, "true")
        assert upload(cam, signed_looking) == "OK"  # as an unsigned package
    with camera(os_version="13.0") as cam:
        assert upload(cam, signed_looking) == "Error: 2"


def test_compatible_os_versions_are_enforced_from_12_10():
    old_only = manifest(compatibleOsVersions=[{"min": "11.0", "max": "12"}])
    with camera(os_version="12.11") as cam:
        allow_unsigned(cam, "true")
        assert upload(cam, package(old_only)) == "OK"
    with camera(os_version="13.0") as cam:
        assert upload(cam, package(old_only)) == "Error: 5"
        assert "compatibleOsVersions" in refusals(cam)
    with camera(os_version="12.6") as cam:  # before 12.10 the field is not enforced
        allow_unsigned(cam, "true")
        assert upload(cam, package(manifest(compatibleOsVersions=[{"min": "13.0", "max": "13"}]))) == "OK"


def test_required_dbus_methods_the_camera_lacks_make_the_package_incompatible():
    credentials = "com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials"
    with camera() as cam:
        good = manifest()
        good["resources"] = {"dbus": {"requiredMethods": [credentials]}}
        assert upload(cam, package(good)) == "OK"
        bad = manifest()
        bad["resources"] = {"dbus": {"requiredMethods": ["com.example.Nothing1.Method"]}}
        assert upload(cam, package(bad)) == "Error: 5"


# -- architecture -------------------------------------------------------------------------------------

def test_architecture_mismatch_and_foreign_elf_binaries_are_refused_with_error_5():
    with camera(arch="armv7hf") as cam:
        assert upload(cam, package(manifest(arch="aarch64"))) == "Error: 5"
        assert "does not run on this armv7hf camera" in refusals(cam)
        wrong_binary = [("lib/micropython", fake_elf("aarch64"), {"mode": 0o755})]
        assert upload(cam, package(manifest(arch="armv7hf"), extra=wrong_binary)) == "Error: 5"
        assert "built for aarch64, the manifest says armv7hf" in refusals(cam)
        soft_float = [("lib/micropython", fake_elf("armel"), {"mode": 0o755})]
        assert upload(cam, package(manifest(arch="armv7hf"), extra=soft_float)) == "Error: 5"
        binary_in_all = [("lib/helper", fake_elf("armv7hf"), {"mode": 0o755})]
        assert upload(cam, package(manifest(arch="all"), extra=binary_in_all)) == "Error: 5"
        right = [("lib/micropython", fake_elf("armv7hf"), {"mode": 0o755})]
        assert upload(cam, package(manifest(arch="armv7hf"), extra=right)) == "OK"
        sandbox = cam.extensions["apps"].root
        assert sorted(p.name for p in sandbox.iterdir() if p.name.startswith(".")) == [".dbus", ".device-bin"]


def test_an_all_package_runs_without_emulator_and_keeps_localdata_across_upgrades():
    with camera() as cam:
        assert upload(cam, package()) == "OK"
        info = httpx.get(f"{cam.url}/camlytics-sim/apps", timeout=10).json()["apps"][APP]
        assert info["emulator"] is None
        data = Path(info["directory"]) / "localdata"
        assert data.is_dir()
        (data / "state.json").write_text("{}")
        assert control(cam, "start") == "OK"
        log = wait_for(lambda: "emulator=" in app_log(cam) and app_log(cam))
        assert "emulator=unset" in log
        assert upload(cam, package(manifest(version="1.1.0"))) == "OK"
        assert (data / "state.json").read_text() == "{}"


# -- the reverse proxy --------------------------------------------------------------------------------

class _AppEndpoint(BaseHTTPRequestHandler):
    """A real HTTP server standing in for the app's own endpoint (127.0.0.1:PORT)."""

    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        self.seen.append({"method": self.command, "path": self.path, "body": body,
                          "authorization": self.headers.get("Authorization"),
                          "user": self.headers.get("X-Forwarded-User")})
        if self.path.startswith("/slow"):
            time.sleep(3)
        if self.path.startswith("/huge"):
            data, ctype = b"x" * (apps.PROXY_MAX_RESPONSE + 10), "application/octet-stream"
        elif self.path.startswith("/spool/"):
            data, ctype = b"\xff\xd8jpeg\xff\xd9", "image/jpeg"
        else:
            data, ctype = json.dumps({"path": self.path, "state": "closed"}).encode(), "application/json"
        status = 404 if self.path.startswith("/missing") else 200
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def endpoint():
    _AppEndpoint.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppEndpoint)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def proxy_package(port: int) -> bytes:
    entries = [{"apiPath": "status", "target": f"http://localhost:{port}/status", "access": "viewer"},
               {"apiPath": "spool", "target": f"http://localhost:{port}/spool", "access": "admin"},
               {"apiPath": "ping", "target": f"http://127.0.0.1:{port}/", "access": "anonymous"},
               {"apiPath": "raw", "target": f"http://localhost:{port}", "access": "operator"}]
    return package(manifest(proxy=entries))


def local(cam, path: str, auth=ADMIN, method: str = "GET", **kwargs) -> httpx.Response:
    return vapix(cam, f"/local/{APP}/{path}", auth, method, **kwargs)


def test_reverse_proxy_forwards_with_the_cameras_auth_and_access_levels(endpoint):
    with camera() as cam:
        assert upload(cam, proxy_package(endpoint)) == "OK"
        reply = local(cam, "status")
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
        assert reply.json() == {"path": "/status", "state": "closed"}
        assert local(cam, "status", VIEWER).json()["state"] == "closed"
        assert _AppEndpoint.seen[-1]["authorization"] is None  # the camera's credentials stay at the camera
        assert _AppEndpoint.seen[-1]["user"] == VIEWER[0]
        # the rest of the path and the query go along; the app's status and content type come back
        reply = local(cam, "spool/frame-01.jpg", params={"size": "small"})
        assert reply.status_code == 200 and reply.content == b"\xff\xd8jpeg\xff\xd9"
        assert reply.headers["content-type"] == "image/jpeg"
        assert _AppEndpoint.seen[-1]["path"] == "/spool/frame-01.jpg?size=small"
        assert local(cam, "raw/missing").status_code == 404
        reply = local(cam, "raw/echo", method="POST", content=b'{"a": 1}', headers={"Content-Type": "application/json"})
        assert reply.status_code == 200 and _AppEndpoint.seen[-1]["body"] == b'{"a": 1}'
        # access levels: viewer < operator < admin; anonymous needs no credentials
        assert local(cam, "spool", VIEWER).status_code == 403
        assert local(cam, "spool/frame-01.jpg", VIEWER).status_code == 403
        assert local(cam, "spool", OPERATOR).status_code == 403
        assert local(cam, "raw/x", VIEWER).status_code == 403
        assert local(cam, "raw/x", OPERATOR).status_code == 200
        assert local(cam, "status", auth=None).status_code == 401
        assert local(cam, "status", ("watcher", "wrong")).status_code == 401
        assert local(cam, "ping", auth=None).json()["path"] == "/"
        assert local(cam, "statusx").status_code == 404  # a prefix matches whole path segments only
        # removing the app removes its proxy entries
        assert control(cam, "remove") == "OK"
        assert local(cam, "status").status_code == 404


def test_reverse_proxy_answers_502_when_the_app_does_not(endpoint, monkeypatch):
    with camera() as cam:
        with socket_port() as free:
            pass  # a port nothing listens on any more
        assert upload(cam, proxy_package(free)) == "OK"
        reply = local(cam, "status")
        assert reply.status_code == 502 and "does not answer" in reply.text
        assert upload(cam, proxy_package(endpoint)) == "OK"  # upgrade: the entries follow the new manifest
        assert local(cam, "raw/huge").status_code == 502  # larger than the proxy takes
        monkeypatch.setattr(apps, "PROXY_TIMEOUT", 0.5)
        began = time.monotonic()
        assert local(cam, "raw/slow").status_code == 502
        assert time.monotonic() - began < 2.5
        assert local(cam, "status").status_code == 200


class socket_port:
    """A port that was free a moment ago (closed on exit)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_bad_reverse_proxy_entries_are_refused_with_error_1():
    with camera() as cam:
        for entry in ({"apiPath": "../x", "target": "http://localhost:80/", "access": "admin"},
                      {"apiPath": "x", "target": "http://example.com:80/", "access": "admin"},
                      {"apiPath": "x", "target": "http://localhost:80/", "access": "root"}):
            assert upload(cam, package(manifest(proxy=[entry]))) == "Error: 1"


# -- an ARM package started under qemu-user ---------------------------------------------------------------

def app_log(cam) -> str:
    return httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": APP}, timeout=10).text


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


ARM_LAUNCHER = b"""#!/bin/sh
# as the bundle's launcher: the firmware from lib/, under $CAMLYTICS_EMULATOR on a foreign host
echo "emulator=${CAMLYTICS_EMULATOR-unset} cwd=$(pwd) threshold=$(grep Threshold "$CAMLYTICS_PARAMS_FILE")"
exec ${CAMLYTICS_EMULATOR:+$CAMLYTICS_EMULATOR }"$PWD/lib/micropython" -c "
import sys, time
print('firmware', sys.implementation._machine)
with open('localdata/alive', 'w') as f:
    f.write('yes')
time.sleep(120)
"
"""


def test_an_armv7hf_package_runs_its_launcher_and_firmware_under_qemu_arm(firmware_binary):
    binary = firmware_binary("armv7hf").read_bytes()
    man = manifest(arch="armv7hf")
    man["acapPackageConf"]["configuration"]["paramConfig"] = [
        {"name": "Threshold", "default": "60", "type": "int:min=0;max=100"}]
    eap = package(man, ARM_LAUNCHER, extra=[("lib/micropython", binary, {"mode": 0o755})])
    with camera(arch="armv7hf", os_version="12.6") as cam:
        assert upload(cam, eap) == "Error: 2"
        allow_unsigned(cam, "true")
        assert upload(cam, eap) == "OK"
        assert control(cam, "start") == "OK"
        log = wait_for(lambda: "firmware" in app_log(cam) and app_log(cam))
        info = httpx.get(f"{cam.url}/camlytics-sim/apps", timeout=10).json()["apps"][APP]
        assert info["emulator"] == "qemu-arm" and info["status"] == "Running"
        assert "emulator=/" in log and log.split("emulator=")[1].split()[0].endswith("/qemu-arm")
        assert f"cwd={info['directory']}" in log and f"root.{APP}.Threshold=60" in log
        assert "firmware linux-" in log and "camlytics" in log.split("firmware ")[1]
        assert (Path(info["directory"]) / "localdata" / "alive").read_text() == "yes"
        pid = info["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].endswith(b"qemu-arm") and cmdline[1].endswith(b"lib/micropython")
        assert control(cam, "stop") == "OK"
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # the whole group is gone
        assert "Stopped" in vapix(cam, "/axis-cgi/applications/list.cgi").text


# -- the VAPIX service account over D-Bus ---------------------------------------------------------------

DBUS_SCRIPT = b"""#!/bin/sh
dbus-send --system --print-reply --dest=com.axis.HTTPConf1 /com/axis/HTTPConf1/VAPIXServiceAccounts1 \\
    com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials string:acapapp || echo "dbus failed"
echo "gdbus=$(gdbus call --system --dest com.axis.HTTPConf1 --object-path /com/axis/HTTPConf1/VAPIXServiceAccounts1 \\
    --method com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials acapapp)"
echo done
"""


def test_an_app_that_declares_get_credentials_gets_a_working_vapix_service_account():
    declared = manifest()
    declared["resources"] = {"dbus": {"requiredMethods": ["com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials"]}}
    with camera() as cam:
        assert upload(cam, package(declared, DBUS_SCRIPT)) == "OK"
        assert control(cam, "start") == "OK"
        log = wait_for(lambda: "done" in app_log(cam) and app_log(cam))
        user, password = log.split('string "')[1].split('"')[0].split(":", 1)
        assert f"gdbus=('{user}:{password}',)" in log
        assert vapix(cam, "/axis-cgi/jpg/image.cgi", (user, password), "GET").status_code == 200
        assert control(cam, "remove") == "OK"  # the account goes with the app
        assert vapix(cam, "/axis-cgi/jpg/image.cgi", (user, password), "GET").status_code == 401
        assert upload(cam, package(manifest(), DBUS_SCRIPT)) == "OK"  # not declared: no account
        assert control(cam, "start") == "OK"
        log = wait_for(lambda: "done" in app_log(cam) and app_log(cam))
        assert "dbus failed" in log and "AccessDenied" in log and 'string "' not in log


# -- the command line --------------------------------------------------------------------------------

def test_simcam_command_line_sets_architecture_os_and_a_viewer():
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "simcam", "--port", "0", "--arch", "armv7hf",
                             "--os", "13.0", "--viewer", "guest:gpass", "--password", "apass"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        assert "armv7hf, AXIS OS 13.0.34, viewer 'guest'" in proc.stdout.readline()
        props = httpx.post(f"{url}/axis-cgi/basicdeviceinfo.cgi", auth=httpx.DigestAuth("guest", "gpass"), timeout=30,
                           json={"apiVersion": "1.0", "method": "getAllProperties"}).json()["data"]["propertyList"]
        assert (props["Architecture"], props["Version"]) == ("armv7hf", "13.0.34")
        reply = httpx.post(f"{url}/axis-cgi/applications/list.cgi", auth=httpx.DigestAuth("guest", "gpass"), timeout=30)
        assert reply.status_code == 403
        reply = httpx.post(f"{url}/axis-cgi/applications/list.cgi", auth=httpx.DigestAuth("root", "apass"), timeout=30)
        assert reply.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    bad = subprocess.run([sys.executable, "-m", "camlytics", "simcam", "--port", "0", "--viewer", "nopassword"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "USER:PASSWORD" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_signal_to_simcam_stops_its_apps_and_removes_their_files(sig, tmp_path):
    import signal
    import subprocess
    import sys

    from camlytics.cli import main
    from camlytics.export.testmodels import random_model_bytes
    from tests.runtime.test_run_signals import processes_mentioning

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.cml").write_bytes(random_model_bytes(0))
    temp = tmp_path / "tmp"
    temp.mkdir()
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--arch", "all", "--interpreter", "camera",
                 "--http-port", "0", "--camera-user", "root"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "simcam", "--port", "0", "--password", "pw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    try:
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        camera = url.replace("http://", "http://root:pw@")
        assert main(["deploy", str(tmp_path / "camlytics_door_1_0_0_all.eap"), "--camera", camera,
                     "--param", "VapixPassword=pw", "--start"]) == 0
        deadline = time.monotonic() + 30
        while not processes_mentioning(str(temp) + "/camlytics-simcam-apps-") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_mentioning(str(temp) + "/camlytics-simcam-apps-")  # the app runs from the camera's folder
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    assert processes_mentioning(str(temp)) == []  # no orphan launcher or MicroPython
    assert list(temp.iterdir()) == []  # the apps (with their config) are gone
