"""A dataset: a directory holding an SQLite index (WAL mode) and content-addressed JPEG files."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from camlytics.errors import DatasetError
from camlytics.store.files import (
    DISK_FULL_ERRNOS,
    content_path,
    has_stored_images,
    remove_stale_temp_files,
    write_atomic,
)
from camlytics.store.health import EMPTY, damaged_error, index_problem
from camlytics.store.schema import INDEX_NAME, SCHEMA, SCHEMA_VERSION
from camlytics.validate import check_roi

DEFAULT_CLASSES = ["closed", "open"]
ORDERS = ("time", "unlabelled_first", "uncertain")
BUSY_TIMEOUT_MS = 30_000  # a collector and an annotator share the file; wait rather than fail


@dataclass
class Record:
    """One image of the dataset with why it was kept, its label and the latest model prediction."""

    id: int
    path: str
    timestamp: float
    source: str
    sampler: str
    reason: str
    score: float
    original_name: str | None = None
    label: str | None = None
    annotator: str | None = None
    labelled_at: float | None = None
    prediction: str | None = None
    confidence: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    probs: dict[str, float] | None = None
    added_at: float | None = None


_COLUMNS = (
    "id, path, timestamp, source, sampler, reason, score, original_name, label, annotator, "
    "labelled_at, prediction, confidence, meta, probs, added_at"
)


def _record(row: tuple) -> Record:
    values = list(row)
    values[13] = json.loads(values[13] or "{}")
    values[14] = json.loads(values[14]) if values[14] else None
    return Record(*values)


def _json_default(value: Any) -> Any:
    # numpy scalars/arrays and paths end up in meta (simulator truth, source details)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def _check_text(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{name} must be a non-empty string, got {value!r}")


def _check_number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise DatasetError(f"{name} must be finite, got {value!r}")
    return number


def check_classes(classes: list[str], what: str = "classes") -> list[str]:
    """The class names, checked: at least two, distinct, each a non-empty string without surrounding spaces."""
    classes = list(classes)
    for name in classes:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise DatasetError(f"{what}: each class name must be a non-empty string without surrounding spaces, "
                               f"got {name!r} in {classes!r}")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DatasetError(f"{what} must be at least two distinct names, got {classes!r}")
    return classes


def parse_classes(text: str, what: str = "--classes") -> list[str]:
    """Class names from "a,b,c" (spaces around names ignored), checked as check_classes does."""
    return check_classes([name.strip() for name in str(text).split(",")], what)


def _sql_error(exc: sqlite3.Error, path: pathlib.Path) -> DatasetError:
    """Turn an SQLite failure into a one-line user error."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("full" in text or "disk I/O" in text):
        return DatasetError(f"cannot write dataset index {path}: {text} (disk full?)")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        repair = f"; run `camlytics repair {path.parent}` to rebuild it from the images" if path.name == INDEX_NAME else ""
        return DatasetError(f"dataset index {path} is corrupt: {text}{repair}")
    return DatasetError(f"dataset index {path}: {text}")


def _remove_new_dataset(root: pathlib.Path, made: list[pathlib.Path]) -> None:
    """Remove an empty dataset's index files and the folders `made` for it; anything else found stays."""
    for name in (INDEX_NAME, f"{INDEX_NAME}-wal", f"{INDEX_NAME}-shm"):
        with contextlib.suppress(OSError):
            (root / name).unlink()
    for folder in (*sorted((root / "images").glob("*"), reverse=True), root / "images", *made):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty


