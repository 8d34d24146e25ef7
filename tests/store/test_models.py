"""A dataset's model versions: numbered, content-named, crash-safe, shared by two writers; deploy history."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from camlytics.errors import DatasetError
from camlytics.export.testmodels import random_model_bytes
from camlytics.store import Dataset
from camlytics.store.models import (
    deployed,
    get_model,
    list_models,
    record_deploy,
    record_model,
    rollback_target,
)


def make_model_dir(path: Path, seed: int, record_ids: list[int] | None = None, dataset: str = "ds") -> Path:
    """A model directory as `camlytics train` writes it (model.cml, metrics.json, config.json, report.html)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.cml").write_bytes(random_model_bytes(seed))
    metrics = {"family": "linear", "shipped": "linear-gray", "classes": ["closed", "open"],
               "counts": {"closed": 2, "open": 1}, "input": {"width": 32, "height": 16}, "macs": 512,
               "cv": {"folds": 3, "shipped": {"name": "linear-gray", "mean": 0.9 + seed / 1000, "std": 0.01}}}
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "config.json").write_text(json.dumps({"dataset": dataset, "record_ids": record_ids or []}))
    (path / "report.html").write_text(f"<html>report {seed}</html>")
    (path / "student.pt").write_bytes(b"large host-only weights")
    return path


@pytest.fixture
def labelled(tmp_path, make_jpeg, add_image) -> Path:
    """A dataset with three labelled records."""
    root = tmp_path / "ds"
    with Dataset.open(root, create=True) as ds:
        for i, label in enumerate(("closed", "closed", "open")):
            ds.set_label(add_image(ds, make_jpeg(i), t=float(i)), label, "test")
    return root


def test_record_numbers_versions_and_keeps_the_model_files(labelled, tmp_path):
    first = record_model(labelled, make_model_dir(tmp_path / "m1", 1, [1, 2, 3]))
    second = record_model(labelled, make_model_dir(tmp_path / "m2", 2, [1, 2, 3]))
    sha = hashlib.sha256(random_model_bytes(1)).hexdigest()
    assert (first.version, first.counter, first.sha256) == (f"v1-{sha[:8]}", 1, sha)
    assert second.counter == 2 and second.version.startswith("v2-")
    assert first.path == labelled.absolute() / "models" / first.version
    assert first.model_file.read_bytes() == random_model_bytes(1)
    assert (first.path / "report.html").read_text() == "<html>report 1</html>"
    assert not (first.path / "student.pt").exists()  # host-only weights stay in the model directory
    assert first.summary["shipped"] == "linear-gray" and first.summary["cv_mean"] == pytest.approx(0.901)
    assert first.summary["counts"] == {"closed": 2, "open": 1} and first.summary["macs"] == 512
    assert [v.version for v in list_models(labelled)] == [first.version, second.version]


def test_the_same_model_bytes_are_the_same_version(labelled, tmp_path):
    first = record_model(labelled, make_model_dir(tmp_path / "m1", 1))
    again = record_model(labelled, make_model_dir(tmp_path / "copy", 1))
    assert again == first and len(list_models(labelled)) == 1


def test_the_data_digest_says_what_the_model_saw(labelled, tmp_path):
    a = record_model(labelled, make_model_dir(tmp_path / "a", 1, [1, 2, 3]))
    assert a.data["records"] == 3 and a.data["missing"] == 0 and a.data["per_class"] == {"closed": 2, "open": 1}
    with Dataset.open(labelled) as ds:
        ds.set_label(3, "closed", "test")  # a label changed: the next model saw other data
    b = record_model(labelled, make_model_dir(tmp_path / "b", 2, [1, 2, 3]))
    assert b.data["digest"] != a.data["digest"]
    # A model trained on another dataset still records; its ids are not this dataset's records.
    foreign = record_model(labelled, make_model_dir(tmp_path / "c", 3, [7, 8], dataset="/elsewhere"))
    assert foreign.data["missing"] == 2 and foreign.data["trained_on"] == "/elsewhere"


def test_get_model_by_counter_name_or_hash_prefix(labelled, tmp_path):
    v1 = record_model(labelled, make_model_dir(tmp_path / "m1", 1))
    v2 = record_model(labelled, make_model_dir(tmp_path / "m2", 2))
    assert get_model(labelled, "v2") == v2
    assert get_model(labelled, v1.version) == v1
    assert get_model(labelled, v2.sha256[:6]) == v2
    with pytest.raises(DatasetError, match=rf"no model version 'v9'.*versions: {v1.version}, {v2.version}"):
        get_model(labelled, "v9")
    with pytest.raises(DatasetError, match="no model version 'nonsense'"):
        get_model(labelled, "nonsense")


