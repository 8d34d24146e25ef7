"""Store verification after a fault: is the dataset whole? (used by the fault tests and bench/faults.py)."""

from __future__ import annotations

import hashlib
import pathlib
import sqlite3
from dataclasses import dataclass, field


@dataclass
class StoreCheck:
    """What a dataset directory holds after a fault."""

    ok: bool  # the index opens and SQLite's integrity check says "ok"
    records: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # image path -> label
    missing: list[str] = field(default_factory=list)  # records whose image file is gone
    corrupt: list[str] = field(default_factory=list)  # records whose image bytes do not match their sha256
    orphans: list[str] = field(default_factory=list)  # stored images no record points at
    temp_files: list[str] = field(default_factory=list)  # .tmp-* files left by an interrupted write
    problem: str = ""

    @property
    def sound(self) -> bool:
        """Integrity ok and every record's image present and matching its hash (orphans are recoverable)."""
        return self.ok and not self.missing and not self.corrupt


def verify_store(root: pathlib.Path) -> StoreCheck:
    """Check a dataset the way `camlytics repair` would find it: index integrity, images against their hashes,
    orphans and temporary files. Read-only (the index is opened with mode=ro)."""
    root = pathlib.Path(root)
    index = root / "index.sqlite"
    if not index.exists():
        return StoreCheck(ok=not (root / "images").exists(), problem="no index")
    try:
        conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30)
        try:
            result = "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "records" not in tables and result == "ok":
                # the index was never set up (the disk filled as the dataset was created): an empty dataset,
                # which Dataset.open sets up again, unless images exist that it would orphan
                images = list((root / "images").rglob("*.jpg")) if (root / "images").is_dir() else []
                return StoreCheck(ok=not images, orphans=[p.relative_to(root).as_posix() for p in images],
                                  problem="index without tables")
            rows = conn.execute("SELECT path, sha256, label FROM records").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return StoreCheck(ok=False, problem=str(exc))
    check = StoreCheck(ok=result == "ok", records=len(rows), problem="" if result == "ok" else result)
    referenced = set()
    for path, sha, label in rows:
        referenced.add(path)
        if label is not None:
            check.labels[path] = label
        file = root / path
        if not file.is_file():
            check.missing.append(path)
        elif hashlib.sha256(file.read_bytes()).hexdigest() != sha:
            check.corrupt.append(path)
    images = root / "images"
    if images.is_dir():
        for file in images.rglob("*"):
            rel = file.relative_to(root).as_posix()
            if file.name.startswith(".tmp-"):
                check.temp_files.append(rel)
            elif file.is_file() and rel not in referenced:
                check.orphans.append(rel)
    return check
