"""deploy against simulated cameras of each architecture and AXIS OS line: the architecture is checked
before uploading, the camera's unsigned refusal (upload.cgi Error: 2) says what to do, --allow-unsigned
needs --yes and is refused where the OS requires signed apps."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest

from camlytics.cli import main
from camlytics.deploy.bundle import BundleOptions, build_bundle
from camlytics.deploy.vapix_apps import AppsClient
from camlytics.sim.camera import SimulatedCamera
from tests.conftest import find_free_port, micropython_source, one_line_error


@pytest.fixture(scope="module")
def firmware_packages(model_dir, firmware_binary, tmp_path_factory):
    """{arch: .eap} firmware packages (HttpPort 0: tests start apps side by side on one host)."""
    out = tmp_path_factory.mktemp("fw-eap")
    return {arch: build_bundle(model_dir, out, BundleOptions(arch=arch, params={"HttpPort": "0"},
                                                             firmware_source=micropython_source()))
            for arch in ("armv7hf", "aarch64")}


@contextmanager
def camera(arch: str, os_version: str) -> Iterator[SimulatedCamera]:
    with SimulatedCamera(auth=("root", "pass"), prewarm=False, arch=arch, os_version=os_version) as cam:
        cam.admin_url = cam.url.replace("http://", "http://root:pass@")
        yield cam


def installed(cam) -> list[str]:
    with AppsClient(cam.admin_url) as client:
        return [app.name for app in client.list()]


@pytest.mark.parametrize("camera_arch, package_arch", [("armv7hf", "aarch64"), ("aarch64", "armv7hf")])
def test_a_package_for_another_architecture_is_refused_before_uploading(firmware_packages, camera_arch,
                                                                        package_arch, capsys):
    with camera(camera_arch, "11.11") as cam:
        assert main(["deploy", str(firmware_packages[package_arch]), "--camera", cam.admin_url, "--start"]) == 2
        one_line_error(capsys, f"built for {package_arch}", f"camera {cam.url.split('//')[1]} is {camera_arch}",
                       "nothing uploaded", f"--arch {camera_arch}")
        assert installed(cam) == []
        assert main(["deploy", str(firmware_packages[camera_arch]), "--camera", cam.admin_url]) == 0
        assert installed(cam) == ["camlytics_door"]


@pytest.mark.parametrize("arch", ["armv7hf", "aarch64"])
def test_bundle_camera_reads_the_architecture_of_the_camera(model_dir, firmware_binary, tmp_path, arch):
    firmware_binary(arch)
    with camera(arch, "12.6") as cam:
        assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--camera", cam.admin_url]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"camlytics_door_1_0_0_{arch}.eap"]


def test_axis_os_12_refuses_the_unsigned_package_until_allowed_with_confirmation(firmware_packages, capsys):
    package = firmware_packages["aarch64"]
    with camera("aarch64", "12.6") as cam:
        assert main(["deploy", str(package), "--camera", cam.admin_url]) == 2
        err = one_line_error(capsys, "refused the unsigned package (Error: 2)", "AXIS OS 12.6",
                             "--allow-unsigned --yes")
        assert "Traceback" not in err
        assert installed(cam) == []
        assert main(["deploy", str(package), "--camera", cam.admin_url, "--allow-unsigned"]) == 2
        one_line_error(capsys, "confirm with --yes")
        assert installed(cam) == []
        reply = httpx.get(f"{cam.url}/axis-cgi/applications/config.cgi", auth=httpx.DigestAuth("root", "pass"),
                          params={"action": "get", "name": "AllowUnsigned"})
        assert 'value="false"' in reply.text  # nothing was changed without the confirmation
        assert main(["deploy", str(package), "--camera", cam.admin_url, "--allow-unsigned", "--yes"]) == 0
        assert "AllowUnsigned=true" in capsys.readouterr().out
        assert installed(cam) == ["camlytics_door"]


def test_axis_os_13_requires_signed_apps_and_schema_2(model_dir, firmware_packages, tmp_path, capsys):
    package = firmware_packages["aarch64"]
    with camera("aarch64", "13.0") as cam:
        assert main(["deploy", str(package), "--camera", cam.admin_url]) == 2
        one_line_error(capsys, "Error: 2", "AXIS OS 13 installs signed apps only", "Signing for AXIS OS 13")
        assert main(["deploy", str(package), "--camera", cam.admin_url, "--allow-unsigned", "--yes"]) == 2
        one_line_error(capsys, "requires signed apps", "Signing for AXIS OS 13")
        old = build_bundle(model_dir, tmp_path, BundleOptions(arch="aarch64", schema=1))
        assert main(["deploy", str(old), "--camera", cam.admin_url]) == 2
        one_line_error(capsys, "schema 2 only", "without --schema 1")
        assert installed(cam) == []


def test_allow_unsigned_without_yes_is_refused_before_contacting_the_camera(firmware_packages, capsys):
    dead = f"http://root:pass@127.0.0.1:{find_free_port()}"
    assert main(["deploy", str(firmware_packages["aarch64"]), "--camera", dead, "--allow-unsigned"]) == 2
    err = one_line_error(capsys, "--allow-unsigned", "confirm with --yes")
    assert "cannot reach" not in err
