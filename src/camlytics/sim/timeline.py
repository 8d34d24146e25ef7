"""A simulated day at one installation: door events, people walking, daylight, clouds and lamps.

Everything is generated once from (preset, seed) and then queried as pure functions of t, the
seconds since simulated midnight. The door is "open" when its angle exceeds `OPEN_ANGLE` degrees;
a generated day keeps it open about 3 % of the time, in brief pass-throughs (seconds), rooms left
ajar near the threshold angle and long propped-open periods (minutes). For other kinds of
installation the same "angle" drives what is watched: a roller door is raised by angle/90 of its
height, a car pulls into a parking bay ("occupied" when the angle exceeds `OPEN_ANGLE`, or when a
person stands in the bay). Presets with effects get episodes of rain, fog, passing headlights,
focus hunting and one small camera move, from a random stream of their own (so the rest of the day
is the same with or without them).
"""

from __future__ import annotations

import bisect
import math
import zlib
from dataclasses import dataclass

import numpy as np

from camlytics.constants import DAY
from camlytics.sim.presets import EFFECTS, Preset

OPEN_ANGLE = 10.0  # degrees; strictly greater means open


@dataclass(frozen=True)
class DoorEvent:
    """The door leaves angle 0 at `start`, reaches `angle` after `opening` s, is back at 0 at `end`."""

    start: float
    end: float
    kind: str  # "pass" (someone walks through) | "propped" (held open for minutes) | "ajar"
    angle: float
    opening: float
    closing: float

    def angle_at(self, t: np.ndarray) -> np.ndarray:
        """Door angle (degrees) at times `t` (array), zero outside the event."""
        t = np.asarray(t, dtype=np.float64)
        u = np.clip((t - self.start) / self.opening, 0.0, 1.0)
        v = np.clip((self.end - t) / self.closing, 0.0, 1.0)
        # a hand pushes fast then slows; a door closer swings in quickly and creeps to the latch
        opened = 1.0 - (1.0 - u) ** 2
        closed = v ** 1.4
        a = self.angle * np.minimum(opened, closed)
        return np.where((t >= self.start) & (t < self.end), a, 0.0)

    def open_seconds(self) -> float:
        """Seconds of this event with the angle above the open threshold."""
        if self.angle <= OPEN_ANGLE:
            return 0.0
        r = OPEN_ANGLE / self.angle
        t_up = self.opening * (1.0 - math.sqrt(1.0 - r))  # inverse of the opening curve
        t_down = self.closing * r ** (1.0 / 1.4)
        return max(0.0, (self.end - self.start) - t_up - t_down)


@dataclass(frozen=True)
class Look:
    """How a person looks: height (m), clothes/skin/hair colours (linear RGB), IR brightness of clothes."""

    height: float
    top: tuple[float, float, float]
    bottom: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    ir_top: float
    ir_bottom: float
    width: float  # shoulder width (m)


@dataclass(frozen=True)
class Walker:
    """One person's path: positions (x, z) on the floor at increasing `times`, linear in between."""

    times: tuple[float, ...]
    xs: tuple[float, ...]
    zs: tuple[float, ...]
    kind: str  # "through" | "walk_by" | "stand"
    look: Look

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def position(self, t: float) -> tuple[float, float, float, tuple[float, float] | None]:
        """(x, z, distance walked so far, unit walking direction or None when standing) at time t."""
        x = float(np.interp(t, self.times, self.xs))
        z = float(np.interp(t, self.times, self.zs))
        dx, dz = np.diff(self.xs), np.diff(self.zs)
        seg = np.hypot(dx, dz)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        dist = float(np.interp(t, self.times, cum))
        i = min(max(bisect.bisect_right(self.times, t) - 1, 0), len(seg) - 1)
        heading = (float(dx[i] / seg[i]), float(dz[i] / seg[i])) if seg[i] > 1e-6 else None
        return x, z, dist, heading


