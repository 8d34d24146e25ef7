"""The light condition of each record (frames.light_condition), from its image decoded small, cached in its meta."""

from __future__ import annotations

import pathlib

import numpy as np

from camlytics.errors import DatasetError
from camlytics.frames import LIGHT_CONDITIONS, light_condition
from camlytics.store.dataset import Dataset, Record

META_KEY = "light"  # rename it when light_condition's thresholds change: cached values would be stale
UNREADABLE = "unreadable"
DRAFT_SIDE = 64  # JPEG DCT scaling decodes at 1/2..1/8 size directly: a 640x360 frame costs ~1 ms, not ~6


def image_light(path: pathlib.Path) -> str:
    """light_condition of a stored JPEG, decoded at about DRAFT_SIDE pixels; UNREADABLE if it cannot be."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
            pixels = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return UNREADABLE
    return light_condition(pixels)


def light_conditions(ds: Dataset, records: list[Record] | None = None) -> dict[int, str]:
    """Each record's light condition ("day", "dim", "night", "ir", or UNREADABLE); computed once, then cached."""
    conditions: dict[int, str] = {}
    computed: dict[int, dict[str, str]] = {}
    for record in ds.records() if records is None else records:
        cached = record.meta.get(META_KEY)
        if cached in LIGHT_CONDITIONS:
            conditions[record.id] = cached
            continue
        try:
            condition = image_light(ds.image_path(record))
        except DatasetError:  # a path outside the dataset: no image to judge
            condition = UNREADABLE
        conditions[record.id] = condition
        if condition != UNREADABLE:
            computed[record.id] = {META_KEY: condition}
    if computed:
        try:
            ds.update_meta(computed)
        except DatasetError:  # a cache: a busy or full disk must not stop `info`
            pass
    return conditions


def light_balance(ds: Dataset) -> dict[str, dict[str, int]]:
    """{light condition: {label or "unlabelled": count}} over every record, conditions in LIGHT_CONDITIONS order."""
    records = ds.records()
    labels = {record.id: record.label or "unlabelled" for record in records}
    table: dict[str, dict[str, int]] = {}
    for record_id, condition in light_conditions(ds, records).items():
        row = table.setdefault(condition, {})
        label = labels.get(record_id, "unlabelled")
        row[label] = row.get(label, 0) + 1
    order = [*LIGHT_CONDITIONS, UNREADABLE]
    return {condition: table[condition] for condition in order if condition in table}
