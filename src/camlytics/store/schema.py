"""The SQLite schema of a dataset index; its version lives in `PRAGMA user_version`.

Statements are separated by ";" and contain no other ";" (they are run one by one in a transaction).
"""

from __future__ import annotations

SCHEMA_VERSION = 1
INDEX_NAME = "index.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,      -- relative to the dataset directory
    sha256        TEXT NOT NULL UNIQUE,
    timestamp     REAL NOT NULL,             -- capture time (Unix s, or s of the day for the simulator)
    source        TEXT NOT NULL,
    sampler       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    score         REAL NOT NULL,
    original_name TEXT,
    label         TEXT,
    annotator     TEXT,
    labelled_at   REAL,
    prediction    TEXT,
    confidence    REAL,
    probs         TEXT,                      -- JSON {class: probability}
    meta          TEXT NOT NULL DEFAULT '{}',
    added_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_timestamp ON records(timestamp);
CREATE INDEX IF NOT EXISTS records_original_name ON records(original_name);

-- Every label change, so the annotator can undo (old values restored on undo).
CREATE TABLE IF NOT EXISTS label_history (
    id              INTEGER PRIMARY KEY,
    record_id       INTEGER NOT NULL REFERENCES records(id),
    old_label       TEXT,
    old_annotator   TEXT,
    old_labelled_at REAL,
    new_label       TEXT,
    annotator       TEXT NOT NULL,
    changed_at      REAL NOT NULL,
    undone          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS label_history_annotator ON label_history(annotator, undone);

-- Dataset-wide settings as JSON values: classes, roi.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
