"""Motion: a running background model; keep frames at the start, middle and end of activity."""

from __future__ import annotations

import math

import numpy as np

from camlytics.sampling.base import Budget, Decision, Sampler
from camlytics.sampling.features import FrameView

SCENE_CHANGE = 0.5  # more than this share of pixels changed at once: lights or IR mode, not motion


def _half(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    g = grey[:h, :w]
    return 0.25 * (g[0::2, 0::2] + g[1::2, 0::2] + g[0::2, 1::2] + g[1::2, 1::2])


class MotionDetector:
    """Share of pixels that differ from a slowly adapting background (gain-compensated for lighting)."""

    def __init__(self, tau: float = 300.0, min_diff: float = 14.0):
        self.tau = tau
        self.min_diff = min_diff
        self.background: np.ndarray | None = None
        self._last_t: float | None = None
        self.mask: np.ndarray | None = None  # changed pixels of the last frame

    def update(self, view: FrameView) -> tuple[float, bool]:
        """(share of changed pixels, whole-scene change) for this frame; then adapt the background."""
        g = _half(view.grey)
        t = view.timestamp
        if self.background is None or self.background.shape != g.shape:
            self.background, self._last_t = g.copy(), t
            self.mask = np.zeros(g.shape, bool)
            return 0.0, False
        bg = self.background
        gain = (float(np.median(bg)) + 8.0) / (float(np.median(g)) + 8.0)  # lighting drifts; motion is local
        diff = np.abs(g * min(2.0, max(0.5, gain)) - bg)
        level = float(np.median(diff))
        spread = 1.4826 * float(np.median(np.abs(diff - level)))
        self.mask = diff - level > max(self.min_diff, 4.0 * spread)
        share = float(self.mask.mean())
        dt = max(0.0, t - (self._last_t if self._last_t is not None else t))
        self._last_t = t
        if not 0.6 < gain < 1 / 0.6 or level > 20.0 or share > SCENE_CHANGE:
            # lights switched or IR mode: start over rather than report motion for minutes
            self.background = g.copy()
            self.mask[:] = False
            return max(share, min(1.0, abs(np.log(gain)))), True
        alpha = 1.0 - math.exp(-dt / self.tau) if dt > 0 else 0.05
        # changed pixels adapt 10x slower, so a person standing still is not absorbed at once
        bg += np.where(self.mask, 0.1 * alpha, alpha) * (g - bg)
        return share, False

    def share_in(self, box: tuple[float, float, float, float]) -> float:
        """Share of the last frame's changed pixels inside `box` (x0, y0, x1, y1 as fractions of the frame)."""
        if self.mask is None:
            return 0.0
        h, w = self.mask.shape
        x0, y0 = int(box[0] * w), int(box[1] * h)
        x1, y1 = max(x0 + 1, int(np.ceil(box[2] * w))), max(y0 + 1, int(np.ceil(box[3] * h)))
        return float(self.mask[y0:y1, x0:x1].mean())


class MotionSampler(Sampler):
    """Keep the first frame of each activity, frames 2, 4, 8, ... into it, and the first quiet frame after."""

    name = "motion"

    def __init__(self, budget: Budget, roi=None, min_share: float = 0.003):
        super().__init__(roi)
        self.budget = budget
        self.detector = MotionDetector()
        self.min_share = min_share
        self._active_frames = 0  # frames into the current activity; 0 = quiet

    def _decide(self, view: FrameView) -> Decision | None:
        t = view.timestamp
        self.budget.advance(t)
        share, scene_change = self.detector.update(view)
        if scene_change:
            return self._keep(t, share, "scene change (lights / IR mode)")
        active = share >= self.min_share
        if active:
            self._active_frames += 1
            n = self._active_frames
            if n == 1:
                return self._keep(t, share, f"activity starts ({100 * share:.1f}% of pixels)")
            if n & (n - 1) == 0:  # a power of two: frames 2, 4, 8, ... sample long activity sparsely
                return self._keep(t, share, f"activity continues (frame {n})")
            return None
        if self._active_frames:
            n, self._active_frames = self._active_frames, 0
            return self._keep(t, share, f"activity ends after {n} frames")
        return None

    def _keep(self, t: float, score: float, reason: str) -> Decision | None:
        if not self.budget.can_spend():
            return None
        self.budget.spend(t)
        return Decision(self.name, score, reason)
