"""Novelty samplers: keep a frame whose feature (HOG or colour histogram) is far from everything kept."""

from __future__ import annotations

import numpy as np

from camlytics.sampling.base import AdaptiveThreshold, Budget, Decision, Sampler
from camlytics.sampling.features import FrameView


class FeatureMemory:
    """Feature vectors of kept frames, at most `capacity` (then random replacement: a reservoir)."""

    def __init__(self, capacity: int = 256, seed: int = 0):
        self.capacity = capacity
        self.vectors: np.ndarray | None = None
        self.count = 0
        self._added = 0
        self._rng = np.random.default_rng(seed)

    def distance(self, v: np.ndarray) -> float:
        """Euclidean distance from v to the nearest remembered vector (inf when empty)."""
        if self.count == 0:
            return float("inf")
        diff = self.vectors[: self.count] - v
        return float(np.sqrt(np.min(np.einsum("ij,ij->i", diff, diff))))

    def count_within(self, v: np.ndarray, radius: float) -> int:
        """How many remembered vectors lie within `radius` of v."""
        if self.count == 0:
            return 0
        diff = self.vectors[: self.count] - v
        return int(np.count_nonzero(np.einsum("ij,ij->i", diff, diff) < radius * radius))

    def add(self, v: np.ndarray) -> None:
        """Remember v (reservoir sampling once full, so old and new kept frames both stay represented)."""
        if self.vectors is None:
            self.vectors = np.empty((self.capacity, v.size), np.float32)
        self._added += 1
        if self.count < self.capacity:
            self.vectors[self.count] = v
            self.count += 1
        else:
            slot = int(self._rng.integers(self._added))
            if slot < self.capacity:
                self.vectors[slot] = v


def hog_vector(view: FrameView) -> np.ndarray:
    """The ROI's (or frame's) HOG cells as one vector; distances are per-cell RMS differences."""
    cells = view.roi_hog
    return cells.ravel() / np.sqrt(cells.shape[0] * cells.shape[1])


def color_vector(view: FrameView) -> np.ndarray:
    """The frame's square-rooted colour/intensity histogram (distance = Hellinger distance)."""
    return view.color


def look_vector(view: FrameView, hog_radius: float = 0.12, color_radius: float = 0.05) -> np.ndarray:
    """ROI shapes and frame colours in one vector, scaled so that distance < 1 means "looks the same".

    The radii are a little above the distance between two frames of an unchanged scene (sensor noise:
    HOG ~0.08, colour ~0.01 to 0.02), below that of a door opening (HOG >= 0.13); the colour radius
    is the smart sampler's step to a new lighting condition.
    """
    return np.concatenate([hog_vector(view) / hog_radius, color_vector(view) / color_radius])


class NoveltySampler(Sampler):
    """Keep frames far from the kept set; the distance threshold adapts so the budget is respected."""

    feature = staticmethod(hog_vector)
    min_distance = 0.05

    def __init__(self, budget: Budget, roi=None, capacity: int = 256):
        super().__init__(roi)
        self.budget = budget
        self.memory = FeatureMemory(capacity)
        self.threshold = AdaptiveThreshold(floor=self.min_distance)
        self._dt = 10.0
        self._last_t: float | None = None

    def target_rate(self, t: float) -> float:
        """Share of frames to keep now: the budget's token rate per frame, more when tokens are saved up."""
        if self._last_t is not None and t > self._last_t:
            self._dt = 0.9 * self._dt + 0.1 * (t - self._last_t)
        self._last_t = t
        return self.budget.rate * self._dt * (0.25 + 2.0 * self.budget.fill)

    def _decide(self, view: FrameView) -> Decision | None:
        t = view.timestamp
        self.budget.advance(t)
        v = self.feature(view)
        d = self.memory.distance(v)
        rate = self.target_rate(t)
        if np.isfinite(d):
            self.threshold.add(d)
        if d < self.threshold.threshold(rate) or not self.budget.can_spend():
            return None
        self.memory.add(v)
        self.budget.spend(t)
        if not np.isfinite(d):
            return Decision(self.name, 1.0, "first frame")
        return Decision(self.name, d, f"novel {self.name} (distance {d:.3f})")


class HogNovelty(NoveltySampler):
    """Novel shapes/edges in the ROI (or frame): doors at new angles, people, objects moved."""

    name = "hog"
    feature = staticmethod(hog_vector)
    min_distance = 0.05


class ColorNovelty(NoveltySampler):
    """Novel colours/brightness: dawn, dusk, lamps, IR night mode, weather."""

    name = "color"
    feature = staticmethod(color_vector)
    min_distance = 0.03
