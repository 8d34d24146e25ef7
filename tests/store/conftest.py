"""Fixtures for the store tests: small distinct JPEGs and a fresh dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from camlytics.frames import encode_jpeg
from camlytics.store import Dataset


def tiny_jpeg(seed: int, size: int = 16) -> bytes:
    """A small JPEG whose bytes differ for every seed."""
    rng = np.random.default_rng(seed)
    return encode_jpeg(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), quality=80)


@pytest.fixture
def make_jpeg() -> Callable[..., bytes]:
    return tiny_jpeg


@pytest.fixture
def dataset(tmp_path) -> Iterator[Dataset]:
    with Dataset.open(tmp_path / "ds", create=True) as ds:
        yield ds


def add(ds: Dataset, jpeg: bytes, t: float = 0.0, **kw) -> int:
    """add_image with defaults for the fields a test does not care about."""
    fields = dict(timestamp=t, source="test", sampler="time", reason="every 10 s", score=1.0)
    fields.update(kw)
    return ds.add_image(jpeg, **fields)


@pytest.fixture
def add_image() -> Callable[..., int]:
    return add
