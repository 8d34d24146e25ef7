"""The surprising-frame spool (quota, atomic files) and the edge app's config validation."""

from __future__ import annotations

import json

import pytest

from camlytics.edge import config
from camlytics.edge.spool import Spool


def test_spool_keeps_newest_frames_within_quota(tmp_path):
    spool = Spool(str(tmp_path / "spool"), max_bytes=10_000, max_files=5)
    for i in range(12):
        spool.add(bytes([i]) * 1000, "flip", t=1000 + i)
    files = spool.files()
    assert len(files) == 5
    names = [name for name, _ in files]
    assert names == sorted(names) and names[-1].startswith("0000001011000-flip")
    assert not list((tmp_path / "spool").glob("*.tmp"))


def test_spool_enforces_byte_quota(tmp_path):
    spool = Spool(str(tmp_path / "s"), max_bytes=2500, max_files=100)
    for i in range(6):
        spool.add(b"x" * 1000, "low_confidence", t=i)
    assert sum(size for _, size in spool.files()) <= 2500


def test_spool_works_under_micropython(tmp_path, micropython):
    (tmp_path / "a-file").write_bytes(b"x")
    out = micropython(f"""
from camlytics.edge.spool import Spool
s = Spool("{tmp_path}/mp", max_bytes=100000, max_files=3)
for i in range(5):
    s.add(b"\\xff\\xd8" + bytes(100), "flip", i)
print(len(s.files()))
for bad in ("{tmp_path}/a-file", "{tmp_path}/a-file/sub"):
    try:
        Spool(bad)
    except ValueError as exc:
        print(exc)
""")
    assert out.strip().splitlines() == ["3", f"spool directory {tmp_path}/a-file exists and is not a directory",
                                        f"spool directory {tmp_path}/a-file/sub cannot be created"]


def test_a_spool_path_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        Spool(str(tmp_path / "a-file"))


def test_run_with_a_spool_path_that_is_a_file_is_one_line(tmp_path, capsys):
    from camlytics.cli import main
    from camlytics.export.testmodels import random_model_bytes
    from tests.conftest import one_line_error

    (tmp_path / "model.cml").write_bytes(random_model_bytes(0))
    (tmp_path / "a-file").write_bytes(b"x")
    assert main(["run", str(tmp_path), "--camera", "http://127.0.0.1:9", "--spool", str(tmp_path / "a-file")]) == 2
    one_line_error(capsys, "--spool", "exists and is not a directory")


def test_config_defaults_and_validation():
    cfg = config.validate({"camera": {"url": "http://127.0.0.1:8080"}, "mqtt": {"host": "broker"}})
    assert cfg["mqtt"]["port"] == 1883 and cfg["tracker"]["stable_frames"] == 3
    with pytest.raises(config.ConfigError, match="fps"):
        config.validate({"fps": 0})
    with pytest.raises(config.ConfigError, match="unknown setting 'colour'"):
        config.validate({"colour": 1})
    with pytest.raises(config.ConfigError, match="virtual_input.port"):
        config.validate({"virtual_input": {"port": 99}})
    with pytest.raises(config.ConfigError, match="roi must be"):
        config.validate({"roi": [10, 10, 5, 20]})
    assert config.validate({"roi": [1, 2, 30, 40]})["roi"] == [1, 2, 30, 40]
    with pytest.raises(config.ConfigError, match="camera.resolution"):
        config.validate({"camera": {"resolution": "big"}})
    # states: min_confidence and active_class default to the model's say; the virtual input follows active_class
    assert (cfg["min_confidence"], cfg["active_class"]) == (None, None)
    assert config.validate({"virtual_input": {"port": 2}})["virtual_input"] == {"port": 2, "active_state": None}
    with pytest.raises(config.ConfigError, match="virtual_input.active_state must be a class name"):
        config.validate({"virtual_input": {"active_state": 1}})


def test_spool_keeps_unknown_frames_with_their_reason(tmp_path):
    from camlytics.edge.status import spool_listing

    spool = Spool(str(tmp_path / "spool"))
    spool.add(b"\xff\xd8a", "unknown", t=1)
    spool.add(b"\xff\xd8b", "flip", t=2)
    assert [(e["reason"], e["time"]) for e in spool_listing(spool)] == [("unknown", 1.0), ("flip", 2.0)]


def test_config_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(config.ConfigError, match="not valid JSON"):
        config.load(str(bad))
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(str(tmp_path / "missing.json"))
    bad.write_text(json.dumps({"mqtt": {"port": "x"}}))
    with pytest.raises(config.ConfigError, match="mqtt.port"):
        config.load(str(bad))
