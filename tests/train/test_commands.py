"""`camlytics train` and `camlytics evaluate` end to end on a small simulated dataset, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from camlytics.cli import main
from camlytics.store import Dataset

from .conftest import FAST_TRAIN, SIM_SIZE
from ..conftest import copy_dataset


def train(dataset: Path, out: Path, *extra: str) -> int:
    return main(["train", str(dataset), "--out", str(out), *FAST_TRAIN, *extra])


def test_train_writes_every_artefact(model_dir: Path) -> None:
    from camlytics.edge.model import load_model
    from camlytics.model import int8ref
    from camlytics.model.onnx_export import onnx_session
    from camlytics.model.student import load_student

    names = {p.name for p in model_dir.iterdir()}
    assert {"student.pt", "model.cml", "model.onnx", "metrics.json", "config.json", "report.html"} <= names

    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"student", "pruned", "int8"}  # no teacher without --distill
    assert metrics["macs"] <= 40000 and metrics["weight_bytes"] <= 32 * 1024
    assert metrics["classes"] == ["closed", "open"] and metrics["family"] in ("cnn", "cnn+qat")
    # out-of-fold: every labelled image was scored once, by a model that did not train on it
    assert sum(map(sum, metrics["int8"]["confusion"])) == sum(metrics["counts"].values()) == 30
    assert {"cnn", "cnn+qat", "linear gray l2=0.0001"} <= set(metrics["cv"]["candidates"])
    assert metrics["onnx_max_abs_diff"] < 1e-4

    student, meta = load_student(model_dir / "student.pt")
    assert meta["input"]["width"] == 16 and meta["input"]["color"] == "gray"
    allowed = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU, torch.nn.AdaptiveAvgPool2d, torch.nn.Flatten,
               torch.nn.Linear)
    assert isinstance(student, torch.nn.Sequential) and all(isinstance(m, allowed) for m in student)

    edge_model = load_model((model_dir / "model.cml").read_bytes())  # the camera's reader accepts it
    assert edge_model is not None
    q = int8ref.as_model(model_dir / "model.cml")
    assert q.meta["preprocess"]["roi"] == meta["input"]["roi"]
    assert q.meta["macs"] > 0 and q.input_shape == (16, 16, 1)

    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    with torch.no_grad():
        want = student(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).numpy()
    got = onnx_session(model_dir / "model.onnx").run(None, {"image": x.transpose(0, 3, 1, 2).astype(np.float32) / 255})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)

    report = (model_dir / "report.html").read_text()
    for png in ("cv.png", "learning_curve.png", "curves.png", "confusion_int8.png", "samples.png"):
        assert png in report and (model_dir / png).stat().st_size > 1000
    config = json.loads((model_dir / "config.json").read_text())
    assert config["seed"] == 0 and len(config["record_ids"]) == 30 and config["family"] == "cnn"
    folds = config["folds"]
    assert sorted(i for f in folds for i in f) == sorted(config["record_ids"])  # the folds partition the labels


def test_same_seed_gives_the_same_model(sim_dataset: Path, model_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert train(sim_dataset, again) == 0
    assert (again / "model.cml").read_bytes() == (model_dir / "model.cml").read_bytes()


def test_retraining_replaces_a_model_dir_and_refuses_other_dirs(sim_dataset: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert train(sim_dataset, other) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]  # no temporary directory left behind


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_directories_are_tidied_by_the_next_run(tmp_path: Path) -> None:
    """Only this MODEL_DIR's working directories of dead processes on this host: removed, or put back."""
    import os
    import socket

    from camlytics.train.pipeline import _side_name, remove_stale_work

    out = tmp_path / "model"
    dead, alive = _dead_pid(), os.getppid()
    host = _side_name(out, "tmp").split("@", 1)[1]
    names = {
        "dead_tmp": f".model.tmp-{dead}@{host}abc_12",
        "dead_old": f".model.old-{dead}@{host}0",
        "alive_tmp": f".model.tmp-{alive}@{host}xyz",
        "other_host": f".model.tmp-{dead}@not-{socket.gethostname()}.q",
        "other_model": f".model2.tmp-{dead}@{host}q",
        "no_pid": ".model.tmp-k2j4h5g6",  # named by an older camlytics: whose it is cannot be told
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")

    # MODEL_DIR missing: the killed run had set the previous model aside: it is put back
    done = remove_stale_work(out)
    assert (out / "config.json").is_file() and not (tmp_path / names["dead_old"]).exists()
    assert not (tmp_path / names["dead_tmp"]).exists()
    assert any(line.startswith(f"put back {out}") for line in done) and len(done) == 2
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"model"} | {names[k] for k in ("alive_tmp", "other_host", "other_model", "no_pid")}

    # MODEL_DIR present: a set-aside old model is garbage
    (tmp_path / names["dead_old"]).mkdir()
    (tmp_path / names["dead_old"] / "config.json").write_text("{}")
    assert remove_stale_work(out) == [f"removed {names['dead_old']} beside {out}, left by a run that was killed"]
    assert {p.name for p in tmp_path.iterdir()} == left


