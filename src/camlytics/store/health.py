"""Is a dataset's index sound? What `Dataset.open` refuses and `camlytics repair` rebuilds."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3

from camlytics.errors import DatasetError
from camlytics.store.files import stored_images
from camlytics.store.schema import INDEX_NAME, SCHEMA_VERSION

TABLES = ("records", "label_history", "settings")
EMPTY = "empty"  # prefix of the problem an index without a schema has (a fresh dataset's, if it has no images)


def index_problem(index: pathlib.Path, *, immutable: bool = False) -> str | None:
    """What is wrong with a dataset index file ("missing", "empty (0 bytes)", "corrupt: ..."), None if sound.

    Reads only: the file is opened read-only and checked with SQLite's quick_check (about 15 ms per 20,000
    records). An index written by a newer camlytics counts as sound here; opening it says what to do.
    `immutable` is for a file nobody writes (a backup): SQLite then makes no -wal/-shm files beside it.
    """
    if not index.exists():
        return "missing"
    if index.stat().st_size == 0:
        return f"{EMPTY} (0 bytes)"
    try:
        with contextlib.closing(read_only(index, immutable=immutable)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                return None
            check = "; ".join(str(row[0]) for row in conn.execute("PRAGMA quick_check(5)"))
            if check != "ok":
                return f"corrupt: {check}"
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError as exc:
        # locked for 30 s, unreadable, an I/O error: no verdict on the file's content
        raise DatasetError(f"cannot read dataset index {index}: {exc}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        return f"corrupt: {exc}"
    if version == 0 and not tables & set(TABLES):
        return f"{EMPTY} (no tables)"
    missing = [name for name in TABLES if name not in tables]
    if missing:
        return f"corrupt: table {', '.join(repr(name) for name in missing)} missing"
    return None


def read_only(path: pathlib.Path, *, immutable: bool = False) -> sqlite3.Connection:
    """A read-only connection to an index file (see index_problem for `immutable`)."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro" + ("&immutable=1" if immutable else ""), uri=True, timeout=30)


def damaged_error(root: pathlib.Path, problem: str) -> DatasetError:
    """The one-line refusal to use a damaged index, naming `camlytics repair`."""
    n = len(stored_images(root))
    return DatasetError(
        f"dataset index {root / INDEX_NAME} is {problem}, next to {n} stored images; "
        f"run `camlytics repair {root}` to rebuild it from the images (the damaged file is kept)"
    )
