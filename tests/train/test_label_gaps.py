""""Do I have enough labels?" names the class x light cells the labels hardly cover (an open door never labelled at
night), which no cross-validation can measure."""

from __future__ import annotations

import json
from pathlib import Path

from camlytics.cli import main
from camlytics.store import Dataset
from camlytics.store.light import light_conditions
from camlytics.train.pipeline import GAP_MIN_LABELS, label_gaps


def test_a_class_hardly_labelled_in_a_light_the_dataset_has_is_a_gap() -> None:
    cells = {("closed", "day"): 60, ("open", "day"): 80, ("closed", "ir"): 40, ("open", "ir"): 3,
             ("closed", "dim"): 2, ("open", "dim"): 1}  # dim: 3 labels in all, too few to judge
    assert label_gaps(cells, ["closed", "open"]) == [{"class": "open", "light": "ir", "labels": 3}]
    cells[("open", "ir")] = GAP_MIN_LABELS
    assert label_gaps(cells, ["closed", "open"]) == []
    # a class never labelled in that light at all is the first gap named
    assert label_gaps({("empty", "night"): 30, ("occupied", "day"): 30, ("empty", "day"): 30, ("occupied", "night"): 9},
                      ["empty", "occupied", "unknown"]) == [{"class": "occupied", "light": "night", "labels": 9}]


def _door_open_only_by_day(path: Path) -> Path:
    """Office frames: 40 closed at night (01:00-04:00), 40 closed and 60 open from the day's door events."""
    import numpy as np

    from camlytics.sim.camera import shared_scene

    scene = shared_scene("office", 0, 640, 360)
    rng = np.random.default_rng(0)
    opened = [t for e in scene.timeline.events for t in np.arange(e.start, e.end, 4.0) if 8 * 3600 < t < 17 * 3600]
    times = [*rng.uniform(3600, 4 * 3600, 40), *rng.uniform(9 * 3600, 16 * 3600, 80), *rng.permutation(opened)]
    counts = {"open": 0, "closed": 0}
    with Dataset.open(path, create=True) as ds:
        ds.set_roi(scene.door_roi)
        for t in times:
            truth = scene.truth(float(t))
            if counts[truth["state"]] >= (80 if truth["state"] == "closed" else 60):
                continue
            frame = scene.frame(float(t))
            rid = ds.add_image(frame.jpeg, timestamp=float(t), source=frame.source, sampler="test", reason="truth",
                               score=0.0, meta={"truth": truth})
            ds.set_label(rid, truth["state"], "simulator")
            counts[truth["state"]] += 1
    return path


def test_train_names_the_gap_in_its_advice(tmp_path: Path) -> None:
    ds_path = _door_open_only_by_day(tmp_path / "ds")
    with Dataset.open(ds_path) as ds:
        records = ds.records(labelled=True)
        light = light_conditions(ds, records)
        assert sum(1 for r in records if r.label == "closed" and light[r.id] != "day") >= GAP_MIN_LABELS
        assert not any(r.label == "open" and light[r.id] != "day" for r in records)
    out = tmp_path / "model"
    assert main(["train", str(ds_path), "--out", str(out), "--family", "linear", "--quiet"]) == 0
    more = json.loads((out / "metrics.json").read_text())["more_labels"]
    assert any(g["class"] == "open" and g["labels"] == 0 for g in more["gaps"])
    assert more["verdict"] == "more" and more["advice"].startswith("hardly labelled: open in ")
