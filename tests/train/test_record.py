"""`camlytics train` records each model it writes as the dataset's next version (unless --no-record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.store.models import list_models

from .conftest import FAST_TRAIN
from ..conftest import copy_dataset

LINEAR = ["--input", "16x16", "--family", "linear", "--gray", "--quiet", "--folds", "2"]


def test_train_records_the_model_once_per_distinct_model(sim_dataset: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    dataset = tmp_path / "ds"
    copy_dataset(sim_dataset, dataset, "models")
    assert main(["train", str(dataset), "--out", str(tmp_path / "m1"), *LINEAR]) == 0
    (v1,) = list_models(dataset)
    assert f"recorded as model version {v1.version}" in capsys.readouterr().out
    assert v1.model_file.read_bytes() == (tmp_path / "m1" / "model.cml").read_bytes()
    assert v1.summary["family"] == "linear" and v1.data["records"] == 30 and v1.data["missing"] == 0
    assert main(["train", str(dataset), "--out", str(tmp_path / "m2"), *LINEAR]) == 0  # same seed, same bytes
    assert [v.version for v in list_models(dataset)] == [v1.version]
    assert f"recorded as model version {v1.version}" in capsys.readouterr().out
    assert main(["train", str(dataset), "--out", str(tmp_path / "m3"), *LINEAR, "--seed", "1", "--no-record"]) == 0
    assert "recorded" not in capsys.readouterr().out and len(list_models(dataset)) == 1
    assert main(["train", str(dataset), "--out", str(tmp_path / "m4"), *FAST_TRAIN]) == 0
    assert [v.counter for v in list_models(dataset)] == [1, 2] and list_models(dataset)[1].summary["family"].startswith("cnn")
