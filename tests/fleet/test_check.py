"""`camlytics fleet check`: every camera asked at once; a table or JSON; the reason for each one that is down."""

from __future__ import annotations

import json
import os

from camlytics.cli import main


def test_all_cameras_reachable_prints_a_table_and_exits_0(sim_fleet):
    fleet = sim_fleet(3)
    out = fleet.run("check")
    assert out.returncode == 0, out.stderr
    assert "3/3 cameras reachable" in out.stdout
    for name in ("cam00", "cam01", "cam02"):
        assert name in out.stdout
    assert "M3086-V" in out.stdout and "aarch64" in out.stdout and "11.11" in out.stdout


def test_a_down_camera_refused_credentials_and_a_missing_variable_are_reported_each(sim_fleet):
    fleet = sim_fleet(4, arch="armv7hf")
    fleet.cameras[1].kill()
    fleet.env["CAM02_PASSWORD"] = "not-the-s3cret"
    del fleet.env["CAM03_PASSWORD"]
    env_backup = os.environ.pop("CAM03_PASSWORD")  # the subprocess must not inherit it from the fixture
    try:
        out = fleet.run("check", "--json", "--timeout", "3")
    finally:
        os.environ["CAM03_PASSWORD"] = env_backup
    assert out.returncode == 1
    assert "3 of 4 cameras not reachable: cam01, cam02, cam03" in out.stderr
    reports = {r["camera"]: r for r in json.loads(out.stdout)["cameras"]}
    ok = reports["cam00"]
    assert ok["reachable"] and ok["model"] == "AXIS P3245-V" and ok["architecture"] == "armv7hf"
    assert ok["soc"] == "Axis Artpec-7" and ok["firmware"].startswith("11.11") and ok["apps"] == []
    assert ok["sensors"] == ["door"] and ok["reason"] == ""
    assert not reports["cam01"]["reachable"] and "connection refused" in reports["cam01"]["reason"]
    assert "HTTP 401" in reports["cam02"]["reason"] and "s3cret" not in out.stdout
    assert "environment variable CAM03_PASSWORD is not set" in reports["cam03"]["reason"]


def test_a_bad_fleet_file_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "fleet.toml"
    path.write_text('[[camera]]\nname = "a"\nurl = "http://127.0.0.1:9"\nresolution = "640x360"\n'
                    '[[camera.sensor]]\nname = "d"\nroi = [0, 0, 700, 100]\n')
    assert main(["fleet", "check", "--fleet", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "camlytics fleet: error:" in err
    assert "camera[0] (a).sensor[0] (d).roi: 0,0,700,100 is not inside the camera's 640x360 frames" in err
