"""Label tooling without a server: `labels import --skip-unknown/--classes`, `info`'s light table, `info --model`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camlytics.cli import main
from camlytics.frames import encode_jpeg
from camlytics.store import Dataset
from camlytics.store.light import META_KEY, light_balance
from tests.conftest import one_line_error


def picture(brightness: float, colour: bool, seed: int) -> bytes:
    """A 64x48 JPEG of about this mean brightness, in colour or grey (an IR night picture)."""
    rng = np.random.default_rng(seed)
    grey = rng.uniform(0.7, 1.3, (48, 64, 1))
    tint = np.array([1.25, 1.0, 0.7]) if colour else np.ones(3)
    return encode_jpeg(np.clip(brightness * grey * tint, 0, 255).astype(np.uint8), quality=90)


@pytest.fixture
def scenes(dataset, add_image):
    """Day, dim, night and IR pictures (3, 2, 1, 2) with original names d0.., returns the dataset root."""
    kinds = [("day", 150, True)] * 3 + [("dim", 60, True)] * 2 + [("night", 15, True)] + [("ir", 110, False)] * 2
    for i, (kind, brightness, colour) in enumerate(kinds):
        add_image(dataset, picture(brightness, colour, i), t=float(i), original_name=f"/cam/{kind}{i}.jpg")
    dataset.close()
    return dataset.root


def labels_of(root) -> dict[str, str | None]:
    with Dataset.open(root) as ds:
        return {r.original_name.rsplit("/", 1)[1]: r.label for r in ds.records()}


def test_skip_unknown_counts_what_it_skipped_and_imports_the_rest(scenes, tmp_path, capsys):
    rows = ["day0.jpg,open", "day1.jpg,closed"] + [f"dim{i}.jpg,person" for i in (3, 4)] + ["night5.jpg,x"]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\nir6.jpg,person\n")
    assert main(["labels", "import", str(scenes), str(tmp_path / "l.csv")]) == 2  # today's behaviour stays
    one_line_error(capsys, "unknown labels 'person', 'x'", "--skip-unknown")
    assert set(labels_of(scenes).values()) == {None}
    assert main(["labels", "import", str(scenes), str(tmp_path / "l.csv"), "--skip-unknown"]) == 0
    out = capsys.readouterr().out
    assert "2 changed" in out and "skipped 4 labels of unknown classes: 'person' 3, 'x' 1" in out
    assert labels_of(scenes)["day0.jpg"] == "open" and labels_of(scenes)["dim3.jpg"] is None


def test_classes_set_or_extend_the_dataset_classes_with_the_import(scenes, tmp_path, capsys):
    (tmp_path / "l.csv").write_text("day0.jpg,open\ndim3.jpg,person\nnight5.jpg,x\n")
    argv = ["labels", "import", str(scenes), str(tmp_path / "l.csv")]
    assert main([*argv, "--classes", "closed,open,person"]) == 2  # 'x' is still unknown: nothing changes
    one_line_error(capsys, "unknown labels 'x'")
    with Dataset.open(scenes) as ds:
        assert ds.classes == ["closed", "open"]
    assert main([*argv, "--classes", "closed, open ,person", "--skip-unknown"]) == 0
    out = capsys.readouterr().out
    assert "2 changed" in out and "'x' 1" in out and "classes now closed, open, person" in out
    with Dataset.open(scenes) as ds:
        assert ds.classes == ["closed", "open", "person"]
    assert labels_of(scenes)["dim3.jpg"] == "person"


@pytest.mark.parametrize(
    "classes, message",
    [
        ("open,open", "at least two distinct names"),
        ("open,,closed", "non-empty"),
        ("open", "at least two distinct names"),
        ("person,empty", "leaves out 'open'"),  # a class labels already use cannot go
    ],
)
def test_bad_classes_are_one_line_errors_and_change_nothing(scenes, tmp_path, capsys, classes, message):
    with Dataset.open(scenes) as ds:
        ds.set_label(ds.records()[0].id, "open", "someone")
    (tmp_path / "l.csv").write_text("day1.jpg,closed\n")
    assert main(["labels", "import", str(scenes), str(tmp_path / "l.csv"), "--classes", classes]) == 2
    one_line_error(capsys, message)
    with Dataset.open(scenes) as ds:
        assert ds.classes == ["closed", "open"] and len(ds.labels_in_use()) == 1


def test_info_shows_labels_per_light_condition_judged_from_the_images(scenes, capsys):
    with Dataset.open(scenes) as ds:
        ids = {r.original_name.rsplit("/", 1)[1]: r.id for r in ds.records()}
        ds.set_labels({ids["day0.jpg"]: "open", ids["day1.jpg"]: "closed", ids["ir6.jpg"]: "closed"}, "a")
    assert main(["info", str(scenes)]) == 0
    out = capsys.readouterr().out
    assert "labels per light condition" in out
    rows = {line.split()[1]: line.split()[3:-1] for line in out.splitlines() if line.count("│") == 6}
    # columns: light | closed | open | unlabelled | all
    assert rows["day"] == ["1", "│", "1", "│", "1", "│", "3"]
    assert rows["dim"] == ["0", "│", "0", "│", "2", "│", "2"]
    assert rows["night"] == ["0", "│", "0", "│", "1", "│", "1"]
    assert rows["ir"] == ["1", "│", "0", "│", "1", "│", "2"]


def test_light_conditions_are_cached_in_the_record_meta(scenes):
    with Dataset.open(scenes) as ds:
        first = light_balance(ds)
        assert {r.meta[META_KEY] for r in ds.records()} == {"day", "dim", "night", "ir"}
        victim = ds.records()[0]
        ds.image_path(victim).write_bytes(b"")  # the cache answers without reading the image again
        assert light_balance(ds) == first
        ds.update_meta({victim.id: {META_KEY: None}})
        assert light_balance(ds)["unreadable"] == {"unlabelled": 1}


@pytest.fixture
def model_dir(tmp_path):
    """A model directory as `camlytics train` writes it (metrics.json is what info reads)."""
    folder = tmp_path / "model"
    folder.mkdir()
    metrics = {
        "classes": ["closed", "open"], "macs": 123456, "weight_bytes": 4321, "model_file_bytes": 6789,
        "input": {"width": 64, "height": 32, "color": False, "roi": [10, 20, 330, 180], "source_size": [640, 360]},
        "int8": {"balanced_accuracy": 0.987},
        "cv": {"shipped": {"mean": 0.9912, "std": 0.004}},
        "more_labels": {"verdict": "more labels help", "advice": "label about 40 more 'open' frames at night (ir)"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_info_model_shows_what_the_model_is_and_the_advice(model_dir, scenes, capsys):
    assert main(["info", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    for part in ("classes: closed, open", "input: 64x32 grey from roi [10, 20, 330, 180] of 640x360",
                 "size: 6,789 bytes", "MACs per frame: 123,456", "cross-validated balanced accuracy: 99.12% (+/- 0.40)",
                 "more labels? more labels help: label about 40 more 'open' frames at night (ir)"):
        assert part in out, out
    assert main(["info", str(scenes), "--model", str(model_dir)]) == 0  # both at once
    out = capsys.readouterr().out
    assert "8 images" in out and "MACs per frame" in out


def test_info_model_without_cv_or_advice_shows_what_there_is(model_dir, capsys):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    del metrics["cv"], metrics["more_labels"]
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    assert main(["info", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "MACs per frame" in out and "cross-validated" not in out and "more labels?" not in out


def test_info_mistakes_are_one_line(tmp_path, capsys):
    assert main(["info"]) == 2
    one_line_error(capsys, "give a DATASET, --model MODEL_DIR, or both")
    assert main(["info", "--model", str(tmp_path / "nope")]) == 2
    one_line_error(capsys, "does not exist")
    assert main(["info", "--model", str(tmp_path)]) == 2
    one_line_error(capsys, "has no metrics.json")
    (tmp_path / "metrics.json").write_text("{not json")
    assert main(["info", "--model", str(tmp_path)]) == 2
    one_line_error(capsys, "cannot read")
