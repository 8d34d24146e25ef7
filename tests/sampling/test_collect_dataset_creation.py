"""`camlytics collect` and the dataset it creates: --classes, and no empty dataset left by a failed first run."""

from __future__ import annotations

import pytest

from camlytics.cli import main
from camlytics.store import Dataset
from camlytics.store.schema import INDEX_NAME
from tests.conftest import one_line_error

SPEC = "sim:office?seed=1&interval=600&duration=3600&width=320&height=180"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sampler", "flips"], "the flips sampler needs a model"),
        (["--roi", "0,0,5000,5000"], "is not inside the 320x180 frames"),
        (["--classes", "open,open"], "at least two distinct names"),
    ],
)
def test_a_failed_first_collect_leaves_no_dataset_directory(tmp_path, capsys, args, message):
    target = tmp_path / "new" / "ds"  # its parent is made by collect too, and removed again
    assert main(["collect", SPEC, "--dataset", str(target), *args]) == 2
    err = capsys.readouterr().err  # the progress bar may have drawn its first line before the error
    assert "camlytics collect: error: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_a_failed_collect_into_an_existing_dataset_keeps_it(tmp_path, capsys):
    target = tmp_path / "ds"
    with Dataset.open(target, create=True):
        pass
    assert main(["collect", SPEC, "--dataset", str(target), "--sampler", "flips"]) == 2
    one_line_error(capsys, "needs a model")
    assert (target / INDEX_NAME).is_file()


def test_classes_are_given_to_the_dataset_it_creates_and_extend_an_existing_one(tmp_path, capsys):
    target = tmp_path / "ds"
    assert main(["collect", SPEC, "--dataset", str(target), "--budget", "2", "--classes", "empty,person"]) == 0
    with Dataset.open(target) as ds:
        assert ds.classes == ["empty", "person"] and len(ds) > 0
        ds.set_label(ds.records()[0].id, "person", "someone")
    capsys.readouterr()
    assert main(["collect", SPEC, "--dataset", str(target), "--budget", "2", "--classes", "empty,car"]) == 2
    one_line_error(capsys, "labels ['person'] are in use")
    assert main(["collect", SPEC, "--dataset", str(target), "--budget", "2", "--classes", "empty,person,car"]) == 0
    with Dataset.open(target) as ds:
        assert ds.classes == ["empty", "person", "car"]