PALETTE_TOPS = [
    (0.02, 0.03, 0.06), (0.5, 0.5, 0.5), (0.7, 0.7, 0.68), (0.06, 0.12, 0.35), (0.45, 0.05, 0.04),
    (0.05, 0.2, 0.08), (0.6, 0.45, 0.1), (0.02, 0.02, 0.02), (0.25, 0.3, 0.4), (0.55, 0.25, 0.35),
]
PALETTE_BOTTOMS = [(0.02, 0.03, 0.08), (0.04, 0.04, 0.04), (0.18, 0.15, 0.1), (0.1, 0.14, 0.3), (0.3, 0.3, 0.32)]
SKINS = [(0.62, 0.42, 0.32), (0.45, 0.28, 0.18), (0.25, 0.14, 0.08), (0.7, 0.52, 0.42)]
HAIRS = [(0.03, 0.02, 0.015), (0.12, 0.07, 0.03), (0.4, 0.3, 0.15), (0.35, 0.35, 0.35)]


def random_look(rng: np.random.Generator) -> Look:
    """A random person."""
    jitter = lambda c: tuple(float(np.clip(v * rng.uniform(0.8, 1.2), 0, 1)) for v in c)  # noqa: E731
    return Look(
        height=float(rng.uniform(1.55, 1.95)),
        top=jitter(PALETTE_TOPS[rng.integers(len(PALETTE_TOPS))]),
        bottom=jitter(PALETTE_BOTTOMS[rng.integers(len(PALETTE_BOTTOMS))]),
        skin=SKINS[rng.integers(len(SKINS))],
        hair=HAIRS[rng.integers(len(HAIRS))],
        ir_top=float(rng.uniform(0.25, 0.9)),
        ir_bottom=float(rng.uniform(0.2, 0.7)),
        width=float(rng.uniform(0.40, 0.52)),
    )