class Dataset:
    """A labelled image collection on disk; safe to share between two processes (SQLite WAL)."""

    def __init__(self, root: pathlib.Path, conn: sqlite3.Connection):
        self.root = root
        self.index_path = root / INDEX_NAME
        self._conn = conn
        self._lock = threading.RLock()  # one connection, used from web-server threads too
        self._unindexed: set[str] = set()  # image files this object wrote whose row did not commit

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = False) -> Dataset:
        """Open the dataset at `path`; with create=True make the directory and index if missing."""
        root = pathlib.Path(path).expanduser().absolute()
        index = root / INDEX_NAME
        if root.exists() and not root.is_dir():
            raise DatasetError(f"dataset path {root} is a file, expected a directory")
        problem = index_problem(index) if root.is_dir() else "missing"
        # Never start an empty index next to stored images: they would be orphaned (issue #28, item 6).
        if problem is not None and problem != "missing" and not problem.startswith(EMPTY):
            raise damaged_error(root, problem)
        if problem is not None and has_stored_images(root):
            raise damaged_error(root, problem)
        if problem == "missing":
            if not create:
                if not root.exists():
                    raise DatasetError(f"dataset {root} does not exist")
                raise DatasetError(f"{root} is not a camlytics dataset (no {INDEX_NAME})")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatasetError(f"cannot create dataset directory {root}: {exc.strerror or exc}") from None
        if not os.access(root, os.W_OK | os.X_OK):
            raise DatasetError(f"dataset directory {root} is not writable")
        try:
            conn = sqlite3.connect(index, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _sql_error(exc, index) from None
        dataset = cls(root, conn)
        try:
            dataset._prepare()
        except sqlite3.Error as exc:
            conn.close()
            raise _sql_error(exc, index) from None
        except DatasetError:
            conn.close()
            raise
        remove_stale_temp_files(root)
        return dataset

    @classmethod
    @contextlib.contextmanager
    def open_or_create(cls, path: str | os.PathLike) -> Iterator[Dataset]:
        """Dataset.open(path, create=True) for a block; if the block fails while the dataset this call created
        is still empty, the directories it made are removed again (a failed first run leaves nothing behind)."""
        root = pathlib.Path(path).expanduser().absolute()
        made = [folder for folder in (root, *root.parents) if not folder.exists()]  # deepest first
        try:
            dataset = cls.open(root, create=True)
        except BaseException:
            # e.g. disk full while writing the new index's schema; no image means no record (images go first)
            if made and not has_stored_images(root):
                _remove_new_dataset(root, made)
            raise
        try:
            yield dataset
        except BaseException:
            if made:
                dataset._discard_if_empty(made)
            raise
        finally:
            dataset.close()

    def _discard_if_empty(self, made: list[pathlib.Path]) -> None:
        """After a failed block in a dataset open_or_create made: drop the images this object wrote without a
        row (disk full between an image and its row), then remove the dataset if no image is left in it.
        A record's image is written before its row, so a dataset without images holds no records; its
        index is checked by the files, not by a query, because a full disk can fail even reads."""
        self._remove_unindexed()
        self.close()
        if not has_stored_images(self.root):  # else it stays: its index opens (orphans: `camlytics repair`)
            _remove_new_dataset(self.root, made)

    def _remove_unindexed(self) -> None:
        """Delete the image files this object wrote whose row never committed (and no row points at now)."""
        for rel in sorted(self._unindexed):
            sha = rel.rsplit("/", 1)[1][:-4]
            try:
                if self._query("SELECT 1 FROM records WHERE sha256 = ?", (sha,)):
                    continue  # another writer stored the same bytes meanwhile: its row needs the file
            except DatasetError:
                continue
            with contextlib.suppress(OSError):
                (self.root / rel).unlink()
            self._unindexed.discard(rel)

    def _prepare(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        self._check_version(version)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a committed row survives power loss too
        conn.execute("PRAGMA foreign_keys = ON")
        if version == 0:
            with self._transaction():
                # re-read inside the write lock: another process may have created it meanwhile
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(
                        "INSERT OR IGNORE INTO settings(key, value) VALUES ('classes', ?)", (_dumps(DEFAULT_CLASSES),)
                    )
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise DatasetError(
                f"dataset {self.root} was written by a newer camlytics (schema version {version}, "
                f"this version reads up to {SCHEMA_VERSION}); upgrade camlytics"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; rolls back on any error."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _sql_error(exc, self.index_path) from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _sql_error(exc, self.index_path) from None
                raise

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _sql_error(exc, self.index_path) from None

    def close(self) -> None:
        """Close the index (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM records")[0][0])

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"

    # ---- images --------------------------------------------------------------------------
    def add_image(
        self,
        jpeg: bytes,
        *,
        timestamp: float,
        source: str,
        sampler: str,
        reason: str,
        score: float,
        original_name: str | None = None,
        meta: dict | None = None,
    ) -> int:
        """Store a JPEG and its record; the file is durable before the row is committed. Returns the id.

        Adding bytes that are already stored returns the existing record's id (content addressing).
        """
        if not isinstance(jpeg, (bytes, bytearray, memoryview)) or bytes(jpeg[:2]) != b"\xff\xd8":
            raise DatasetError(f"image must be JPEG bytes, got {type(jpeg).__name__} starting {bytes(jpeg[:4])!r}")
        jpeg = bytes(jpeg)
        timestamp = _check_number("timestamp", timestamp)
        score = _check_number("score", score)
        _check_text("source", source)
        _check_text("sampler", sampler)
        _check_text("reason", reason)
        _check_text("original_name", original_name, optional=True)
        if meta is not None and not isinstance(meta, dict):
            raise DatasetError(f"meta must be a dict, got {type(meta).__name__}")
        rel = content_path(jpeg)
        sha = rel.rsplit("/", 1)[1][:-4]
        existing = self._query("SELECT id FROM records WHERE sha256 = ?", (sha,))
        if existing:
            return int(existing[0][0])
        fresh = not (self.root / rel).exists()
        write_atomic(self.root, rel, jpeg)  # durable before the row that points at it
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO records(path, sha256, timestamp, source, sampler, reason, score, original_name, meta,"
                    " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING",
                    (rel, sha, timestamp, source, sampler, reason, score, original_name, _dumps(meta or {}),
                     time.time()),
                )
                row = conn.execute("SELECT id FROM records WHERE sha256 = ?", (sha,)).fetchone()
        except BaseException:
            if fresh:  # an orphan now; a new dataset that ends empty removes it (open_or_create)
                self._unindexed.add(rel)
            raise
        return int(row[0])

    def get(self, record_id: int) -> Record:
        """The record with this id; DatasetError if there is none."""
        rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE id = ?", (int(record_id),))
        if not rows:
            raise DatasetError(f"no record with id {record_id} in {self.root}")
        return _record(rows[0])

    def records(self, *, labelled: bool | None = None, order: str = "time") -> list[Record]:
        """All records, optionally only (un)labelled ones, in time / unlabelled-first / least-confident order."""
        if order not in ORDERS:
            raise DatasetError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        where = "" if labelled is None else ("WHERE label IS NOT NULL" if labelled else "WHERE label IS NULL")
        order_by = {
            "time": "timestamp, id",
            "unlabelled_first": "label IS NOT NULL, timestamp, id",
            "uncertain": "confidence IS NULL, confidence, timestamp, id",
        }[order]
        return [_record(row) for row in self._query(f"SELECT {_COLUMNS} FROM records {where} ORDER BY {order_by}")]

    def find(self, name: str) -> list[Record]:
        """Records whose store path or original file name (full or base name) equals `name`."""
        base = pathlib.PurePath(name).name
        tail = "/" + base  # matches ".../<base>" exactly (case-sensitive, unlike LIKE)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM records WHERE path = ? OR original_name = ? OR original_name = ?"
            " OR substr(original_name, -?) = ? OR substr(path, -?) = ? ORDER BY id",
            (name, name, base, len(tail), tail, len(tail), tail),
        )
        return [_record(row) for row in rows]

    def image_path(self, record: Record | int) -> pathlib.Path:
        """Absolute path of a record's image, guaranteed to be inside the dataset directory."""
        rel = record.path if isinstance(record, Record) else self.get(record).path
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise DatasetError(f"record path {rel!r} points outside the dataset {self.root}")
        return path

    def read_image(self, record: Record | int) -> bytes:
        """The JPEG bytes of a record."""
        path = self.image_path(record)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from None

    # ---- labels and predictions ----------------------------------------------------------
    def set_label(self, record_id: int, label: str | None, annotator: str) -> None:
        """Set (or clear, with None) a record's label in one transaction, keeping history for undo."""
        self.set_labels({record_id: label}, annotator)

    def undo_last_label(self, annotator: str | None = None) -> int | None:
        """Revert the latest label change (of `annotator`, or anyone); returns its record id, None if nothing."""
        with self._transaction() as conn:
            sql = "SELECT id, record_id, old_label, old_annotator, old_labelled_at FROM label_history WHERE undone = 0"
            params: tuple = ()
            if annotator is not None:
                sql += " AND annotator = ?"
                params = (annotator,)
            row = conn.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
            if row is None:
                return None
            history_id, record_id, old_label, old_annotator, old_labelled_at = row
            conn.execute(
                "UPDATE records SET label = ?, annotator = ?, labelled_at = ? WHERE id = ?",
                (old_label, old_annotator, old_labelled_at, record_id),
            )
            conn.execute("UPDATE label_history SET undone = 1 WHERE id = ?", (history_id,))
        return int(record_id)

    def set_labels(self, labels: dict[int, str | None], annotator: str) -> None:
        """Set (None: clear) many labels in one transaction (all or nothing), keeping history for undo."""
        _check_text("annotator", annotator)
        classes = self.classes
        for record_id, label in labels.items():
            if label is not None and label not in classes:
                raise DatasetError(f"unknown label {label!r} for record {record_id}; the dataset's classes are {classes}")
        now = time.time()
        with self._transaction() as conn:
            for record_id, label in labels.items():
                row = conn.execute(
                    "SELECT label, annotator, labelled_at FROM records WHERE id = ?", (int(record_id),)
                ).fetchone()
                if row is None:
                    raise DatasetError(f"no record with id {record_id} in {self.root}")
                conn.execute(
                    "INSERT INTO label_history(record_id, old_label, old_annotator, old_labelled_at, new_label,"
                    " annotator, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (int(record_id), *row, label, annotator, now),
                )
                labelled = label is not None  # a cleared label keeps no annotator or time
                conn.execute(
                    "UPDATE records SET label = ?, annotator = ?, labelled_at = ? WHERE id = ?",
                    (label, annotator if labelled else None, now if labelled else None, int(record_id)),
                )

    def set_prediction(
        self, record_id: int, label: str, confidence: float, probs: dict[str, float] | None = None
    ) -> None:
        """Store a model's prediction for a record (used to order by uncertainty)."""
        _check_text("label", label)
        confidence = _check_number("confidence", confidence)
        probs_json = None if probs is None else _dumps({str(k): float(v) for k, v in probs.items()})
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE records SET prediction = ?, confidence = ?, probs = ? WHERE id = ?",
                (label, confidence, probs_json, int(record_id)),
            )
            if cursor.rowcount == 0:
                raise DatasetError(f"no record with id {record_id} in {self.root}")

    # ---- settings ------------------------------------------------------------------------
    def _setting(self, key: str, default: Any) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def _set_setting(self, key: str, value: Any) -> None:
        with self._transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, _dumps(value)),
                )

    @property
    def classes(self) -> list[str]:
        """The class names labels may take (default ["closed", "open"])."""
        return list(self._setting("classes", DEFAULT_CLASSES))

    def set_classes(self, classes: list[str]) -> None:
        """Set the class names; each a non-empty unique string, at least two."""
        classes = check_classes(classes)
        used = self.labels_in_use()
        if used - set(classes):
            raise DatasetError(f"labels {sorted(used - set(classes))} are in use and missing from {classes!r}")
        self._set_setting("classes", classes)

    def labels_in_use(self) -> set[str]:
        """The distinct labels records carry."""
        return {row[0] for row in self._query("SELECT DISTINCT label FROM records WHERE label IS NOT NULL")}

    def update_meta(self, changes: dict[int, dict[str, Any]]) -> None:
        """Merge keys into records' meta, in one transaction (a record that is gone is skipped)."""
        with self._transaction() as conn:
            for record_id, values in changes.items():
                row = conn.execute("SELECT meta FROM records WHERE id = ?", (int(record_id),)).fetchone()
                if row is not None:
                    meta = json.loads(row[0] or "{}")
                    meta.update(values)
                    conn.execute("UPDATE records SET meta = ? WHERE id = ?", (_dumps(meta), int(record_id)))

    @property
    def roi(self) -> tuple[int, int, int, int] | None:
        """The region of interest (x0, y0, x1, y1) in full-resolution pixels, or None for the whole frame."""
        value = self._setting("roi", None)
        return None if value is None else tuple(value)  # type: ignore[return-value]

    def set_roi(self, roi: tuple[int, int, int, int] | None) -> None:
        """Set or clear (None) the dataset's region of interest."""
        self._set_setting("roi", None if roi is None else list(check_roi(roi, error=DatasetError)))

    # ---- summaries and maintenance -------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """Totals and counts per label ("unlabelled" for None), per sampler and per UTC hour of day."""
        total, labelled = self._query("SELECT COUNT(*), COUNT(label) FROM records")[0]
        per_label = dict(self._query("SELECT COALESCE(label, 'unlabelled'), COUNT(*) FROM records GROUP BY 1 ORDER BY 1"))
        per_sampler = dict(self._query("SELECT sampler, COUNT(*) FROM records GROUP BY 1 ORDER BY 1"))
        per_hour = {h: 0 for h in range(24)}
        for hour, n in self._query("SELECT CAST((timestamp % 86400) / 3600 AS INTEGER), COUNT(*) FROM records GROUP BY 1"):
            per_hour[int(hour) % 24] += n
        return {"total": total, "labelled": labelled, "label": per_label, "sampler": per_sampler, "hour": per_hour}

    def backup_index(self) -> pathlib.Path:
        """Copy the index to backups/index-<UTC time>.sqlite with SQLite's online backup API."""
        folder = self.root / "backups"
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"index-{stamp}.sqlite"
        try:
            folder.mkdir(exist_ok=True)
            with self._lock, contextlib.closing(sqlite3.connect(target)) as dest:
                self._conn.backup(dest)
        except sqlite3.Error as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            raise _sql_error(exc, target) from None
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            if exc.errno in DISK_FULL_ERRNOS:
                raise DatasetError(f"disk full while writing backup {target}") from None
            raise DatasetError(f"cannot write backup {target}: {exc.strerror or exc}") from None
        return target

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` result ("ok" when the index is sound)."""
        return "; ".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))

