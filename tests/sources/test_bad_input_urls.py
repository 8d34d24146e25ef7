"""Bad input to `snapshot`, `sources` and `run`: URLs, resolutions, numbers, credentials -> one error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.errors import SourceError
from camlytics.sim.camera import SimulatedCamera
from camlytics.sources import parse_url
from camlytics.urls import camera_settings, mqtt_settings

SECRET = "s3cret"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, command: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"camlytics {command}: error: "), lines[0]
    assert "Traceback" not in err and SECRET not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model_file(tmp_path) -> Path:
    """A valid model file: `run` checks the URL and options, then the model, then the camera's credentials."""
    from camlytics.export.testmodels import random_model

    path = tmp_path / "model.cml"
    path.write_bytes(random_model(0, "tiny").to_bytes())
    return path


@pytest.fixture
def no_env_credentials(monkeypatch):
    monkeypatch.delenv("CAMLYTICS_USER", raising=False)
    monkeypatch.delenv("CAMLYTICS_PASSWORD", raising=False)


# --- 1. resolutions ------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", ["0x0", "640x0", "0x360", "100000x100000"])
def test_snapshot_rejects_a_zero_or_absurd_resolution(simcam, tmp_path, capsys, resolution):
    code, _, err = run_cli(capsys, "snapshot", simcam.url, "--resolution", resolution, "-o", str(tmp_path / "a.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", repr(resolution), "16..8192")


@pytest.mark.parametrize("resolution", ["0x0", "640x0", "100000x100000"])
def test_run_rejects_a_zero_or_absurd_resolution_up_front(simcam, model_file, capsys, resolution):
    code, _, err = run_cli(capsys, "run", str(model_file), "--camera", simcam.url, "--resolution", resolution)
    assert code == 2
    one_error_line(err, "run", repr(resolution), "16..8192")


# --- 2. ports and brackets -----------------------------------------------------------------------

@pytest.mark.parametrize("option, url, problem", [
    ("--camera", f"http://root:{SECRET}@127.0.0.1:99999", "invalid port"),
    ("--camera", f"http://root:{SECRET}@127.0.0.1:abc", "invalid port"),
    ("--camera", f"http://root:{SECRET}@[::1", "unclosed ["),
    ("--mqtt", f"mqtt://root:{SECRET}@host:abc", "invalid port"),
    ("--mqtt", f"mqtt://root:{SECRET}@host:70000", "invalid port"),
    ("--mqtt", f"mqtt://root:{SECRET}@[::1", "unclosed ["),
])
def test_run_names_a_bad_camera_or_mqtt_url(simcam, model_file, capsys, option, url, problem):
    camera = ["--camera", simcam.url] if option == "--mqtt" else []  # a good camera, to reach the broker's check
    code, _, err = run_cli(capsys, "run", str(model_file), *camera, option, url)
    assert code == 2
    what = "MQTT broker URL" if option == "--mqtt" else "camera URL"
    one_error_line(err, "run", what, problem, "root:***@")


@pytest.mark.parametrize("url, problem", [
    (f"http://root:{SECRET}@[::1", "unclosed ["),
    (f"http://root:{SECRET}@127.0.0.1:abc", "invalid port"),
    (f"http://root:{SECRET}@127.0.0.1:99999/axis-cgi/mjpg/video.cgi", "invalid port"),
])
def test_snapshot_names_a_bad_camera_url(tmp_path, capsys, url, problem):
    code, _, err = run_cli(capsys, "snapshot", url, "-o", str(tmp_path / "z.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", problem, "root:***@")


def test_parse_url_splits_good_urls_and_never_raises_value_error():
    parsed = parse_url("http://ro%40t:p%3Aw@[::1]:8080/x?y=1")
    assert (parsed.host, parsed.port, parsed.user, parsed.password, parsed.netloc) == \
        ("::1", 8080, "ro@t", "p:w", "[::1]:8080")
    assert parse_url("mqtt://h", what="MQTT broker URL", schemes=("mqtt",)).port is None
    for bad in ("http://h:0", "http://h:-1", "http://h:99999", "http://[::1", "ftp://h", "http://"):
        with pytest.raises(SourceError):
            parse_url(bad)


# --- 3. non-finite numbers -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["sim:office?seed=nan"],
    ["sim:office?seed=1e400"],
    ["sim:office?interval=nan"],
    ["sim:office?duration=inf"],
    ["sim:office", "--interval", "nan"],
    ["sim:office", "--interval", "inf"],
])
def test_sources_rejects_non_finite_numbers(capsys, argv):
    code, out, err = run_cli(capsys, "sources", *argv, "--count", "2")
    assert code == 2, out
    one_error_line(err, "sources", "finite")


