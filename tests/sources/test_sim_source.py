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


def test_several_days_are_consecutive_days_of_the_same_installation():
    spec = "sim:office?seed=5&interval=21600&start=03:00&duration=43200&width=320&height=180&days=3"
    with open_source(spec) as src:
        frames = list(src)
    assert len(src) == len(frames) == 6
    assert [f.timestamp for f in frames] == [d * 86400.0 + h * 3600 for d in range(3) for h in (3, 9)]
    assert [f.source for f in frames[::2]] == ["sim:office?seed=5", "sim:office?seed=6", "sim:office?seed=7"]
    day2 = next(iter(open_source("sim:office?seed=6&interval=21600&start=03:00&width=320&height=180")))
    assert (frames[2].image == day2.image).all() and frames[2].meta["truth"]["t"] == 3 * 3600


def test_a_burst_pace_gives_frames_faster_then_the_grid_resumes():
    # A sampler asks for a burst (FrameSource.pace): frames every 2 s, then back on the 60 s grid.
    times = []
    with open_source("sim:office?seed=0&interval=60&start=08:00&width=160&height=90", count=7) as src:
        for frame in src:
            times.append(frame.timestamp - 8 * 3600)
            src.pace(2.0 if len(times) == 2 else None if len(times) == 4 else src._pace)
    assert times == [0.0, 60.0, 62.0, 64.0, 120.0, 180.0, 240.0]
    with open_source("sim:office?seed=0&interval=1&width=160&height=90", count=3) as src:
        src.pace(5.0)  # never slower than the source's own interval
        assert [f.timestamp for f in src] == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("spec, message", [
    ("sim:office?days=0", "days must be a whole number in 1..366"),
    ("sim:office?days=2.5", "whole number"),
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