class Timeline:
    """The simulated day of one installation; deterministic by (preset, seed)."""

    def __init__(self, preset: Preset, seed: int) -> None:
        self.preset = preset
        self.seed = int(seed)
        # the preset's name joins the seed: two installations with the same seed live different days
        rng = np.random.default_rng([self.seed, zlib.crc32(preset.name.encode()), 0x7133])
        self._weather(rng)
        self._lights(rng)
        self.walkers: list[Walker] = []
        self.events: list[DoorEvent] = []
        self._door_and_people(rng)
        self.events.sort(key=lambda e: e.start)
        self.walkers.sort(key=lambda w: w.start)
        self._starts = np.array([e.start for e in self.events])
        self._walker_start = np.array([w.start for w in self.walkers])
        self._walker_end = np.array([w.end for w in self.walkers])
        self._motion = self._motion_intervals()
        self.effects = self._effects()

    # ---- daylight, clouds, lamps -------------------------------------------------------------

    def _weather(self, rng: np.random.Generator) -> None:
        day_len = rng.uniform(8.5, 15.5) * 3600  # the season
        noon = rng.uniform(12.2, 13.4) * 3600
        self.sunrise, self.sunset = noon - day_len / 2, noon + day_len / 2
        self.cloud_cover = float(rng.uniform(0.0, 0.85) ** 1.3)
        n = 8
        self._cloud_periods = np.exp(rng.uniform(math.log(120), math.log(4 * 3600), n))
        self._cloud_phases = rng.uniform(0, 2 * math.pi, n)
        self._cloud_amps = 1.0 / np.sqrt(np.arange(1, n + 1))
        # a separate stream, so the sun's height does not shift the rest of the generated day
        self.sun_max = math.radians(float(np.random.default_rng([self.seed, 0x50]).uniform(18, 62)))

    def clear_sky(self, t: np.ndarray | float) -> np.ndarray:
        """Daylight without clouds (0 at night, 1 at a clear noon), smooth through twilight."""
        t = np.asarray(t, dtype=np.float64)
        h = np.sin(math.pi * (t - self.sunrise) / (self.sunset - self.sunrise))
        h = np.where((t > self.sunrise - 3 * 3600) & (t < self.sunset + 3 * 3600), h, -1.0)
        twilight = 0.03 * np.clip((h + 0.12) / 0.12, 0, 1) ** 2
        return np.where(h > 0, 0.03 + 0.97 * np.clip(h, 0, 1) ** 0.8, twilight)

    def clouds(self, t: np.ndarray | float) -> np.ndarray:
        """Fraction of daylight that gets through the clouds (1 = clear)."""
        t = np.asarray(t, dtype=np.float64)
        s = np.zeros_like(t)
        for p, ph, a in zip(self._cloud_periods, self._cloud_phases, self._cloud_amps):
            s = s + a * np.sin(2 * math.pi * t / p + ph)
        s = s / self._cloud_amps.sum() * 1.8
        return 1.0 - 0.8 * self.cloud_cover * np.clip(0.5 + s, 0, 1)

    def sun(self, t: float) -> tuple[float, float, float]:
        """(elevation, azimuth) in radians and the strength of direct sunlight (0..1) at time t.

        Azimuth runs from -pi/2 at sunrise through 0 at noon (straight out of the window) to pi/2.
        """
        frac = (t - self.sunrise) / (self.sunset - self.sunrise)
        if not 0.0 < frac < 1.0:
            return 0.0, 0.0, 0.0
        elevation = self.sun_max * math.sin(math.pi * frac)
        azimuth = math.pi * (frac - 0.5)
        direct = float(self.clear_sky(t)) * float(np.clip((self.clouds(t) - 0.55) / 0.45, 0, 1))
        return elevation, azimuth, direct

    def daylight(self, t: np.ndarray | float) -> np.ndarray:
        """Outdoor light, 0..1."""
        return self.clear_sky(t) * self.clouds(t)

    def _lights(self, rng: np.random.Generator) -> None:
        self.light_intervals = []
        for a, b in self.preset.lights_schedule:
            self.light_intervals.append((a * 3600 + rng.normal(0, 900), b * 3600 + rng.normal(0, 1200)))

    def lights_on(self, t: np.ndarray | float) -> np.ndarray:
        """Room lamps switched on (bool)."""
        t = np.asarray(t, dtype=np.float64)
        on = np.zeros(t.shape, dtype=bool)
        for a, b in self.light_intervals:
            on |= (t >= a) & (t < b)
        if self.preset.lights_need_dark:
            on &= self.clear_sky(t) < 0.35
        if self.preset.motion_light > 0:
            starts, ends = self._motion
            i = np.searchsorted(starts, t, side="right") - 1
            on |= (i >= 0) & (t < ends[np.maximum(i, 0)])
        return on

    def _motion_intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Merged (starts, ends) of the motion-activated lamp: on while someone moves, then `motion_light` s."""
        hold = self.preset.motion_light
        if hold <= 0 or not self.walkers:
            return np.zeros(0), np.zeros(0)
        merged: list[list[float]] = []
        for w in sorted(self.walkers, key=lambda w: w.start):
            a, b = w.start + 1.0, w.end + hold  # the sensor needs a step or two into the room
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        arr = np.array(merged)
        return arr[:, 0], arr[:, 1]

    def behind_light_on(self, t: np.ndarray | float) -> np.ndarray:
        """Lamps in the space behind the door switched on (bool)."""
        t = np.asarray(t, dtype=np.float64)
        if self.preset.behind_light_always:
            return np.ones(t.shape, dtype=bool)
        return self.lights_on(t) | (self.clear_sky(t) < 0.2)

    # ---- door events and people --------------------------------------------------------------

    def _activity_sampler(self, rng: np.random.Generator):
        hours = np.arange(24) + 0.5
        w = np.zeros(24)
        for a, b, weight in self.preset.activity_hours:
            w[(hours >= a) & (hours < b)] += weight
        w = w / w.sum()

        def sample() -> float:
            return float((rng.choice(24, p=w) + rng.random()) * 3600)

        return sample

    def _door_and_people(self, rng: np.random.Generator) -> None:
        p = self.preset
        sample_time = self._activity_sampler(rng)
        slow = p.door_speed  # multiplies durations drawn as for a hinged door: the random stream stays the same
        busy: list[tuple[float, float]] = []  # sorted door-busy intervals, kept apart

        def free(a: float, b: float) -> bool:
            i = bisect.bisect_left(busy, (a, b))
            gap = 4.0
            if i > 0 and busy[i - 1][1] + gap > a:
                return False
            return not (i < len(busy) and busy[i][0] < b + gap)

        def place(duration: float, when=sample_time) -> float | None:
            for _ in range(60):
                t0 = when()
                if 120 < t0 and t0 + duration < DAY - 120 and free(t0, t0 + duration):
                    bisect.insort(busy, (t0, t0 + duration))
                    return t0
            return None

        target = rng.uniform(0.024, 0.036) * DAY
        budget = target
        # long propped-open periods
        propped = target * p.propped_share * rng.uniform(0.6, 1.3)
        while propped > 60:
            dur = float(min(propped, np.clip(rng.lognormal(math.log(420), 0.8), 60, 2400)))
            t0 = place(dur)
            propped -= dur
            if t0 is None:
                continue
            ev = DoorEvent(t0, t0 + dur, "propped", float(rng.uniform(55, 92)), float(rng.uniform(1.5, 3)) * slow,
                           float(rng.uniform(2.5, 5)) * slow)
            self.events.append(ev)
            budget -= ev.open_seconds()
            for _ in range(rng.poisson(dur / 150)):  # people use the open door
                tc = float(rng.uniform(t0 + 5, t0 + dur - 5))
                self.walkers.append(self._through(rng, tc, bool(rng.random() < 0.5)))
        # left ajar: angles near the threshold on both sides, minutes long, a small share of open time
        ajar = target * 0.15
        for _ in range(int(rng.integers(2, 6))):
            angle = float(rng.uniform(3, 22))
            dur = float(rng.uniform(60, 700))
            if angle > OPEN_ANGLE:
                if ajar <= 30:
                    angle = float(rng.uniform(3, 9.5))  # budget spent: leave it ajar but still closed
                else:
                    dur = min(dur, ajar)
            t0 = place(dur, lambda: float(rng.uniform(0, DAY)))  # left ajar at any hour, also at night
            if t0 is None:
                continue
            ev = DoorEvent(t0, t0 + dur, "ajar", angle, float(rng.uniform(1, 2)) * slow,
                           float(rng.uniform(1.5, 3)) * slow)
            self.events.append(ev)
            ajar -= ev.open_seconds()
            budget -= ev.open_seconds()
        # brief pass-throughs fill the rest of the open time
        for _ in range(5000):
            if budget <= 0:
                break
            t_front = sample_time()
            into_behind = bool(rng.random() < 0.5)
            group = 1 + int(rng.random() < 0.2) + int(rng.random() < 0.05)
            walkers = [self._through(rng, t_front + 1.6 * k, into_behind) for k in range(group)]
            opening = float(rng.uniform(0.7, 1.6)) * slow
            start = t_front - 0.4
            hold_until = t_front + 1.6 * (group - 1) + opening + float(rng.uniform(0.8, 5.0))
            closing = float(rng.uniform(2.0, 5.0)) * slow
            ev = DoorEvent(start, hold_until + closing, "pass", float(rng.uniform(45, 92)), opening, closing)
            if not (120 < ev.start and ev.end < DAY - 120 and free(ev.start, ev.end)):
                continue
            bisect.insort(busy, (ev.start, ev.end))
            self.events.append(ev)
            self.walkers.extend(walkers)
            budget -= ev.open_seconds()
        # people who only cross the room, and people who stand in front of the door
        n_walk = int(rng.integers(40, 120))
        for _ in range(n_walk):
            self.walkers.append(self._walk_by(rng, sample_time()))
        for _ in range(int(rng.integers(10, 24))):
            self.walkers.append(self._stand(rng, sample_time()))

    def _entry_point(self, rng: np.random.Generator) -> tuple[float, float]:
        """A floor point under/behind the camera, where people enter and leave the view."""
        p = self.preset
        return float(rng.uniform(-p.width / 2 + 0.4, p.width / 2 - 0.4)), float(rng.uniform(-0.8, -0.2))

    def _through(self, rng: np.random.Generator, t_front: float, into_behind: bool) -> Walker:
        """Someone who reaches the door at `t_front` and walks through it."""
        p = self.preset
        speed = float(rng.uniform(1.0, 1.5))
        xc = p.door_x + p.door_w / 2 + float(rng.uniform(-0.1, 0.1))
        z_front = p.depth - 0.6
        z_mid = p.depth + p.wall_thickness + p.behind_depth * float(rng.uniform(0.4, 0.6))
        side = float(rng.choice([-1.0, 1.0]))
        behind = (xc + 0.3 * side, z_mid)
        pts = [self._entry_point(rng), (xc + float(rng.uniform(-0.6, 0.6)), p.depth * 0.6), (xc, z_front),
               behind, (xc + 6 * side, z_mid)]
        key = 2  # index of the point where the walker waits for the door, reached at t_front
        if not into_behind:
            pts, key = pts[::-1], 1
        seg = [math.dist(pts[i], pts[i + 1]) / speed for i in range(len(pts) - 1)]
        times = [0.0]
        for s in seg:
            times.append(times[-1] + s)
        shift = t_front - times[key]
        # a short wait at the door while it swings open
        times = [tt + shift + (0.9 if i > key else 0.0) for i, tt in enumerate(times)]
        times.insert(key + 1, times[key] + 0.9)
        pts.insert(key + 1, pts[key])
        return Walker(tuple(times), tuple(x for x, _ in pts), tuple(z for _, z in pts), "through", random_look(rng))

    def _walk_by(self, rng: np.random.Generator, t0: float) -> Walker:
        """Someone who walks into the room, maybe pauses somewhere, and leaves again."""
        p = self.preset
        speed = float(rng.uniform(0.9, 1.5))
        mid = [(float(rng.uniform(-p.width / 2 + 0.5, p.width / 2 - 0.5)), float(rng.uniform(1.2, p.depth - 0.7)))
               for _ in range(int(rng.integers(1, 3)))]
        pts = [self._entry_point(rng), *mid, self._entry_point(rng)]
        times = [t0]
        out_pts = [pts[0]]
        for i in range(1, len(pts)):
            times.append(times[-1] + math.dist(pts[i - 1], pts[i]) / speed)
            out_pts.append(pts[i])
            if 0 < i < len(pts) - 1 and rng.random() < 0.4:
                times.append(times[-1] + float(rng.uniform(2, 40)))
                out_pts.append(pts[i])
        return Walker(tuple(times), tuple(x for x, _ in out_pts), tuple(z for _, z in out_pts), "walk_by",
                      random_look(rng))

    def _stand(self, rng: np.random.Generator, t0: float) -> Walker:
        """Someone who stands in front of the door (or in the watched spot) for a while (hiding part of it)."""
        p = self.preset
        speed = float(rng.uniform(0.9, 1.4))
        if p.spot is not None:
            x0, x1, z0, z1 = p.spot
            spot = (float(rng.uniform(x0 + 0.3, x1 - 0.3)), float(rng.uniform(z0 + 0.3, z1 - 0.3)))
        else:
            spot = (float(rng.uniform(p.door_x - 0.3, p.door_x + p.door_w + 0.3)),
                    float(rng.uniform(p.depth - 1.6, p.depth - 0.45)))
        a, b = self._entry_point(rng), self._entry_point(rng)
        t1 = t0 + math.dist(a, spot) / speed
        t2 = t1 + float(rng.uniform(15, 200))
        t3 = t2 + math.dist(spot, b) / speed
        return Walker((t0, t1, t2, t3), (a[0], spot[0], spot[0], b[0]), (a[1], spot[1], spot[1], b[1]), "stand",
                      random_look(rng))

    # ---- queries -----------------------------------------------------------------------------

    def angle(self, t: float) -> float:
        """Door angle in degrees at time t."""
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        return float(self.events[i].angle_at(np.asarray(t)))

    def angles(self, ts: np.ndarray) -> np.ndarray:
        """Door angles at many (sorted or not) times."""
        ts = np.asarray(ts, dtype=np.float64)
        out = np.zeros_like(ts)
        idx = np.searchsorted(self._starts, ts, side="right") - 1
        for i in np.unique(idx[idx >= 0]):
            sel = idx == i
            out[sel] = self.events[i].angle_at(ts[sel])
        return out

    def in_spot(self, ts: np.ndarray | float) -> np.ndarray:
        """Number of people standing in the preset's watched floor spot at times ts (zeros without a spot)."""
        ts = np.asarray(ts, dtype=np.float64)
        count = np.zeros(ts.shape, np.int32)
        if self.preset.spot is None:
            return count
        x0, x1, z0, z1 = self.preset.spot
        flat = ts.ravel()
        for w in self.walkers:
            sel = np.flatnonzero((flat >= w.start) & (flat <= w.end))
            if len(sel):
                x, z = np.interp(flat[sel], w.times, w.xs), np.interp(flat[sel], w.times, w.zs)
                count.ravel()[sel] += (x > x0) & (x < x1) & (z > z0) & (z < z1)
        return count

    def rare(self, ts: np.ndarray | float) -> np.ndarray:
        """Whether the watched thing is in its rare state (open / occupied) at times ts (bool array)."""
        ts = np.asarray(ts, dtype=np.float64)
        out = np.atleast_1d(self.angles(ts)) > OPEN_ANGLE
        if self.preset.spot is not None:
            out |= np.atleast_1d(self.in_spot(ts)) > 0
        return out.reshape(ts.shape)

    def state(self, t: float) -> str:
        """The truth state name at time t: one of the preset's `classes` (common, rare)."""
        return self.preset.classes[int(bool(self.rare(float(t))))]

    # ---- scene effects -------------------------------------------------------------------------

    def _effects(self) -> dict[str, list[tuple[float, float, float]]]:
        """Episodes (start, end, strength) of each of the preset's effects; none for presets without."""
        out: dict[str, list[tuple[float, float, float]]] = {}
        self._shift_xy = (0, 0)
        if not self.preset.effects:
            return out
        def episodes(rng: np.random.Generator, n: int, lo: float, hi: float,
                     strength: tuple[float, float]) -> list[tuple[float, float, float]]:
            eps = []
            for _ in range(n):
                dur = float(rng.uniform(lo, hi))
                t0 = float(rng.uniform(0, DAY - dur))
                eps.append((t0, t0 + dur, float(rng.uniform(*strength))))
            return sorted(eps)

        for name in self.preset.effects:
            # a stream per effect: switching one effect on or off leaves the others' episodes where they were
            key = EFFECTS.index(name) if name in EFFECTS else 99
            rng = np.random.default_rng([self.seed, zlib.crc32(self.preset.name.encode()), 0xEFF, key])
            if name == "rain":
                out[name] = episodes(rng, int(rng.integers(1, 4)), 1200, 3 * 3600, (0.4, 1.0))
            elif name == "fog":
                out[name] = episodes(rng, int(rng.integers(1, 3)), 3600, 4 * 3600, (0.3, 0.8))
            elif name == "headlights":  # cars passing: mostly in the evening and at night, a few s each
                starts = np.concatenate([rng.uniform(0, DAY, int(rng.integers(20, 50))),
                                         rng.uniform(17 * 3600, DAY, int(rng.integers(30, 80))),
                                         rng.uniform(0, 6 * 3600, int(rng.integers(10, 30)))])
                out[name] = [(float(a), float(a) + float(rng.uniform(2.5, 6.0)), float(rng.uniform(0.5, 1.0)))
                             for a in np.sort(starts)]
            elif name == "focus":  # autofocus / exposure hunting: a few seconds of blur and pumping
                out[name] = episodes(rng, int(rng.integers(8, 20)), 2.0, 8.0, (0.5, 1.0))
            elif name == "shift":  # the camera is knocked: the view moves by a few pixels from then on
                t0 = float(rng.uniform(3 * 3600, 21 * 3600))
                self._shift_xy = tuple(int(rng.choice([-1, 1])) * int(rng.integers(2, 6)) for _ in range(2))
                out[name] = [(t0, DAY, 1.0)]
            else:
                raise ValueError(f"unknown scene effect {name!r}")
        return out

    def effect_at(self, name: str, t: float) -> tuple[float, float, float] | None:
        """The episode (start, end, strength) of effect `name` under way at t, if any."""
        for ep in self.effects.get(name, ()):
            if ep[0] <= t < ep[1]:
                return ep
            if ep[0] > t:
                break
        return None

    def shift_at(self, t: float) -> tuple[int, int]:
        """The camera's offset (dx, dy) in pixels at t: (0, 0) until it is knocked, then a few pixels."""
        if self.effect_at("shift", t) is None:
            return 0, 0
        return self._shift_xy

    def walkers_at(self, t: float) -> list[Walker]:
        """People on their way at time t (visible or not)."""
        if not self.walkers:
            return []
        idx = np.nonzero((self._walker_start <= t) & (self._walker_end >= t))[0]
        return [self.walkers[i] for i in idx]

    def open_fraction(self) -> float:
        """Fraction of the day with the door open (angle > 10 degrees)."""
        return sum(e.open_seconds() for e in self.events) / DAY

    def open_intervals(self) -> list[tuple[float, float, str]]:
        """(start, end, kind) of every period with the door open."""
        out = []
        for e in self.events:
            s = e.open_seconds()
            if s > 0:
                r = OPEN_ANGLE / e.angle
                a = e.start + e.opening * (1.0 - math.sqrt(1.0 - r))
                out.append((a, a + s, e.kind))
        return out