def test_the_next_run_removes_what_a_sigkilled_run_left(sim_dataset: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "model"
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "train", str(sim_dataset), "--out", str(out),
                             *FAST_TRAIN, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".model.tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(tmp_path.glob(".model.tmp-*"))
    assert len(left) == 1 and not out.exists()  # nothing could run after SIGKILL

    assert main(["train", str(sim_dataset), "--out", str(out), *FAST_TRAIN]) == 0
    assert f"removed {left[0].name} beside {out}, left by a run that was killed" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_predictor_runtimes_agree(model_dir: Path, sim_dataset: Path) -> None:
    from camlytics.frames import Frame, decode_jpeg
    from camlytics.model.predictor import load_predictor

    with Dataset.open(sim_dataset) as ds:
        records = ds.records(labelled=True)[:6]
        jpegs = [ds.read_image(r) for r in records]
    frames = [Frame(decode_jpeg(j), 0.0, "test", j) for j in jpegs]
    int8, flt = load_predictor(model_dir, "int8"), load_predictor(model_dir, "float")
    for frame in frames:
        p8, pf = int8(frame), flt(frame)
        assert set(p8) == set(pf) == {"closed", "open"}
        assert abs(sum(p8.values()) - 1) < 1e-6 and abs(sum(pf.values()) - 1) < 1e-6
    # A frame without its JPEG bytes is encoded and takes the same path.
    assert set(int8(Frame(frames[0].image, 0.0, "test"))) == {"closed", "open"}


def test_evaluate_scores_a_folder_against_a_labels_csv(model_dir: Path, sim_dataset: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    rows = []
    with Dataset.open(sim_dataset) as ds:
        for i, r in enumerate(ds.records(labelled=True)):
            (folder / f"f{i:03d}.jpg").write_bytes(ds.read_image(r))
            rows.append((f"f{i:03d}.jpg", r.label))
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows([("filename", "label"), *rows])
    out = tmp_path / "eval.json"
    for runtime in ("int8", "float"):
        assert main(["evaluate", str(model_dir), str(folder), "--labels", str(labels), "--json", str(out),
                     "--runtime", runtime]) == 0
        printed = capsys.readouterr().out
        assert "balanced accuracy" in printed and "confusion" in printed
        result = json.loads(out.read_text())
        assert result["runtime"] == runtime and result["n"] == len(rows)
        assert sum(map(sum, result["confusion"])) == len(rows)
        assert set(result["per_class"]) == {"closed", "open"}
        assert 0.0 <= result["balanced_accuracy"] <= 1.0
    assert main(["evaluate", str(model_dir), str(folder), "--labels", str(labels), "--runtime", "tpu"]) == 2
    assert "unknown runtime 'tpu'" in capsys.readouterr().err


def test_evaluate_scores_a_dataset_by_its_own_labels(model_dir: Path, sim_dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    # The same frames and labels as a folder + CSV give the same figures.
    folder, rows = tmp_path / "frames", []
    folder.mkdir()
    with Dataset.open(sim_dataset) as ds:
        for i, r in enumerate(ds.records(labelled=True)):
            (folder / f"f{i:03d}.jpg").write_bytes(ds.read_image(r))
            rows.append(f"f{i:03d}.jpg,{r.label}")
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    out_csv, out_ds = tmp_path / "csv.json", tmp_path / "ds.json"
    assert main(["evaluate", str(model_dir), str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--json", str(out_csv)]) == 0
    assert main(["evaluate", str(model_dir), str(sim_dataset), "--json", str(out_ds)]) == 0
    by_csv, by_ds = json.loads(out_csv.read_text()), json.loads(out_ds.read_text())
    assert by_ds["n"] == len(rows) == 30 and by_ds["confusion"] == by_csv["confusion"]
    assert by_ds["balanced_accuracy"] == by_csv["balanced_accuracy"]
    capsys.readouterr()
    # Without --labels, SOURCE must be a dataset, and one with labels.
    assert main(["evaluate", str(model_dir), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is not a camlytics dataset" in err and "without --labels, SOURCE must be a camlytics dataset" in err
    assert main(["evaluate", str(model_dir), str(sim_dataset), "--labels", str(tmp_path / "labels.csv")]) == 2
    assert "is a camlytics dataset: leave out --labels" in capsys.readouterr().err
    Dataset.open(tmp_path / "empty", create=True).close()
    assert main(["evaluate", str(model_dir), str(tmp_path / "empty")]) == 2
    assert "has no labelled images to evaluate on" in capsys.readouterr().err


def test_evaluate_scores_a_simulated_day_against_its_ground_truth(model_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    # The same frames written to a folder with their truth in a CSV give the same figures.
    from camlytics.sources import open_source

    spec = f"sim:office?seed=4&interval=1200&duration=43200&start=06:00&width={SIM_SIZE[0]}&height={SIM_SIZE[1]}"
    folder, rows = tmp_path / "frames", []
    folder.mkdir()
    with open_source(spec) as frames:
        for i, frame in enumerate(frames):
            (folder / f"f{i:03d}.jpg").write_bytes(frame.to_jpeg())
            rows.append(f"f{i:03d}.jpg,{frame.meta['truth']['state']}")
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    assert main(["evaluate", str(model_dir), spec, "--json", str(tmp_path / "sim.json")]) == 0
    assert main(["evaluate", str(model_dir), str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--json", str(tmp_path / "csv.json")]) == 0
    by_sim, by_csv = (json.loads((tmp_path / n).read_text()) for n in ("sim.json", "csv.json"))
    assert by_sim["n"] == len(rows) == 36 and by_sim["confusion"] == by_csv["confusion"]
    assert by_sim["unlabelled_frames"] == 0


# ---- bad input: one clear line on stderr, exit code 2, nothing left where MODEL_DIR would be ----

def _copy(src: Path, dst: Path) -> Path:
    return copy_dataset(src, dst)


def _expect_error(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture, message: str, *extra: str) -> None:
    out = tmp_path / "model"
    assert train(dataset, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("camlytics train: error:") and message in err and "\n" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.tmp")]


def test_no_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    Dataset.open(tmp_path / "empty", create=True).close()
    _expect_error(tmp_path / "empty", tmp_path, capsys, "no labelled images")


def test_one_class_only(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds_path = _copy(sim_dataset, tmp_path / "ds")
    with Dataset.open(ds_path) as ds:
        for r in ds.records(labelled=True):
            if r.label == "open":
                ds.set_label(r.id, None, "test")
    _expect_error(ds_path, tmp_path, capsys, "one class only")


def test_fewer_than_ten_per_class(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds_path = _copy(sim_dataset, tmp_path / "ds")
    with Dataset.open(ds_path) as ds:
        for r in [r for r in ds.records(labelled=True) if r.label == "open"][9:]:
            ds.set_label(r.id, None, "test")
    _expect_error(ds_path, tmp_path, capsys, "too few labelled images per class {'open': 9}")


def test_unreadable_image(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds_path = _copy(sim_dataset, tmp_path / "ds")
    with Dataset.open(ds_path) as ds:
        victim = ds.records(labelled=True)[5]
        ds.image_path(victim).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG any more")
    _expect_error(ds_path, tmp_path, capsys, f"record {victim.id}")


def test_wrong_shape_teacher_weights(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from camlytics.train.teacher import MobileNetV2

    state = MobileNetV2(1000).state_dict()
    state["features.0.0.weight"] = torch.zeros(32, 1, 3, 3)  # a grey-input variant is not torchvision's file
    torch.save(state, tmp_path / "weights.pth")
    _expect_error(sim_dataset, tmp_path, capsys, "wrong shape for features.0.0.weight", "--teacher-weights",
                  str(tmp_path / "weights.pth"))


def test_not_a_weights_file(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "weights.pth").write_bytes(b"definitely not a pickle")
    _expect_error(sim_dataset, tmp_path, capsys, "not a PyTorch state dict", "--teacher-weights",
                  str(tmp_path / "weights.pth"))