def test_bad_inputs_are_one_line_errors(labelled, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        record_model(tmp_path / "nowhere", make_model_dir(tmp_path / "m", 1))
    with pytest.raises(DatasetError, match="has no model.cml"):
        (tmp_path / "empty").mkdir()
        record_model(labelled, tmp_path / "empty")
    with pytest.raises(DatasetError, match="is not a camlytics dataset"):
        (tmp_path / "plain").mkdir()
        record_model(tmp_path / "plain", make_model_dir(tmp_path / "m", 1))
    assert list_models(labelled) == []


def test_deploy_history_and_rollback_targets(labelled, tmp_path):
    v1, v2, v3 = (record_model(labelled, make_model_dir(tmp_path / f"m{i}", i)) for i in (1, 2, 3))
    with pytest.raises(DatasetError, match="nothing to roll back"):
        rollback_target(labelled, "lobby")
    record_deploy(labelled, "v1", "lobby")
    with pytest.raises(DatasetError, match="nothing earlier"):
        rollback_target(labelled, "lobby")
    record_deploy(labelled, "v2", "lobby")
    record_deploy(labelled, "v2", "lobby")  # deployed twice: still one step back to v1
    record_deploy(labelled, "v3", "garage")
    assert [v for v, _ in deployed(labelled, "lobby")] == [v1.version, v2.version, v2.version]
    assert rollback_target(labelled, "lobby") == v1
    record_deploy(labelled, v1.version, "lobby", rollback=True)
    with pytest.raises(DatasetError, match="nothing earlier"):  # a rollback undoes its deploy: no ping-pong
        rollback_target(labelled, "lobby")
    record_deploy(labelled, "v3", "lobby")
    assert rollback_target(labelled, "lobby") == v1
    assert [v for v, _ in deployed(labelled, "garage")] == [v3.version]
    with pytest.raises(DatasetError, match="no model version 'v7'"):
        record_deploy(labelled, "v7", "lobby")


RECORDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from camlytics.export.testmodels import random_model_bytes
    from camlytics.store.models import record_model

    dataset, work, first, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print("ready", flush=True)
    for seed in range(first, first + count):
        model_dir = work / str(seed)
        model_dir.mkdir(parents=True)
        (model_dir / "model.cml").write_bytes(random_model_bytes(seed))
        (model_dir / "metrics.json").write_text('{"shipped": "linear-gray"}')
        (model_dir / "report.html").write_text("<html></html>")
        print(record_model(dataset, model_dir).version, flush=True)
    """
)


def recorder(dataset: Path, work: Path, first: int, count: int) -> subprocess.Popen:
    """A process recording `count` models (seeds first..) into the dataset."""
    return subprocess.Popen([sys.executable, "-c", RECORDER, str(dataset), str(work), str(first), str(count)],
                            stdout=subprocess.PIPE, text=True)


def check_versions(dataset: Path) -> list[str]:
    """Every listed version complete (model.cml hashes to its name), numbered 1..n, no temp left after a record."""
    versions = list_models(dataset)
    assert [v.counter for v in versions] == list(range(1, len(versions) + 1))
    for v in versions:
        data = v.model_file.read_bytes()
        assert hashlib.sha256(data).hexdigest() == v.sha256 and v.version.endswith(v.sha256[:8])
        assert (v.path / "metrics.json").is_file() and (v.path / "report.html").is_file()
    assert len({v.sha256 for v in versions}) == len(versions)
    return [v.version for v in versions]


def test_kill_9_while_recording_leaves_consistent_versions(labelled, tmp_path):
    rng = random.Random(26)
    seen: list[str] = []
    for round_ in range(6):
        proc = recorder(labelled, tmp_path / "work", 100 * round_, 1000)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        now = check_versions(labelled)
        assert now[:len(seen)] == seen  # nothing recorded was lost or renumbered
        seen = now
    assert seen
    record_model(labelled, make_model_dir(tmp_path / "after", 99999))  # the next record cleans up the temps
    assert not list((labelled / "models").glob(".tmp-*"))
    assert check_versions(labelled)[-1].startswith(f"v{len(seen) + 1}-")


def test_two_processes_recording_at_once_never_share_a_number(labelled, tmp_path):
    procs = [recorder(labelled, tmp_path / f"w{i}", 1000 * (i + 1), 15) for i in range(2)]
    outputs = [proc.communicate(timeout=120)[0].split()[1:] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    versions = check_versions(labelled)
    assert len(versions) == 30 and sorted(outputs[0] + outputs[1]) == sorted(versions)


def test_models_command_lists_versions_with_where_they_run(labelled, tmp_path, capsys, monkeypatch):
    from camlytics.cli import main
    from tests.conftest import one_line_error

    monkeypatch.setenv("COLUMNS", "200")  # one table row per line

    assert main(["models", str(labelled)]) == 0
    assert "no model versions yet" in capsys.readouterr().out
    v1 = record_model(labelled, make_model_dir(tmp_path / "m1", 1, [1, 2, 3]))
    v2 = record_model(labelled, make_model_dir(tmp_path / "m2", 2, [1, 2, 99]))
    record_deploy(labelled, "v1", "http://127.0.0.1:8081")
    record_deploy(labelled, "v2", "lobby")
    assert main(["models", str(labelled)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ v")}
    assert set(rows) == {v1.version, v2.version}
    assert "90.10% +- 1.00" in rows[v1.version] and "closed 2, open 1" in rows[v1.version]
    assert "http://127.0.0.1:8081" in rows[v1.version] and "lobby" in rows[v2.version]
    assert main(["models", str(labelled), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["version"], m["deployed"]) for m in listed] == [(v1.version, ["http://127.0.0.1:8081"]),
                                                                (v2.version, ["lobby"])]
    assert listed[1]["data"]["missing"] == 1 and listed[0]["summary"]["shipped"] == "linear-gray"
    assert main(["models", str(tmp_path / "nowhere")]) == 2
    one_line_error(capsys, "does not exist")
