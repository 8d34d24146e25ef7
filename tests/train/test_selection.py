"""What ships: the linear baseline or the CNN, by cross-validation; its input shaped like the ROI; the report says
which and why, and whether more labels would help."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from camlytics.cli import main
from camlytics.store import Dataset

from .conftest import shared
from ..conftest import copy_dataset

TINY_CNN = ["--input", "16x16", "--budget-macs", "40000", "--epochs", "teacher=2,student=3,finetune=1,qat=1", "--pool", "192", "--quiet"]


@pytest.fixture(scope="session")
def auto_model(sim_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`camlytics train` with its own choice (`--family auto`) on the 30-frame office dataset."""
    def build(path: Path) -> None:
        assert main(["train", str(sim_dataset), "--out", str(path), *TINY_CNN]) == 0
    return shared(tmp_path_factory, "train-auto-model", build)


def test_the_better_candidate_by_cross_validation_ships_and_the_report_says_why(auto_model: Path) -> None:
    from camlytics.edge.model import load_model
    from camlytics.train.crossval import rank_key

    metrics = json.loads((auto_model / "metrics.json").read_text())
    cands = metrics["cv"]["candidates"]
    assert {c["family"] for c in cands.values()} >= {"linear", "cnn", "cnn+qat"}
    shipped = metrics["shipped"]
    # nothing that cross-validation scored higher was passed over
    assert all(rank_key(c) <= rank_key(cands[shipped]) for c in cands.values())
    for c in cands.values():
        assert len(c["folds"]) == metrics["cv"]["folds"] == 3 and 0 <= c["mean"] <= 1
    report = (auto_model / "report.html").read_text()
    assert "What shipped, and why" in report and shipped in report and metrics["cv"]["shipped"]["why"][:40] in report
    assert "Would more labels help?" in report and metrics["more_labels"]["advice"][:30] in report
    assert metrics["more_labels"]["verdict"] in ("enough", "more", "harder")
    load_model((auto_model / "model.cml").read_bytes())  # the camera's reader takes whichever shipped


def test_the_linear_baseline_is_one_int8_layer_over_the_roi(sim_dataset: Path, tmp_path: Path) -> None:
    """`--family linear` ships the baseline (and trains no CNN): one full-input convolution, shaped like the ROI,
    running on the edge runtime with the host reference's logits."""
    from camlytics.edge.infer import Network
    from camlytics.model import int8ref
    from camlytics.model.inputs import InputSpec, load_input

    out = tmp_path / "linear"
    assert main(["train", str(sim_dataset), "--out", str(out), "--family", "linear", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["family"] == "linear" and set(f["family"] for f in metrics["cv"]["candidates"].values()) == {"linear"}
    q = int8ref.as_model(out / "model.cml")
    assert [layer["op"] for layer in q.meta["layers"]] == ["conv2d"]
    h, w, _ = q.input_shape
    roi = q.meta["preprocess"]["roi"]
    assert (h > w) == (roi[3] - roi[1] > roi[2] - roi[0])  # tall ROI, tall input
    spec = InputSpec.from_model_meta(q.meta)
    net = Network((out / "model.cml").read_bytes(), backend="pure")
    with Dataset.open(sim_dataset) as ds:
        for r in ds.records(labelled=True)[:4]:
            x = load_input(ds.read_image(r), spec)
            assert list(net.run(x.tobytes())) == int8ref.forward(q, x).tolist()


def test_a_narrow_roi_is_no_error_and_is_upscaled(sim_dataset: Path, tmp_path: Path) -> None:
    """Issue 25: a ROI smaller than the default input used to stop training; now the input follows the ROI."""
    ds = tmp_path / "narrow"
    copy_dataset(sim_dataset, ds)
    out = tmp_path / "model"
    assert main(["train", str(ds), "--out", str(out), "--roi", "150,20,166,60", "--family", "linear",
                 "--quiet"]) == 0
    inp = json.loads((out / "metrics.json").read_text())["input"]
    assert inp["height"] > inp["width"] and inp["width"] * inp["height"] > 16 * 40  # tall, and upscaled


def test_the_confidence_floor_is_written_for_the_edge(auto_model: Path) -> None:
    from camlytics.edge.model import load_model

    metrics = json.loads((auto_model / "metrics.json").read_text())
    model = load_model((auto_model / "model.cml").read_bytes())
    floor = metrics["min_confidence"]
    assert 0 <= floor < 1
    assert (model.min_confidence or 0.0) == pytest.approx(floor)


def test_min_confidence_and_family_are_checked(sim_dataset: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    assert main(["train", str(sim_dataset), "--out", str(tmp_path / "m"), "--min-confidence", "1.5"]) == 2
    assert "min-confidence must be in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(sim_dataset), "--out", str(tmp_path / "m"), "--family", "forest"])
    assert not (tmp_path / "m").exists()


def test_confidence_floor_costs_at_most_one_percent_of_right_answers() -> None:
    from camlytics.train.pipeline import _confidence_floor

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    top = np.where(rng.random(1000) < 0.97, rng.uniform(0.9, 1.0, 1000), rng.uniform(0.5, 0.9, 1000))
    probs = np.where(y[:, None] == np.arange(2), top[:, None], 1 - top[:, None])
    floor = _confidence_floor(probs, y)
    assert np.mean(top < floor) <= 0.01 and floor >= 0.55
    assert _confidence_floor(np.full((10, 2), 0.5), np.zeros(10, np.int64)) in (0.0,)  # nothing confident: none


def test_colour_is_tried_by_the_baseline_and_taken_by_the_cnn_only_when_it_wins() -> None:
    from camlytics.train.pipeline import TrainConfig, _cnn_color

    def s(color: str, mean: float) -> dict:
        return {"family": "linear", "mean": mean, "std": 0.0, "log_loss": 0.1, "folds": [mean],
                "settings": {"l2": 1e-3, "color": color}}
    auto = TrainConfig()
    assert auto.color == "auto"
    assert _cnn_color(auto, {"a": s("gray", 0.95), "b": s("rgb", 0.97)}) == "rgb"
    assert _cnn_color(auto, {"a": s("gray", 0.97), "b": s("rgb", 0.97)}) == "gray"  # a tie: grey is cheaper
    assert _cnn_color(TrainConfig(color="gray"), {"a": s("gray", 0.9), "b": s("rgb", 0.99)}) == "gray"


def test_an_occupancy_spot_where_colour_carries_the_state(tmp_path: Path) -> None:
    """The parking preset (a red car in the bay): both colours cross-validated for the baseline, classes
    empty/occupied, and the shipped model runs on the camera's reader."""
    from camlytics.edge.model import load_model
    from camlytics.sim import Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    scene = Scene("parking", 4, 320, 180)
    times = state_times(scene, counts={"occupied": 14, "empty": 16}, rng=np.random.default_rng(4), step=5.0)
    ds = tmp_path / "parking"
    build_sim_dataset(ds, "parking", 4, times, width=320, height=180)
    out = tmp_path / "model"
    assert main(["train", str(ds), "--out", str(out), "--family", "linear", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["empty", "occupied"]
    colours = {c["settings"]["color"] for c in metrics["cv"]["candidates"].values()}
    assert colours == {"gray", "rgb"}
    shipped = metrics["cv"]["candidates"][metrics["shipped"]]
    assert metrics["input"]["color"] == shipped["settings"]["color"]
    assert load_model((out / "model.cml").read_bytes()).meta["classes"] == ["empty", "occupied"]
