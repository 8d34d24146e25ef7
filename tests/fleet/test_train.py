"""`camlytics fleet train` on a local Ray runtime: each sensor's model equals `camlytics train` on its dataset (the
same bytes), only sensors whose labels changed train again, a failing sensor is reported without stopping the
others, and Ctrl-C or SIGTERM stop it with no Ray process and no temporary directory left behind. The tasks
train on a copy of the dataset shipped with them, as they would on another node of a cluster."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.fleet.config import load_fleet
from camlytics.fleet.train import plan_job
from camlytics.store import Dataset
from camlytics.store.models import list_models
from tests.conftest import build_sim_dataset, one_line_error

# Two tiny sensors: a linear-only one, and one that trains the CNN too (one epoch, a small pool) so that the
# torch path runs in a Ray worker as well; a third whose labels are all of one class fails.
FLEET = """\
[fleet]
root = "."
[[camera]]
name = "cam00"
url = "http://127.0.0.1:9"
  [[camera.sensor]]
  name = "door"
  train = {{ family = "linear", folds = 2 }}
[[camera]]
name = "cam01"
url = "http://127.0.0.1:9"
  [[camera.sensor]]
  name = "door"
  train = {{ epochs = 1, pool = 64, folds = 2, seed = 3 }}
  [[camera.sensor]]
  name = "onecls"
{extra}
"""
TRAIN_ARGS = {"cam00/door": ["--family", "linear", "--folds", "2"],
              "cam01/door": ["--epochs", "1", "--pool", "64", "--folds", "2", "--seed", "3"]}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    """The labelled datasets of the fleet, built once (copied by each test that changes them)."""
    root = tmp_path_factory.mktemp("fleet-datasets")
    build_sim_dataset(root / "cam00" / "door", "office", seed=0, n_per_class=16)
    build_sim_dataset(root / "cam01" / "door", "warehouse", seed=1, n_per_class=16)
    one = build_sim_dataset(root / "cam01" / "onecls", "home", seed=2, n_per_class=12)
    with Dataset.open(one) as ds:
        ds.set_labels({r.id: "closed" for r in ds.records(labelled=True)}, "test")
    return root


@pytest.fixture
def fleet_file(datasets: Path, tmp_path: Path) -> Path:
    """A fleet file whose root holds a copy of the datasets (the cameras are never contacted by training)."""
    shutil.copytree(datasets, tmp_path / "fleet" / "datasets")
    path = tmp_path / "fleet" / "fleet.toml"
    path.write_text(FLEET.format(extra=""))
    return path


@pytest.fixture
def ray_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a `fleet train` subprocess: a short Ray temp dir of its own (Ray's socket paths must
    stay short), a TMPDIR where the tasks unpack their data and train, and a marker every process it starts
    inherits, to find any it left behind."""
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    (tmp_path / "tmp").mkdir()
    try:
        yield {**os.environ, "RAY_TMPDIR": ray_tmp, "TMPDIR": str(tmp_path / "tmp"),
               "CAMLYTICS_TEST_RUN": uuid.uuid4().hex}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def fleet_train(fleet_file: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "camlytics", "fleet", "train", "--fleet", str(fleet_file), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def processes_with(marker: str) -> list[int]:
    """Process ids whose environment holds CAMLYTICS_TEST_RUN=marker (Ray's GCS, raylet, workers...)."""
    needle = f"CAMLYTICS_TEST_RUN={marker}".encode()
    found = []
    for environ in glob.glob("/proc/[0-9]*/environ"):
        try:
            with open(environ, "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(environ.split("/")[2]))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def row(stdout: str, key: str) -> str:
    """The final table's line of sensor `key` (its first line; a long status wraps)."""
    return next(line for line in stdout.splitlines() if f" {key} " in line)


def test_models_equal_camlytics_train_and_only_changed_sensors_retrain(fleet_file: Path, ray_env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    fleet = load_fleet(fleet_file)
    result = fleet_train(fleet_file, ray_env)
    assert result.returncode == 2, result.stderr
    # the sensor with one class failed, and said why; the other two trained regardless
    assert result.stderr.strip().splitlines()[-1] == \
        "camlytics fleet: error: 1 of 3 sensors failed: cam01/onecls (see the table)"
    assert "failed: dataset" in row(result.stdout, "cam01/onecls")
    assert f"cam01/onecls: failed: dataset {fleet.sensor('cam01/onecls').dataset} has labels of one class only" \
        in result.stderr
    for key, args in TRAIN_ARGS.items():
        sensor = fleet.sensor(key)
        assert "trained: no model yet" in row(result.stdout, key)
        reference = tmp_path / "reference" / key
        assert main(["train", str(sensor.dataset), "--out", str(reference), "--quiet", *args]) == 0
        fleet_bytes = (sensor.model_dir / "model.cml").read_bytes()
        assert fleet_bytes == (reference / "model.cml").read_bytes(), key
        versions = list_models(sensor.dataset)  # recorded, once (camlytics train found the same bytes there)
        assert [v.sha256 for v in versions] == [hashlib.sha256(fleet_bytes).hexdigest()]
        assert versions[0].version in row(result.stdout, key)
        # trained on a shipped copy of the dataset; the files name the sensor's own dataset
        assert json.loads((sensor.model_dir / "config.json").read_text())["dataset"] == str(sensor.dataset)
    assert not processes_with(ray_env["CAMLYTICS_TEST_RUN"])
    assert not list(Path(ray_env["TMPDIR"]).glob("camlytics-*"))  # the tasks' and the packer's directories

    # nothing changed: nothing trains, and Ray is not even started
    again = fleet_train(fleet_file, ray_env, "--only", "cam00/door", "cam01/door")
    assert again.returncode == 0, again.stderr
    assert "up to date (32 labels)" in row(again.stdout, "cam00/door")
    assert "up to date (32 labels)" in row(again.stdout, "cam01/door")
    assert "0 trained, 2 up to date, 0 failed" in again.stdout

    # a train setting that shapes the model changes: the sensor is planned again; the fold processes do not count
    fleet_file.write_text(FLEET.format(extra="").replace("family = \"linear\", folds = 2",
                                                         "family = \"linear\", folds = 2, seed = 7"))
    changed = load_fleet(fleet_file)
    assert plan_job(changed, changed.sensor("cam00/door"), force=False, jobs=1).reason == "settings changed (seed)"
    assert plan_job(changed, changed.sensor("cam01/door"), force=False, jobs=2).skip == "up to date (32 labels)"
    fleet_file.write_text(FLEET.format(extra=""))

    # one label changes on cam00: that sensor alone trains, into a second version
    with Dataset.open(fleet.sensor("cam00/door").dataset) as ds:
        first = ds.records(labelled=True)[0]
        ds.set_label(first.id, "open" if first.label == "closed" else "closed", "test")
    third = fleet_train(fleet_file, ray_env, "--only", "cam00/door", "cam01/door")
    assert third.returncode == 0, third.stderr
    assert "trained: labels changed" in row(third.stdout, "cam00/door")
    assert "up to date" in row(third.stdout, "cam01/door")
    assert len(list_models(fleet.sensor("cam00/door").dataset)) == 2


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_ends_training_and_every_ray_process(fleet_file: Path, ray_env: dict[str, str],
                                                           stop: signal.Signals) -> None:
    models, tmp = fleet_file.parent / "models", Path(ray_env["TMPDIR"])
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "fleet", "train", "--fleet", str(fleet_file),
                             "--only", "cam00/door", "cam01/door"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ray_env)
    try:
        while not list(tmp.glob("camlytics-fleet-*/model/.door.tmp-*")):  # a task is training
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + stop, err
    assert err.strip().splitlines()[-1] == "camlytics fleet: interrupted"
    assert not processes_with(ray_env["CAMLYTICS_TEST_RUN"])
    assert not list(tmp.glob("camlytics-*"))  # the cancelled tasks removed their temporary directories
    assert not list(models.glob("*/.door.*"))


def test_a_bad_train_option_is_one_error_line_before_any_training(fleet_file: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    fleet_file.write_text(FLEET.format(extra='  train = { colour = "rgb" }'))
    assert main(["fleet", "train", "--fleet", str(fleet_file)]) == 2
    one_line_error(capsys, f"{fleet_file}: sensor cam01/onecls: train: option 'colour' cannot be set here",
                   "known: ", "color")
    fleet_file.write_text(FLEET.format(extra='  train = { epochs = "many" }'))
    assert main(["fleet", "train", "--fleet", str(fleet_file)]) == 2
    one_line_error(capsys, "sensor cam01/onecls: train.epochs:", "'many'")
    fleet_file.write_text(FLEET.format(extra="  train = { seed = -1 }"))
    assert main(["fleet", "train", "--fleet", str(fleet_file)]) == 2
    one_line_error(capsys, "sensor cam01/onecls: train: seed must be a whole number")
    assert not (fleet_file.parent / "models").exists()


def test_an_unreachable_ray_address_is_one_error_line(fleet_file: Path, free_port: int,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["fleet", "train", "--fleet", str(fleet_file), "--quiet", "--ray-address",
                 f"127.0.0.1:{free_port}"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"camlytics fleet: error: cannot reach the Ray cluster at "
                                                   f"127.0.0.1:{free_port}: "), err
    assert "Traceback" not in err
    assert not (fleet_file.parent / "models").exists()


def test_a_task_no_node_can_hold_is_one_error_line(fleet_file: Path, ray_env: dict[str, str]) -> None:
    result = fleet_train(fleet_file, ray_env, "--only", "cam00/door", "--memory-per-task", str(2**30))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"camlytics fleet: error: no Ray node has the 1 CPU and {2**30} MB one task asks for (nodes: "), result.stderr
    assert not processes_with(ray_env["CAMLYTICS_TEST_RUN"])
