"""More bad input for `bundle`, `deploy` and `apps`: each gives one clear line (exit 2), never a traceback,
never a password, and nothing is installed on the (simulated) camera when the input is refused."""

from __future__ import annotations

import pytest

from camlytics.cli import main
from camlytics.deploy.vapix_apps import AppsClient
from tests.conftest import one_line_error


def installed(cam) -> list[str]:
    with AppsClient(cam.admin_url) as client:
        return [app.name for app in client.list()]


def test_a_truncated_package_is_refused_before_uploading(cam, package, tmp_path, capsys):
    trunc = tmp_path / "trunc.eap"
    trunc.write_bytes(package.read_bytes()[:1000])
    assert main(["deploy", str(trunc), "--camera", cam.admin_url]) == 2
    one_line_error(capsys, "trunc.eap", "not a complete .eap")
    half = tmp_path / "half.eap"
    half.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    assert main(["deploy", str(half), "--camera", cam.admin_url]) == 2
    one_line_error(capsys, "not a complete .eap")
    assert main(["deploy", str(tmp_path), "--camera", cam.admin_url]) == 2
    one_line_error(capsys, "is a directory")
    assert installed(cam) == []


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_a_timeout_that_is_not_positive_is_refused_up_front(cam, package, timeout, capsys):
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--timeout", timeout]) == 2
    one_line_error(capsys, "--timeout must be a positive number")
    assert main(["apps", "--camera", cam.admin_url, "--timeout", timeout]) == 2
    err = one_line_error(capsys, "--timeout must be a positive number")
    assert "cannot reach" not in err


@pytest.mark.parametrize("url, problem", [
    ("http://root:pw@127.0.0.1:abc", "invalid port"),
    ("http://root:pw@127.0.0.1:99999", "invalid port"),
    ("http://root:pw@[::1", "has an unclosed [ in its IPv6 host"),
])
def test_a_malformed_camera_url_names_the_problem_without_the_password(package, url, problem, capsys):
    assert main(["apps", "--camera", url]) == 2
    err = one_line_error(capsys, problem, "root:***@")
    assert "pw" not in err
    assert main(["deploy", str(package), "--camera", url]) == 2
    err = one_line_error(capsys, problem)
    assert "pw" not in err


@pytest.mark.parametrize("flag, value, name", [
    ("--fps", "-1", "--fps"), ("--fps", "abc", "--fps"), ("--fps", "1000", "--fps"),
    ("--resolution", "abc", "--resolution"), ("--webhook", "ftp://x", "--webhook"),
    ("--node-id", "a/#", "--node-id"), ("--mqtt-prefix", "a/#", "--mqtt-prefix"),
    ("--mqtt-prefix", "", "--mqtt-prefix"),
])
def test_bundle_refuses_parameter_defaults_the_app_would_refuse_on_the_camera(model_dir, tmp_path, flag, value,
                                                                                name, capsys):
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), flag, value]) == 2
    one_line_error(capsys, name)
    assert list(tmp_path.iterdir()) == []


def test_deploy_checks_parameter_values_before_installing(cam, package, capsys):
    for param in ("FrameRate=abc", "FrameRate=0", "MqttPort=abc", "MqttPort=70000", "Resolution=abc",
                  "WebhookUrl=ftp://x", "MqttNodeId=a/#", "HaDiscovery=maybe", "Roi=1,2,3"):
        assert main(["deploy", str(package), "--camera", cam.admin_url, "--param", param]) == 2
        one_line_error(capsys, f"--param {param.split('=')[0]}")
    assert installed(cam) == []
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--param", "FrameRate=0.5",
                 "--param", "MqttPort=1884", "--param", "Roi=0,0,10,10"]) == 0
    assert cam.params["root.camlytics_door.FrameRate"] == "0.5"


def test_deploy_refuses_an_unknown_parameter_before_uploading(cam, package, capsys):
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--param", "Bogus=s3cret"]) == 2
    err = one_line_error(capsys, "--param Bogus", "no such parameter")
    assert "s3cret" not in err
    assert installed(cam) == []


def test_deploy_and_apps_take_credentials_from_the_environment(cam, package, monkeypatch, capsys):
    monkeypatch.setenv("CAMLYTICS_USER", "root")
    monkeypatch.setenv("CAMLYTICS_PASSWORD", "pass")
    host = cam.url.split("//", 1)[1]
    assert main(["apps", "--camera", f"http://root@{host}"]) == 0
    assert main(["deploy", str(package), "--camera", f"http://{host}"]) == 0
    assert "pass" not in capsys.readouterr().out
    assert installed(cam) == ["camlytics_door"]
    # a password in the URL still wins over the environment
    assert main(["apps", "--camera", f"http://root:nope@{host}"]) == 2
    one_line_error(capsys, "refused the credentials")
