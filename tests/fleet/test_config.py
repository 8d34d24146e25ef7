"""The fleet file: what it reads, and one FleetError line naming the file, the key and the value otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.errors import FleetError
from camlytics.fleet.config import load_fleet

GOOD = """
[fleet]
root = "data"
concurrency = 4
[mqtt]
host = "127.0.0.1"
port = 1884
prefix = "site1"
password_env = "MQTT_PASSWORD"
[[camera]]
name = "lobby"
url = "http://127.0.0.1:8081"
username_env = "LOBBY_USER"
password_env = "LOBBY_PASSWORD"
interval = 2.5
resolution = "640x360"
  [[camera.sensor]]
  name = "front-door"
  roi = [10, 20, 110, 220]
  classes = ["closed", "open", "ajar"]
  check = "check/front-door"
  collect = { sampler = "time", budget = 50, every = 60 }
  train = { family = "auto", seed = 1, folds = 3 }
  [[camera.sensor]]
  name = "gate"
[[camera]]
name = "dock"
url = "http://127.0.0.1:8082/"
  [[camera.sensor]]
  name = "door"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


def test_a_fleet_file_is_read_with_its_defaults(tmp_path):
    fleet = load_fleet(write(tmp_path, GOOD))
    assert fleet.root == (tmp_path / "data").resolve() and fleet.concurrency == 4
    assert fleet.mqtt.port == 1884 and fleet.mqtt.prefix == "site1" and fleet.mqtt.username_env is None
    assert [s.key for s in fleet.sensors()] == ["lobby/front-door", "lobby/gate", "dock/door"]
    lobby = fleet.camera("lobby")
    assert lobby.interval == 2.5 and lobby.resolution == "640x360" and lobby.password_env == "LOBBY_PASSWORD"
    door = fleet.sensor("lobby/front-door")
    assert door.roi == (10, 20, 110, 220) and door.classes == ("closed", "open", "ajar")
    assert door.check == fleet.root / "check/front-door"
    assert dict(door.collect) == {"sampler": "time", "budget": 50, "every": 60.0}
    assert dict(door.train) == {"family": "auto", "seed": 1, "folds": 3}
    assert door.dataset == fleet.root / "datasets/lobby/front-door"
    assert door.model_dir == fleet.root / "models/lobby/front-door"
    gate = fleet.sensor("lobby/gate")  # the defaults: camlytics collect's and the dataset's
    assert gate.roi is None and gate.classes == ("closed", "open") and gate.check is None
    assert dict(gate.collect) == {"sampler": "smart", "budget": 300} and dict(gate.train) == {}
    dock = fleet.camera("dock")
    assert dock.interval == 5 and dock.resolution is None and dock.credentials() == (None, None)


def test_credentials_come_from_the_environment(tmp_path, monkeypatch):
    lobby = load_fleet(write(tmp_path, GOOD)).camera("lobby")
    monkeypatch.setenv("LOBBY_USER", "viewer")
    monkeypatch.delenv("LOBBY_PASSWORD", raising=False)
    with pytest.raises(FleetError, match="camera 'lobby': environment variable LOBBY_PASSWORD is not set"):
        lobby.credentials()
    monkeypatch.setenv("LOBBY_PASSWORD", "s3cret")
    assert lobby.credentials() == ("viewer", "s3cret")


def test_unknown_sensor_and_camera_list_the_known_ones(tmp_path):
    fleet = load_fleet(write(tmp_path, GOOD))
    with pytest.raises(FleetError, match=r"no sensor 'lobby/door' \(known: lobby/front-door, lobby/gate, dock/door\)"):
        fleet.sensor("lobby/door")
    with pytest.raises(FleetError, match=r"no camera 'hall' \(known: lobby, dock\)"):
        fleet.camera("hall")


@pytest.mark.parametrize("old, new, message", [
    ('url = "http://127.0.0.1:8081"', 'url = "http://root:pass@127.0.0.1:8081"',
     r"camera\[0\] \(lobby\)\.url: must not hold user:password"),
    ('name = "lobby"', 'name = "Lobby 1"', r"camera\[0\]\.name: must be a name of 1-32 characters a-z 0-9 _ -, "
     r"got 'Lobby 1'"),
    ('name = "dock"', 'name = "lobby"', r"camera\[1\]\.name: camera name 'lobby' is used twice"),
    ('name = "gate"', 'name = "front-door"', r"camera\[0\] \(lobby\)\.sensor\[1\]\.name: sensor name 'front-door' "
     "is used twice"),
    ("roi = [10, 20, 110, 220]", "roi = [110, 20, 10, 220]",
     r"fleet.toml: camera\[0\] \(lobby\)\.sensor\[0\] \(front-door\)\.roi must satisfy 0 <= x0 < x1"),
    ('classes = ["closed", "open", "ajar"]', 'classes = ["open"]', r"sensor\[0\] \(front-door\)\.classes must be "
     "at least two distinct names"),
    ("interval = 2.5", "interval = 0", r"camera\[0\] \(lobby\)\.interval must be a positive number, got 0"),
    ("concurrency = 4", "concurrency = 2.5", r"fleet\.concurrency must be a positive whole number, got 2.5"),
    ('resolution = "640x360"', 'resolution = "big"', r"\.resolution: resolution must be WIDTHxHEIGHT"),
    ("port = 1884", "port = 70000", r"mqtt\.port: must be a port number 1\.\.65535, got 70000"),
    ('password_env = "MQTT_PASSWORD"', 'password_env = "hunter 2"', r"mqtt\.password_env: must be the name of an "
     "environment variable"),
    ('username_env = "LOBBY_USER"', 'usernme_env = "LOBBY_USER"', r"camera\[0\]: unknown key "
     "'usernme_env'"),
    ('sampler = "time"', 'sampler = "best"', r"collect\.sampler: must be one of smart, time"),
    ("budget = 50", "budget = -1", r"collect\.budget must be a positive whole number, got -1"),
    ("family = \"auto\"", "budget-macs = 100", r"train: option 'budget-macs' is not a `camlytics train` option "
     r"name \(write 'budget_macs'\)"),
    ('url = "http://127.0.0.1:8082/"', 'url = "ftp://127.0.0.1"', r"camera\[1\] \(dock\)\.url: camera URL must look"),
])
def test_every_bad_value_is_one_error_naming_file_key_and_value(tmp_path, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(FleetError, match=message) as info:
        load_fleet(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_two_sensors_that_would_share_an_app_name_are_refused(tmp_path):
    # lobby/front-door and lobby_front/door: both camlytics_lobby_front_door on the camera
    with pytest.raises(FleetError, match=r"sensors lobby/front-door and lobby_front/door would share the app name "
                                         r"and MQTT node 'lobby_front_door'; rename one"):
        load_fleet(write(tmp_path, GOOD.replace('name = "dock"', 'name = "lobby_front"')))


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FleetError, match="fleet file .*nope.toml not found"):
        load_fleet(tmp_path / "nope.toml")
    with pytest.raises(FleetError, match="not valid TOML"):
        load_fleet(write(tmp_path, "[fleet\n"))
    with pytest.raises(FleetError, match=r"camera: the file must list at least one \[\[camera\]\] table"):
        load_fleet(write(tmp_path, "[fleet]\n"))
    with pytest.raises(FleetError, match=r"camera\[0\] \(a\): must list at least one \[\[camera.sensor\]\]"):
        load_fleet(write(tmp_path, '[[camera]]\nname = "a"\nurl = "http://h"\n'))


def test_the_fleet_command_lists_its_subcommands(capsys):
    assert main(["fleet"]) == 1
    assert "fleet" in capsys.readouterr().out
