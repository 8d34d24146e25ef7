"""SimSource: a simulated day rendered in-process, with ground truth on every frame."""

from __future__ import annotations

import pytest

from camlytics.errors import SourceError
from camlytics.sources import open_source
from camlytics.sources.simsource import SimSource


def test_a_day_every_hour_with_truth():
    with open_source("sim:office?seed=0&interval=3600&start=0&duration=86400&width=320&height=180") as src:
        frames = list(src)
    assert isinstance(src, SimSource) and len(src) == 24
    assert [f.timestamp for f in frames] == [3600.0 * i for i in range(24)]
    assert all(f.size == (320, 180) and f.jpeg[:2] == b"\xff\xd8" for f in frames)
    assert all(f.meta["truth"]["state"] in ("open", "closed") for f in frames)
    assert frames[0].source == "sim:office?seed=0"


def test_same_spec_same_frames_and_options_override_the_spec():
    spec = "sim:office?seed=0&interval=60&start=08:00&width=320&height=180"
    a = next(iter(open_source(spec, count=1)))
    b = next(iter(open_source(spec, count=1)))
    assert a.timestamp == 8 * 3600 and (a.image == b.image).all()
    assert [f.timestamp for f in open_source(spec, count=2, interval=30)] == [28800.0, 28830.0]


@pytest.mark.parametrize("spec, message", [
    ("sim:nowhere", "unknown preset 'nowhere'"),
    ("sim:office?colour=red", "unknown option"),
    ("sim:office?interval=-1", "interval must be > 0"),
    ("sim:office?seed=1.5", "whole number"),
    ("sim:office?start=23:00&duration=7200", "past the end"),
    ("sim:office?start=25:00", "valid time of day"),
])
def test_bad_specs_name_the_value(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec)
