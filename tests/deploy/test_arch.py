"""Packages per architecture from the command line, the camera's architecture, and the bundled firmware
started by the launcher exactly as the simulated camera starts it (the ARM firmware under qemu-user,
fetching frames from a simulated camera over loopback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from camlytics.cli import main
from camlytics.deploy.vapix_apps import AppsClient, DeviceInfo
from camlytics.firmware.build import elf_arch
from tests.conftest import find_free_port, one_line_error
from tests.deploy.conftest import eap_file


def test_bundle_without_arch_writes_one_firmware_package_per_camera_architecture(model_dir, firmware_binary,
                                                                                 tmp_path, capsys):
    for arch in ("armv7hf", "aarch64"):
        firmware_binary(arch)  # cached builds
    assert main(["bundle", str(model_dir), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["camlytics_door_1_0_0_aarch64.eap", "camlytics_door_1_0_0_armv7hf.eap"]
    for name in names:
        arch = name.rsplit("_", 1)[1][:-4]
        binary = tmp_path / f"fw-{arch}"
        binary.write_bytes(eap_file(tmp_path / name, "lib/micropython"))
        assert elf_arch(binary) == arch
    assert capsys.readouterr().out.count("camlytics firmware for") == 2


@pytest.mark.parametrize("argv, message", [
    (["--arch", "all"], "--arch all has no firmware"),
    (["--arch", "all", "--interpreter", "/bin/true"], "needs --interpreter camera"),
    (["--arch", "aarch64", "--camera", "http://cam"], "not both"),
    (["--out", "x.eap"], "names one file"),
    (["--interpreter", "/bin/true"], "runs on one architecture"),
    (["--schema", "1", "--vendor-id", "0123456789", "--arch", "aarch64"], "--vendor-id needs manifest schema 2"),
    (["--http-port", "70000", "--arch", "aarch64"], "HttpPort"),
])
def test_bad_architecture_and_schema_choices_are_one_line_and_write_nothing(model_dir, tmp_path, capsys, argv,
                                                                             message):
    out = tmp_path / "out"
    out.mkdir()
    argv = [a if a != "x.eap" else str(out / "x.eap") for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(out)]
    assert main(["bundle", str(model_dir), *argv]) == 2
    one_line_error(capsys, message)
    assert list(out.iterdir()) == []


def test_arch_all_with_the_camera_interpreter_is_the_old_package(model_dir, tmp_path, capsys):
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--interpreter", "camera", "--arch", "all",
                 "--schema", "1"]) == 0
    path = tmp_path / "camlytics_door_1_0_0_all.eap"
    assert "device's own `micropython`" in capsys.readouterr().out
    manifest = json.loads(eap_file(path, "manifest.json"))
    assert manifest["schemaVersion"] == "1.7.3" and "vendorId" not in manifest["acapPackageConf"]["setup"]


def test_camera_picks_the_architecture_from_basicdeviceinfo(cam, model_dir, firmware_binary, tmp_path, capsys):
    with AppsClient(cam.admin_url) as client:
        info = client.device_info()
    expected = info.acap_arch
    assert expected in ("armv7hf", "aarch64") and info.version
    firmware_binary(expected)
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--camera", cam.admin_url]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"camlytics_door_1_0_0_{expected}.eap"]
    capsys.readouterr()
    dead = f"http://root:pass@127.0.0.1:{find_free_port()}"
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--camera", dead]) == 2
    one_line_error(capsys, "cannot reach camera")


@pytest.mark.parametrize("architecture, soc, expected", [
    ("aarch64", "Axis Artpec-8", "aarch64"), ("armv7hf", "Axis Artpec-7", "armv7hf"),
    ("", "Axis Artpec-6", "armv7hf"), ("arm64", "", "aarch64"), ("", "Ambarella CV25", "aarch64"),
    ("mips", "Axis Artpec-5", None),
])
def test_the_acap_architecture_of_a_camera(architecture, soc, expected):
    assert DeviceInfo(architecture, soc, "12.6.1", "AXIS X").acap_arch == expected


def test_the_launcher_runs_the_arm_firmware_under_the_emulator_the_simulated_camera_names(
        model_dir, firmware_binary, tmp_path):
    """What `control.cgi?action=start` does on the simulated camera, step by step: the package unpacked,
    parameters in a param.cgi-format file, CAMLYTICS_VAPIX_URL at the camera, CAMLYTICS_EMULATOR=qemu-arm."""
    from camlytics.deploy.bundle import BundleOptions, build_bundle
    from camlytics.sim.camera import SimulatedCamera

    qemu = shutil.which("qemu-arm")
    if not qemu:
        pytest.fail("qemu-arm is missing: install qemu-user (tools/system-deps.sh)")
    firmware_binary("armv7hf")
    eap = build_bundle(model_dir, tmp_path, BundleOptions(arch="armv7hf"))
    app = tmp_path / "app"
    with tarfile.open(eap) as tar:
        tar.extractall(app, filter="data")
    port = find_free_port()
    params = tmp_path / "params"
    params.write_text(f"root.camlytics_door.FrameRate=0.9\nroot.camlytics_door.HttpPort={port}\n"
                      "root.camlytics_door.VapixUser=root\nroot.camlytics_door.VapixPassword=pass\n")
    log = tmp_path / "app.log"
    with SimulatedCamera(preset="office", seed=0, auth=("root", "pass"), prewarm=False) as cam, \
            open(log, "wb") as out:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(app), "CAMLYTICS_PARAMS_FILE": str(params),
               "CAMLYTICS_VAPIX_URL": cam.url, "CAMLYTICS_EMULATOR": qemu}
        proc = subprocess.Popen([str(app / "camlytics_door")], cwd=app, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while "stats frames=" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.5)
            text = log.read_text()
            assert "stats frames=" in text, text
            status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=10)  # the app's own endpoint
            assert status.status_code == 200, status.text
            assert status.json()["frames"]["decoded"] > 0
            assert httpx.get(f"http://127.0.0.1:{port}/spool", timeout=10).status_code == 200
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(10)
    assert f"interpreter: bundled lib/micropython (camlytics firmware) under {qemu}" in text
    assert "pass" not in text.replace("passed", "")  # the VAPIX password is never logged
    assert "linux-armv7hf camlytics" in text  # the firmware's build line: this is the ARM binary running
    stats = [line for line in text.splitlines() if "stats frames=" in line][-1]
    assert "decode=" in stats and "infer=" in stats  # per-frame milliseconds, as the launcher announces
    assert f"status endpoint 127.0.0.1:{port}" in text
    config = json.loads((app / "localdata" / "config.json").read_text())
    assert config["http"] == {"port": port, "host": "127.0.0.1"} and config["stats_every"] == 10
    assert config["spool"]["dir"] == str(app / "localdata" / "spool")


def test_a_deploy_that_fails_after_the_upload_removes_what_it_installed(cam, model_dir, firmware_binary, tmp_path,
                                                                          capsys):
    arch = "aarch64"  # what the default simulated camera reports
    firmware_binary(arch)
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--arch", arch]) == 0
    package = tmp_path / f"camlytics_door_1_0_0_{arch}.eap"
    # the camera answers the start (the first control.cgi call) with 503; the remove that follows works
    httpx.post(f"{cam.url}/camlytics-sim/fail", params={"path": "/axis-cgi/applications/control.cgi",
                                                        "status": 503, "count": 1}).raise_for_status()
    capsys.readouterr()
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--start"]) == 2
    one_line_error(capsys, "removed camlytics_door again")
    with AppsClient(cam.admin_url) as client:
        assert client.list() == []  # nothing left installed
