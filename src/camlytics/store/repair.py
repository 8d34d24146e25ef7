"""`camlytics repair`: rebuild a damaged dataset index from the content-addressed images and the newest backup.

The images are the truth: every file images/ab/<sha256>.jpg whose bytes hash to its name gets a record. A
record's fields (time, source, sampler, label, ...) come from the newest readable backup in backups/ that has
that image (annotate copies the index there before a session's first label); an image no backup knows gets
its time from EXIF DateTimeOriginal (read as this machine's local time) or the file's modification time.
The new index is built in a temporary file, fsynced and renamed into place; the damaged one is renamed aside
(index.damaged-<UTC time>.sqlite, with its -wal and -shm), never deleted. A repair killed at any point
leaves the damaged index in place or aside, and can simply be run again.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import io
import json
import os
import pathlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from camlytics.errors import DatasetError
from camlytics.store.dataset import DEFAULT_CLASSES
from camlytics.store.files import DISK_FULL_ERRNOS, fsync_dir, stored_images
from camlytics.store.health import index_problem, read_only
from camlytics.store.schema import INDEX_NAME, SCHEMA, SCHEMA_VERSION

BACKUPS_DIR = "backups"
LOCK_NAME = ".repair.lock"
TMP_PREFIX = f".{INDEX_NAME}.repair-"
DAMAGED_PREFIX = "index.damaged-"
INDEX_FILES = ("-wal", "-shm", "")  # a stale WAL next to a new index would be replayed into it: move it first

_RECORD_COLUMNS = (
    "id", "path", "sha256", "timestamp", "source", "sampler", "reason", "score", "original_name", "label",
    "annotator", "labelled_at", "prediction", "confidence", "probs", "meta", "added_at",
)
_HISTORY_COLUMNS = (
    "id", "record_id", "old_label", "old_annotator", "old_labelled_at", "new_label", "annotator", "changed_at", "undone",
)
_EXIF_IFD = 0x8769
_EXIF_DATETIME_ORIGINAL = 36867
_EXIF_DATETIME = 306


@dataclass
class Backup:
    """What a backup index holds: records by sha256, label history, settings."""

    path: pathlib.Path
    records: dict[str, dict[str, Any]]
    history: list[tuple]
    settings: dict[str, str]


@dataclass
class RepairResult:
    """What a repair found and did; `problem` is None when the index was sound and nothing was done."""

    problem: str | None
    images: int = 0  # records in the new index: one per sound stored image
    labels: int = 0
    from_backup: int = 0  # records whose fields came from the backup
    time_from: dict[str, int] = field(default_factory=dict)  # "exif" / "file time": for images no backup knows
    backup: pathlib.Path | None = None
    unreadable_backups: list[str] = field(default_factory=list)  # newer backups that could not be read, why
    kept_as: pathlib.Path | None = None  # where the damaged index went
    bad_images: list[pathlib.Path] = field(default_factory=list)  # bytes do not match the name: left, not indexed
    lost_records: int = 0  # backup records whose image is gone
    lost_labels: int = 0  # ... of which labelled
    classes: list[str] = field(default_factory=list)
    roi: list[int] | None = None


def newest_backups(root: pathlib.Path) -> list[pathlib.Path]:
    """The dataset's backups, newest first (their names are UTC times)."""
    folder = root / BACKUPS_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("index-*.sqlite"), key=lambda path: path.name, reverse=True)