# --- 4. credentials for `run` --------------------------------------------------------------------

def test_run_takes_missing_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAMLYTICS_USER", "root")
    monkeypatch.setenv("CAMLYTICS_PASSWORD", "pw")
    assert camera_settings("http://127.0.0.1:8080") == {"url": "http://127.0.0.1:8080", "user": "root", "password": "pw"}
    assert camera_settings("http://root@[::1]:8080")["password"] == "pw"
    assert camera_settings("http://admin:other@h")["user"] == "admin"
    assert camera_settings("http://admin:other@h")["password"] == "other"  # the URL wins
    assert mqtt_settings("broker")["port"] == 1883


def test_run_with_environment_credentials_gets_past_the_camera(monkeypatch, model_file, capfd):
    monkeypatch.setenv("CAMLYTICS_USER", "root")
    monkeypatch.setenv("CAMLYTICS_PASSWORD", SECRET)
    with SimulatedCamera(auth=("root", SECRET)) as cam:
        code = main(["run", str(model_file), "--camera", cam.url.replace("http://", "http://root@"),
                     "--max-frames", "1"])
    out, err = capfd.readouterr()
    err += out
    assert code == 0  # the camera let us in: one frame classified
    assert "401" not in err and SECRET not in err


def test_run_names_a_wrong_password_once_instead_of_retrying(no_env_credentials, model_file, capsys):
    with SimulatedCamera(auth=("root", "right")) as cam:
        url = cam.url.replace("http://", f"http://root:{SECRET}@")
        code, _, err = run_cli(capsys, "run", str(model_file), "--camera", url)
    assert code == 2
    one_error_line(err, "run", "HTTP 401", "$CAMLYTICS_PASSWORD")


def test_run_without_a_password_says_where_to_put_one(no_env_credentials, model_file, capsys):
    with SimulatedCamera(auth=("root", "right")) as cam:
        code, _, err = run_cli(capsys, "run", str(model_file), "--camera", cam.url.replace("http://", "http://root@"))
    assert code == 2
    one_error_line(err, "run", "password", "$CAMLYTICS_USER and $CAMLYTICS_PASSWORD")


# --- 5. what the user typed ----------------------------------------------------------------------

@pytest.mark.parametrize("url", ["notaurl", "rtsp://cam/stream", f"ftp://root:{SECRET}@cam"])
def test_run_shows_the_camera_url_as_typed(model_file, capsys, url):
    code, _, err = run_cli(capsys, "run", str(model_file), "--camera", url)
    assert code == 2
    line = one_error_line(err, "run", "http://user:pass@host[:port]")
    assert repr(url.replace(SECRET, "***")) in line


def test_a_password_without_a_user_is_named_not_dropped(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CAMLYTICS_USER", raising=False)
    for argv in (["http://127.0.0.1:9", "--password", SECRET], [f"http://:{SECRET}@127.0.0.1:9"]):
        code, _, err = run_cli(capsys, "snapshot", *argv, "-o", str(tmp_path / "z.jpg"))
        assert code == 2
        one_error_line(err, "snapshot", "a password was given but no user name", "$CAMLYTICS_USER")


def test_a_camera_option_given_for_a_sim_source_is_named_as_such(tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", "sim:office", "--timeout", "5", "-o", str(tmp_path / "z.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", "--timeout does not apply to a sim: source")
