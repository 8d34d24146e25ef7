"""SimSource: frames rendered in-process from the synthetic scene ("sim:office?seed=1&interval=10")."""

from __future__ import annotations

import math
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

from camlytics.constants import DAY
from camlytics.errors import SourceError
from camlytics.frames import Frame
from camlytics.sources.base import FrameSource, check_limit

SIM_OPTIONS = ("seed", "interval", "start", "duration", "width", "height", "quality", "count", "days")
MAX_DAYS = 366


def parse_sim_spec(spec: str) -> tuple[str, dict[str, str]]:
    """("office", {"seed": "1", ...}) from "sim:office?seed=1&..."; unknown options are an error."""
    try:
        parts = urlsplit(spec)
    except ValueError as exc:  # "Invalid IPv6 URL" for a stray [
        raise SourceError(f"sim source {spec!r} is not a valid sim:PRESET?key=value spec ({exc})") from None
    preset = (parts.netloc + parts.path).strip("/") or "office"
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(SIM_OPTIONS))
    if unknown:
        raise SourceError(f"sim source {spec!r}: unknown option(s) {unknown}; known: {list(SIM_OPTIONS)}")
    return preset, options


class SimSource(FrameSource):
    """Frames of simulated days, every `interval` seconds from `start` for `duration` seconds of each day.

    Timestamps are seconds since midnight of the first day; `meta["truth"]` holds the scene's ground
    truth. `days` > 1 runs the same installation on consecutive days: day d is the scene of seed
    `seed + d` (its own weather, door events and people), its timestamps offset by d * 86400 s.
    """

    strict_start = False

    def __init__(self, preset: str = "office", *, seed: int = 0, interval: float = 10.0, start: float | str = 0.0,
                 duration: float | None = None, width: int = 640, height: int = 360, quality: int = 85,
                 count: int | None = None, days: int = 1) -> None:
        from camlytics.sim import PRESETS
        from camlytics.sim.camera import parse_clock, shared_scene

        if preset not in PRESETS:
            raise SourceError(f"sim source: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        try:
            self.start = parse_clock(start)
        except ValueError as exc:
            raise SourceError(f"sim source: {exc}") from None
        self.interval = check_limit("interval", interval)
        duration = check_limit("duration", duration) if duration is not None else DAY - self.start
        if self.start + duration > DAY + 1e-9:
            raise SourceError(f"sim source: start {self.start:g} s + duration {duration:g} s runs past the end "
                              "of the simulated day (86400 s)")
        width = check_limit("width", width, integer=True)
        height = check_limit("height", height, integer=True)
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise SourceError(f"sim source: size {width}x{height} is outside 16..4096 pixels")
        if not (isinstance(quality, int) and 1 <= quality <= 100):
            raise SourceError(f"sim source: quality must be 1..100, got {quality!r}")
        if not (isinstance(days, int) and 1 <= days <= MAX_DAYS):
            raise SourceError(f"sim source: days must be a whole number in 1..{MAX_DAYS}, got {days!r}")
        if not (isinstance(seed, int) or (isinstance(seed, float) and seed.is_integer())):
            raise SourceError(f"sim source: seed must be a whole number, got {seed!r}")
        if not 0 <= int(seed) + days - 1 < 2**32:
            raise SourceError(f"sim source: seed {seed} + days {days} runs past the largest seed (2**32 - 1)")
        super().__init__(f"sim:{preset}?seed={seed}", count=count, duration=None)
        self.end = self.start + duration
        self.quality = quality
        self.days = days
        self._preset, self._seed, self._size = preset, int(seed), (width, height)
        self.scene = shared_scene(preset, int(seed), width, height)  # the first day's

    def __len__(self) -> int:
        """Frames the full run yields (before `count`) at the regular interval; bursts add more."""
        n = (int((self.end - self.start) / self.interval - 1e-9) + 1) * self.days
        return n if self.count is None else min(n, self.count)

    def _read(self) -> Iterator[Frame | SourceError]:
        from camlytics.sim.camera import shared_scene

        for day in range(self.days):
            scene = self.scene if day == 0 else shared_scene(self._preset, self._seed + day, *self._size)
            t = self.start
            while not self._closed and t < self.end and t < DAY:
                frame = scene.frame(t, self.quality)
                if day:
                    frame.timestamp += day * DAY
                yield frame
                step = self._next_interval(self.interval)
                if step == self.interval:  # back on the regular grid after a burst
                    t = self.start + (math.floor((t - self.start) / self.interval + 1e-9) + 1) * self.interval
                else:
                    t += step


def open_sim(spec: str, **options) -> SimSource:
    """A SimSource from a "sim:PRESET?key=value&..." spec; keyword options override the spec's."""
    preset, args = parse_sim_spec(spec)
    merged: dict = {**args, **{k: v for k, v in options.items() if v is not None}}
    kwargs: dict = {}
    for key, value in merged.items():
        if key not in SIM_OPTIONS:
            if key in options and key not in args:  # given on the command line (--timeout): a camera's option
                raise SourceError(f"--{key} does not apply to a sim: source (it is for cameras or image folders)")
            raise SourceError(f"sim source: unknown option {key!r}; known: {list(SIM_OPTIONS)}")
        if key == "start":
            kwargs[key] = value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SourceError(f"sim source: {key}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise SourceError(f"sim source: {key}={value!r} must be a finite number")
        integer = key in ("seed", "width", "height", "quality", "count", "days")
        if integer and number != int(number):
            raise SourceError(f"sim source: {key}={value!r} must be a whole number")
        kwargs[key] = int(number) if integer else number
    return SimSource(preset, **kwargs)
