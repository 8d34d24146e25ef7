"""The Dataset API: records, labels with undo, predictions, settings, and refusing bad datasets."""

from __future__ import annotations

import sqlite3

import pytest

from camlytics.errors import DatasetError
from camlytics.frames import decode_jpeg
from camlytics.store import Dataset
from camlytics.store.schema import INDEX_NAME, SCHEMA_VERSION


def test_added_image_is_stored_content_addressed_with_its_record(dataset, make_jpeg, add_image):
    jpeg = make_jpeg(1)
    rid = add_image(dataset, jpeg, t=7200.5, sampler="hog", reason="novel", score=0.7,
                    original_name="/cam/img_001.jpg", meta={"truth": {"state": "open"}})
    rec = dataset.get(rid)
    assert (rec.timestamp, rec.sampler, rec.reason, rec.score) == (7200.5, "hog", "novel", 0.7)
    assert rec.original_name == "/cam/img_001.jpg" and rec.meta == {"truth": {"state": "open"}}
    assert rec.label is None and rec.prediction is None
    path = dataset.image_path(rec)
    assert path.read_bytes() == jpeg and path.is_relative_to(dataset.root)
    assert decode_jpeg(path.read_bytes()).shape == (16, 16, 3)


def test_same_bytes_twice_is_one_record(dataset, make_jpeg, add_image):
    first = add_image(dataset, make_jpeg(1))
    assert add_image(dataset, make_jpeg(1), t=99) == first
    assert add_image(dataset, make_jpeg(2)) != first
    assert len(dataset) == 2


def test_add_image_rejects_non_jpeg_and_bad_fields(dataset, make_jpeg, add_image):
    with pytest.raises(DatasetError, match="JPEG"):
        add_image(dataset, b"GIF89a....")
    with pytest.raises(DatasetError, match="timestamp"):
        add_image(dataset, make_jpeg(1), t=float("nan"))
    with pytest.raises(DatasetError, match="sampler"):
        add_image(dataset, make_jpeg(1), sampler="")
    assert len(dataset) == 0 and not list(dataset.root.glob("images/*/*"))


def test_labels_are_validated_and_undone_in_reverse_order(dataset, make_jpeg, add_image):
    a, b = add_image(dataset, make_jpeg(1)), add_image(dataset, make_jpeg(2))
    dataset.set_label(a, "open", "alice")
    dataset.set_label(b, "closed", "bob")
    dataset.set_label(a, "closed", "alice")
    assert dataset.get(a).label == "closed" and dataset.get(a).labelled_at is not None
    with pytest.raises(DatasetError, match="'ajar'"):
        dataset.set_label(a, "ajar", "alice")
    assert dataset.undo_last_label("alice") == a
    assert (dataset.get(a).label, dataset.get(a).annotator) == ("open", "alice")
    assert dataset.undo_last_label("alice") == a
    assert dataset.get(a).label is None and dataset.get(a).annotator is None
    assert dataset.undo_last_label("alice") is None
    assert dataset.get(b).label == "closed"  # bob's label untouched
    assert dataset.undo_last_label() == b and dataset.get(b).label is None


def test_record_orders_and_filters(dataset, make_jpeg, add_image):
    ids = [add_image(dataset, make_jpeg(i), t=100 - i) for i in range(4)]
    assert [r.id for r in dataset.records()] == ids[::-1]
    dataset.set_label(ids[3], "open", "a")
    assert [r.id for r in dataset.records(labelled=True)] == [ids[3]]
    assert dataset.records(order="unlabelled_first")[-1].id == ids[3]
    dataset.set_prediction(ids[0], "open", 0.9, {"open": 0.9, "closed": 0.1})
    dataset.set_prediction(ids[1], "closed", 0.55)
    uncertain = dataset.records(order="uncertain")
    assert [r.id for r in uncertain[:2]] == [ids[1], ids[0]]
    assert uncertain[1].probs == {"open": 0.9, "closed": 0.1}
    with pytest.raises(DatasetError, match="'random'"):
        dataset.records(order="random")


def test_settings_roi_and_classes(dataset, make_jpeg, add_image):
    assert dataset.classes == ["closed", "open"] and dataset.roi is None
    dataset.set_roi((10, 20, 110, 220))
    assert dataset.roi == (10, 20, 110, 220)
    with pytest.raises(DatasetError, match="roi"):
        dataset.set_roi((5, 5, 5, 9))
    dataset.set_label(add_image(dataset, make_jpeg(1)), "open", "a")
    with pytest.raises(DatasetError, match="in use"):
        dataset.set_classes(["shut", "ajar"])
    dataset.set_classes(["closed", "open", "ajar"])
    with Dataset.open(dataset.root) as again:
        assert again.classes == ["closed", "open", "ajar"] and again.roi == (10, 20, 110, 220)


def test_counts_per_label_sampler_and_hour(dataset, make_jpeg, add_image):
    add_image(dataset, make_jpeg(1), t=3600 * 5 + 1, sampler="motion")
    rid = add_image(dataset, make_jpeg(2), t=3600 * 23 + 5, sampler="hog")
    add_image(dataset, make_jpeg(3), t=3600 * 23 + 9, sampler="hog")
    dataset.set_label(rid, "open", "a")
    counts = dataset.counts()
    assert counts["total"] == 3 and counts["labelled"] == 1
    assert counts["label"] == {"open": 1, "unlabelled": 2}
    assert counts["sampler"] == {"hog": 2, "motion": 1}
    assert counts["hour"][5] == 1 and counts["hour"][23] == 2 and sum(counts["hour"].values()) == 3


def test_backup_is_a_complete_sqlite_copy(dataset, make_jpeg, add_image):
    add_image(dataset, make_jpeg(1))
    backup = dataset.backup_index()
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_index_uses_wal_and_records_schema_version(dataset):
    with sqlite3.connect(dataset.root / INDEX_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_missing_dataset_without_create_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not a camlytics dataset"):
        Dataset.open(tmp_path)
    assert not (tmp_path / "nope").exists()


def test_newer_schema_version_is_refused(dataset):
    root = dataset.root
    dataset.close()
    with sqlite3.connect(root / INDEX_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DatasetError, match="newer camlytics"):
        Dataset.open(root)


def test_corrupt_index_is_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / INDEX_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatasetError, match="corrupt"):
        Dataset.open(tmp_path / "ds")


def test_unwritable_and_file_paths_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        Dataset.open(tmp_path / "file", create=True)
    with pytest.raises(DatasetError, match="cannot create"):
        Dataset.open(tmp_path / "file" / "ds", create=True)  # a file where a folder must go
    with pytest.raises(DatasetError, match="cannot create|not writable"):
        Dataset.open("/proc/camlytics-dataset", create=True)  # unwritable even for root


def test_image_path_refuses_paths_outside_the_dataset(dataset, make_jpeg, add_image):
    rid = add_image(dataset, make_jpeg(1))
    with sqlite3.connect(dataset.root / INDEX_NAME) as conn:
        conn.execute("UPDATE records SET path = '../../etc/passwd' WHERE id = ?", (rid,))
    with pytest.raises(DatasetError, match="outside"):
        dataset.image_path(dataset.get(rid))
