"""A damaged index is refused, never replaced by an empty one; `camlytics repair` rebuilds it from the images."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import random
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from camlytics.cli import main
from camlytics.errors import DatasetError
from camlytics.store import Dataset
from camlytics.store.files import content_path, write_atomic
from camlytics.store.repair import repair
from camlytics.store.schema import INDEX_NAME
from tests.conftest import one_line_error

EXIF_TIME = "2024:05:06 07:08:09"


def exif_jpeg(seed: int) -> bytes:
    """A small JPEG carrying EXIF DateTime, as a camera writes it."""
    rng = np.random.default_rng(seed)
    exif = Image.Exif()
    exif[306] = EXIF_TIME
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.fixture
def labelled(tmp_path, make_jpeg, add_image):
    """12 images with labels, classes and ROI; two backups; one label and one image (with EXIF) after them.

    Returns (root, ids, late_id): ids[0..7] are labelled in the newest backup, ids[8] only in the index.
    """
    root = tmp_path / "ds"
    with Dataset.open(root, create=True) as ds:
        ids = [add_image(ds, make_jpeg(i), t=1000.0 + i, sampler="smart", original_name=f"/cam/{i}.jpg")
               for i in range(12)]
        ds.set_classes(["closed", "open", "ajar"])
        ds.set_roi((1, 2, 13, 14))
        ds.set_labels({ids[i]: "open" if i % 2 else "closed" for i in range(6)}, "alice")
        ds.set_label(ids[6], "ajar", "alice")
        ds.backup_index()
        ds.set_label(ids[7], "open", "bob")
        ds.backup_index()
        ds.set_label(ids[8], "closed", "bob")  # after the newest backup: lost with the index
        late = add_image(ds, exif_jpeg(99), t=5.0)  # in no backup
    return root, ids, late


def images_in(root) -> int:
    return len(list((root / "images").glob("*/*.jpg")))


def damage(root, how: str) -> bytes:
    """Damage the index as a crash, a full disk or a clumsy user would; returns the damaged file's bytes."""
    index = root / INDEX_NAME
    if how == "empty":
        index.write_bytes(b"")
    elif how == "garbage":
        index.write_bytes(os.urandom(8192))
    elif how == "truncated":
        data = index.read_bytes()
        index.write_bytes(data[: len(data) // 2])
    elif how == "deleted":
        index.unlink()
        return b""
    elif how == "no schema":
        index.unlink()
        with sqlite3.connect(index) as conn:
            conn.execute("PRAGMA user_version = 1")
            conn.execute("CREATE TABLE other(x)")
    return index.read_bytes()


def test_a_zero_byte_index_is_refused_by_every_command_and_repaired(labelled, tmp_path, capsys):
    root, ids, late = labelled
    damage(root, "empty")
    assert main(["info", str(root)]) == 2  # before: "0 images", exit 0, a new empty index over 13 orphans
    one_line_error(capsys, "is empty (0 bytes)", "13 stored images", f"camlytics repair {root}")
    (tmp_path / "l.csv").write_text("/cam/1.jpg,open\n")
    assert main(["labels", "import", str(root), str(tmp_path / "l.csv")]) == 2
    one_line_error(capsys, "camlytics repair")
    assert main(["collect", "sim:office?interval=3600", "--dataset", str(root), "--budget", "2"]) == 2
    one_line_error(capsys, "camlytics repair")
    assert (root / INDEX_NAME).stat().st_size == 0  # nothing wrote a fresh schema over it

    assert main(["repair", str(root)]) == 0
    out = capsys.readouterr().out
    assert "was empty (0 bytes); rebuilt it from 13 images" in out and "labels recovered: 8" in out
    assert "from backup index-" in out and "12 records" in out and "1 from exif" in out
    (aside,) = root.glob("index.damaged-*.sqlite")
    assert aside.read_bytes() == b"" and f"kept as {aside.name}" in out

    with Dataset.open(root) as ds:
        assert ds.integrity_check() == "ok" and len(ds) == 13
        assert ds.classes == ["closed", "open", "ajar"] and ds.roi == (1, 2, 13, 14)
        by_id = {r.id: r for r in ds.records()}
        assert [by_id[i].label for i in ids] == ["closed", "open"] * 3 + ["ajar", "open", None, None, None, None]
        assert by_id[ids[3]].original_name == "/cam/3.jpg" and by_id[ids[3]].timestamp == 1003.0
        assert by_id[ids[7]].annotator == "bob" and by_id[ids[3]].sampler == "smart"
        (new,) = [r for r in by_id.values() if r.id not in ids]
        assert new.timestamp == datetime.datetime(2024, 5, 6, 7, 8, 9).timestamp() and new.sampler == "repair"
        assert ds.undo_last_label("bob") == ids[7] and ds.get(ids[7]).label is None  # history came along
    assert main(["info", str(root)]) == 0
    assert "13 images, 7 labelled" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["garbage", "truncated", "no schema"])
def test_a_corrupt_index_is_refused_and_repaired_keeping_the_damaged_file(labelled, capsys, how):
    root, ids, _ = labelled
    damaged = damage(root, how)
    assert main(["info", str(root)]) == 2
    one_line_error(capsys, "corrupt", "camlytics repair")
    with pytest.raises(DatasetError, match="camlytics repair"):
        Dataset.open(root, create=True)
    assert main(["repair", str(root)]) == 0
    assert "labels recovered: 8" in capsys.readouterr().out
    (aside,) = root.glob("index.damaged-*.sqlite")
    assert aside.read_bytes() == damaged
    with Dataset.open(root) as ds:
        assert len(ds) == 13 and ds.get(ids[6]).label == "ajar"


def test_a_deleted_index_is_refused_and_repaired(labelled, capsys):
    root, _, _ = labelled
    damage(root, "deleted")
    assert main(["info", str(root)]) == 2
    one_line_error(capsys, "is missing", "13 stored images", "camlytics repair")
    assert main(["repair", str(root)]) == 0
    out = capsys.readouterr().out
    assert "was missing" in out and "kept as" not in out
    with Dataset.open(root) as ds:
        assert len(ds) == 13


def test_a_stale_wal_next_to_a_deleted_index_is_moved_aside_not_replayed(labelled):
    root, _, _ = labelled
    (root / INDEX_NAME).unlink()
    (root / f"{INDEX_NAME}-wal").write_bytes(os.urandom(5000))
    repair(root)
    assert not (root / f"{INDEX_NAME}-wal").exists() and len(list(root.glob("index.damaged-*.sqlite-wal"))) == 1
    with Dataset.open(root) as ds:
        assert ds.integrity_check() == "ok" and len(ds) == 13


def test_repair_without_backups_recovers_every_image_with_file_or_exif_times(labelled, capsys):
    root, _, _ = labelled
    for backup in (root / "backups").iterdir():
        backup.unlink()
    damage(root, "empty")
    some = next((root / "images").glob("*/*.jpg"))
    os.utime(some, (1_600_000_000, 1_600_000_000))
    assert main(["repair", str(root)]) == 0
    out = capsys.readouterr().out
    assert "no readable backup" in out and "labels recovered: 0" in out
    assert "1 from exif" in out and "12 from file time" in out
    with Dataset.open(root) as ds:
        assert len(ds) == 13 and ds.classes == ["closed", "open"] and ds.roi is None
        assert ds.find(str(some.relative_to(root)))[0].timestamp == 1_600_000_000
        assert {r.sampler for r in ds.records()} == {"repair"}


def test_an_unreadable_newest_backup_falls_back_to_the_one_before(labelled, capsys):
    root, ids, _ = labelled
    older, newest = sorted((root / "backups").glob("index-*.sqlite"))
    newest.write_bytes(newest.read_bytes()[:1000])
    damage(root, "garbage")
    assert main(["repair", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"from backup {older.name}" in out and f"skipped: backup {newest.name}" in out
    assert "labels recovered: 7" in out  # bob's label was only in the newest backup
    with Dataset.open(root) as ds:
        assert ds.get(ids[7]).label is None and ds.get(ids[6]).label == "ajar"
    assert not list((root / "backups").glob("*-shm")) and not list((root / "backups").glob("*-wal"))


def test_images_whose_bytes_do_not_match_their_name_are_left_out(labelled, capsys):
    root, _, _ = labelled
    victim = sorted((root / "images").glob("*/*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:-10] + b"\0" * 10)  # bit rot
    damage(root, "empty")
    assert main(["repair", str(root)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt it from 12 images" in out and "1 image files do not match their name" in out
    assert victim.exists()  # left for the user to look at


def test_a_sound_index_is_left_alone(labelled, capsys):
    root, _, _ = labelled
    before = (root / INDEX_NAME).read_bytes()
    assert main(["repair", str(root)]) == 0
    assert "the index is sound; nothing to repair" in capsys.readouterr().out
    assert (root / INDEX_NAME).read_bytes() == before and not list(root.glob("index.damaged-*"))


def test_repair_of_what_is_not_a_dataset_is_one_line(tmp_path, capsys):
    assert main(["repair", str(tmp_path / "nope")]) == 2
    one_line_error(capsys, "does not exist")
    assert main(["repair", str(tmp_path)]) == 2
    one_line_error(capsys, "is not a camlytics dataset")


def test_a_new_dataset_still_starts_from_an_empty_index_when_there_are_no_images(tmp_path, make_jpeg, add_image):
    root = tmp_path / "ds"
    root.mkdir()
    (root / INDEX_NAME).write_bytes(b"")  # what sqlite3.connect leaves for an instant while creating
    with Dataset.open(root, create=True) as ds:
        add_image(ds, make_jpeg(1))
        assert len(ds) == 1


def test_an_index_whose_image_was_added_straight_to_disk_is_still_sound(labelled):
    """An image on disk without a row (a writer killed between file and row) is normal, not damage."""
    root, _, _ = labelled
    data = exif_jpeg(7)
    write_atomic(root, content_path(data), data)
    with Dataset.open(root) as ds:
        assert len(ds) == 13


# ---- kill safety --------------------------------------------------------------------------------
REPAIRER = textwrap.dedent(
    """
    import sys
    from camlytics.store.repair import repair
    print("ready", flush=True)
    sys.stdin.readline()
    repair(sys.argv[1])
    print("done", flush=True)
    """
)


def test_a_killed_repair_leaves_the_damaged_index_in_place_or_aside_and_can_run_again(labelled, make_jpeg):
    root, _, _ = labelled
    with Dataset.open(root) as ds:  # enough images that the repair takes a while
        for i in range(12, 300):
            ds.add_image(make_jpeg(i, size=64), timestamp=float(i), source="t", sampler="time", reason="r", score=0.0)
    damaged = damage(root, "garbage")
    digest = hashlib.sha256(damaged).hexdigest()
    rng = random.Random(7)
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", REPAIRER, str(root)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.4))  # a whole repair takes about 0.3 s here
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.wait()
        copies = [p for p in root.glob("index*.sqlite") if hashlib.sha256(p.read_bytes()).hexdigest() == digest]
        assert copies, f"attempt {attempt}: the damaged index is gone"
        if (root / INDEX_NAME).exists() and (root / INDEX_NAME) not in copies:
            break  # this run finished
        with pytest.raises(DatasetError, match="camlytics repair"):
            Dataset.open(root)  # half-done: refused, never an empty dataset
    result = repair(root)
    assert result.problem is None or result.images == 301
    with Dataset.open(root) as ds:
        assert ds.integrity_check() == "ok" and len(ds) == 301
    assert not list(root.glob(".index.sqlite.repair-*"))


def test_a_repair_killed_between_putting_aside_and_renaming_in_can_run_again(labelled):
    """The one instant without any index.sqlite: refused (not a new empty dataset), and repaired by a rerun."""
    root, _, _ = labelled
    damaged = damage(root, "garbage")
    (root / INDEX_NAME).rename(root / "index.damaged-20250101T000000000000Z.sqlite")
    (root / ".index.sqlite.repair-999999.sqlite").write_bytes(b"half a build")
    with pytest.raises(DatasetError, match="is missing.*camlytics repair"):
        Dataset.open(root, create=True)
    assert repair(root).images == 13
    assert (root / "index.damaged-20250101T000000000000Z.sqlite").read_bytes() == damaged
    assert not list(root.glob(".index.sqlite.repair-*"))
    with Dataset.open(root) as ds:
        assert len(ds) == 13