def read_backup(path: pathlib.Path) -> Backup:
    """Read a backup index (read-only); DatasetError if it is not a sound camlytics index."""
    problem = index_problem(path, immutable=True)
    if problem is not None:
        raise DatasetError(f"backup {path.name} is {problem}")
    try:
        with contextlib.closing(read_only(path, immutable=True)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise DatasetError(f"backup {path.name} has schema version {version}, this camlytics writes {SCHEMA_VERSION}")
            records = {
                row[2]: dict(zip(_RECORD_COLUMNS, row))
                for row in conn.execute(f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records")
            }
            history = conn.execute(f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM label_history ORDER BY id").fetchall()
            settings = dict(conn.execute("SELECT key, value FROM settings").fetchall())
    except sqlite3.Error as exc:
        raise DatasetError(f"backup {path.name} cannot be read: {exc}") from None
    return Backup(path, records, history, settings)


def capture_time(path: pathlib.Path, data: bytes) -> tuple[float, str]:
    """(Unix time, "exif" or "file time") for an image no backup knows."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            text = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
        if isinstance(text, str):
            return datetime.datetime.strptime(text.strip("\x00 "), "%Y:%m:%d %H:%M:%S").timestamp(), "exif"
    except (OSError, SyntaxError, ValueError):  # no EXIF, a broken one, or a date that is not one
        pass
    return path.stat().st_mtime, "file time"


@contextlib.contextmanager
def _repair_lock(root: pathlib.Path) -> Iterator[None]:
    """One repair at a time per dataset (the lock file stays: deleting it would race)."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatasetError(f"cannot write in dataset {root}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatasetError(f"another `camlytics repair` is running on {root}") from None
        yield
    finally:
        os.close(fd)


def _pick_backup(root: pathlib.Path, result: RepairResult) -> Backup | None:
    """The newest backup that reads; the newer ones that do not are noted in the result."""
    for path in newest_backups(root):
        try:
            return read_backup(path)
        except DatasetError as exc:
            result.unreadable_backups.append(str(exc))
    return None


def _settings(backup: Backup | None) -> dict[str, str]:
    settings = {"classes": json.dumps(DEFAULT_CLASSES)}
    if backup is not None:
        settings.update(backup.settings)
    return settings


def _rows(root: pathlib.Path, backup: Backup | None, result: RepairResult) -> list[dict[str, Any]]:
    """One record row per sound stored image: the backup's row where it has one, else a new one."""
    known = backup.records if backup is not None else {}
    rows, new = [], []
    now = time.time()
    for path in stored_images(root):
        sha = path.name[:-4]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            result.bad_images.append(path)
            continue
        rel = path.relative_to(root).as_posix()
        if sha in known:
            rows.append(dict(known[sha], path=rel))
            continue
        timestamp, how = capture_time(path, data)
        result.time_from[how] = result.time_from.get(how, 0) + 1
        new.append({
            "path": rel, "sha256": sha, "timestamp": timestamp, "source": "repair", "sampler": "repair",
            "reason": "found by camlytics repair in no backup", "score": 0.0, "meta": json.dumps({"time_from": how}),
            "added_at": now,
        })
    next_id = max((row["id"] for row in rows), default=0) + 1
    for offset, row in enumerate(sorted(new, key=lambda row: (row["timestamp"], row["sha256"]))):
        rows.append(dict(row, id=next_id + offset))
    found = {row["sha256"] for row in rows}
    lost = [record for sha, record in known.items() if sha not in found]
    result.lost_records = len(lost)
    result.lost_labels = sum(record["label"] is not None for record in lost)
    result.from_backup = len(rows) - len(new)
    return rows


def _write_index(tmp: pathlib.Path, rows: list[dict[str, Any]], history: list[tuple], settings: dict[str, str]) -> None:
    """Write a complete index to `tmp` in one transaction and fsync it."""
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a temp file: a crash means starting over, not rolling back
        conn.execute("BEGIN")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        for row in rows:
            columns = ", ".join(row)
            conn.execute(f"INSERT INTO records({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        conn.executemany(
            f"INSERT INTO label_history({', '.join(_HISTORY_COLUMNS)}) VALUES ({', '.join('?' * len(_HISTORY_COLUMNS))})",
            history,
        )
        conn.executemany("INSERT INTO settings(key, value) VALUES (?, ?)", settings.items())
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    finally:
        conn.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _put_aside(root: pathlib.Path) -> pathlib.Path | None:
    """Rename the damaged index (and its -wal, -shm) to index.damaged-<UTC time>.sqlite*; None if there was none."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = root / f"{DAMAGED_PREFIX}{stamp}.sqlite"
    moved = []
    for suffix in INDEX_FILES:
        source = root / f"{INDEX_NAME}{suffix}"
        if source.exists():
            os.rename(source, f"{aside}{suffix}")
            moved.append(pathlib.Path(f"{aside}{suffix}"))
    fsync_dir(root)
    return moved[-1] if moved else None  # the index itself where there was one (it is moved last)


def repair(path: str | os.PathLike) -> RepairResult:
    """Rebuild the index of the dataset at `path` if it is missing, empty or corrupt; a sound one is left alone."""
    root = pathlib.Path(path).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"dataset {root} does not exist" if not root.exists() else f"{root} is not a directory")
    with _repair_lock(root):
        for stale in root.glob(f"{TMP_PREFIX}*"):  # left by a killed repair (the lock says none runs now)
            stale.unlink(missing_ok=True)
        problem = index_problem(root / INDEX_NAME)
        result = RepairResult(problem=problem)
        if problem is None:
            return result
        if problem == "missing" and not stored_images(root) and not newest_backups(root):
            raise DatasetError(f"{root} is not a camlytics dataset (no {INDEX_NAME}, no images, no backups)")
        backup = _pick_backup(root, result)
        rows = _rows(root, backup, result)
        kept = {row["id"] for row in rows}
        history = [entry for entry in (backup.history if backup else []) if entry[1] in kept]
        settings = _settings(backup)
        tmp = root / f"{TMP_PREFIX}{os.getpid()}.sqlite"
        try:
            _write_index(tmp, rows, history, settings)
            fsync_dir(root)
            result.kept_as = _put_aside(root)
            os.rename(tmp, root / INDEX_NAME)
            fsync_dir(root)
        except (OSError, sqlite3.Error) as exc:
            tmp.unlink(missing_ok=True)
            if getattr(exc, "errno", None) in DISK_FULL_ERRNOS or "full" in str(exc):
                raise DatasetError(f"disk full while rebuilding the index of {root}") from None
            raise DatasetError(f"cannot rebuild the index of {root}: {getattr(exc, 'strerror', None) or exc}") from None
        result.images = len(rows)
        result.labels = sum(row.get("label") is not None for row in rows)
        result.backup = backup.path if backup else None
        result.classes = json.loads(settings["classes"])
        result.roi = json.loads(settings["roi"]) if "roi" in settings else None
        return result

