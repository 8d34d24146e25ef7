"""The smart sampler: door-region anomalies first, then activity, lighting, time coverage and shapes, on a budget.

Without ground truth, the rare frames (door open, spot occupied, people, night) show up as: the
door region looking different from its long-term background (ROI HOG distance; the background of
each lighting is remembered across light switches), activity anywhere (background subtraction), and
colours or shapes unlike anything kept so far. Some conditions look alike (dusk with the lamps on is
night with the lamps on), so every hour or so of the day gets a frame too. All parts share one
Budget (total, per hour, token bucket): anomalies may spend whenever a token is left, the others
only when tokens are saved up. With a model, its brief flips and unsure frames come first (see
FlipSampler).

Near duplicates are not kept: a frame that looks like `look_quota` kept frames already (ROI shapes
and frame colours within noise, `look_vector`) is skipped, `event_quota` times as many for frames
whose door region differs from its background. A quiet night then costs a few frames, not a
hundred, and the budget left over is simply not spent: the kept set stays rich in the rare state.

A door swings through the open/closed boundary in under a second, and a source polled every 30 s
sees a door opened for ten seconds one time in three. When the door region starts to change, or
something moves next to it (someone about to use the door or take the spot), the sampler asks the
source for a burst (`pace`: a frame every 0.5 s for 12 s) and keeps a few burst frames: clearly
changed looks it has not kept yet, and ones whose door region differs only slightly (nearly shut,
from both sides of the boundary).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from camlytics.frames import Frame
from camlytics.sampling.base import Budget, Decision, Sampler
from camlytics.sampling.features import FrameView
from camlytics.sampling.flips import FlipSampler
from camlytics.sampling.motion import MotionDetector
from camlytics.sampling.novelty import FeatureMemory, color_vector, hog_vector, look_vector


EVENT_PARTS = ("anomaly", "burst", "swing")  # the parts that keep frames whose door region differs from background


class RoiAnomaly:
    """How far the ROI's HOG cells are from their slowly learned background; bounded memory.

    The background is an exponential average over `tau` seconds of frames that were not anomalous,
    so a door that stays open for minutes keeps scoring high; after `adopt` seconds of anomaly the
    new look becomes the background (the door was propped open all night, a box was moved).
    After a scene change (lights, IR mode) the background of that lighting is restored if it was
    seen before, else learned afresh from the median of the first `warmup` frames, so that one
    frame with the door open does not become "normal".

    A strong anomaly is adopted sooner when the background was only seen for minutes (learned
    right after a light switch while the door stood open): after `min_adopt` seconds or as long as
    that background was normal. When a long-standing background was given up, it is restored as
    soon as the region looks like it again (the door propped open all night is shut in the morning).

    A door left ajar changes the region only a little, below the one-frame threshold, but for
    minutes: a score above the lower `weak_k` threshold for `persist` frames in a row is an anomaly
    too. The background keeps learning through such a weak anomaly, so a slow drift of the light
    that trips it is absorbed instead of blocking the other samplers for `adopt` seconds.
    """

    min_adopt = 600.0  # seconds of anomaly before even a brand-new background gives way

    def __init__(self, tau: float = 1800.0, adopt: float = 7200.0, k: float = 6.0, floor: float = 0.06,
                 warmup: int = 7, regimes: int = 8, weak_k: float = 2.5, persist: int = 3):
        self.tau, self.adopt, self.k, self.floor, self.warmup = tau, adopt, k, floor, warmup
        self.weak_k, self.persist = weak_k, persist
        self._weak_run = 0  # frames in a row above the weak threshold
        self.background: np.ndarray | None = None
        self.normal_scores: deque[float] = deque(maxlen=360)
        self._pending: list[np.ndarray] = []  # warm-up frames
        self._regimes: deque[tuple[np.ndarray, np.ndarray, deque, float]] = deque(maxlen=regimes)
        self._last_t: float | None = None
        self._since: float | None = None  # start of the current anomaly
        self._before: np.ndarray | None = None  # the long-standing background before an adopted anomaly
        self._adopting = False  # the current anomaly is being learned as the background
        self._normal_seconds = 0.0  # stream time the current background has been the normal look

    def reset(self, look: np.ndarray | None = None) -> None:
        """Scene change: remember the current background under its lighting `look`, then switch."""
        if self.background is not None and self._look is not None:
            self._regimes.append((self._look, self.background, self.normal_scores, self._normal_seconds))
        self.background, self.normal_scores, self._pending, self._since = None, deque(maxlen=360), [], None
        self._before, self._adopting, self._normal_seconds = None, False, 0.0
        self._weak_run = 0
        self._look = look
        if look is not None and self._regimes:
            dists = [float(np.linalg.norm(look - r[0])) for r in self._regimes]
            best = int(np.argmin(dists))
            if dists[best] < 0.1:  # this lighting was seen before: its background is still valid
                _, self.background, self.normal_scores, self._normal_seconds = self._regimes[best]
                del self._regimes[best]

    _look: np.ndarray | None = None
    weak_only = False  # the last anomaly was a persistent weak one (ajar), not a strong one

    def thresholds(self) -> tuple[float, float]:
        """(one-frame, weak) thresholds: median + k (weak_k) * MAD of recent normal scores, at least `floor`.

        Too few normal scores yet: a fixed one-frame threshold and no weak one (inf).
        """
        if len(self.normal_scores) < 6:
            return max(self.floor, 0.15), np.inf
        s = np.fromiter(self.normal_scores, np.float64)
        med = float(np.median(s))
        sigma = 1.4826 * float(np.median(np.abs(s - med)))
        return max(self.floor, med + self.k * sigma + 0.02), max(self.floor, med + self.weak_k * sigma + 0.02)

    def score(self, view: FrameView, background: np.ndarray | None = None) -> float:
        """Distance of this frame's ROI cells from the background (nan while there is none); no update."""
        background = self.background if background is None else background
        if background is None or background.shape != view.roi_hog.shape:
            return float("nan")
        per_cell = np.sqrt(((view.roi_hog - background) ** 2).sum(axis=2)).ravel()
        if view.roi is None:  # whole frame: something changed locally, look at the worst tenth
            k = max(1, per_cell.size // 10)
            return float(np.mean(np.partition(per_cell, -k)[-k:]))
        return float(per_cell.mean())

    def band(self, score: float) -> str:
        """"strong" (above the one-frame threshold), "weak" (between the two) or "normal"."""
        strong_at, weak_at = self.thresholds()
        return "strong" if score > strong_at else "weak" if score > weak_at else "normal"

    def update(self, view: FrameView) -> tuple[float, bool]:
        """(score, anomalous) of this frame; then adapt the background."""
        cells = view.roi_hog
        t = view.timestamp
        if self._look is None:
            self._look = view.color
        if self.background is None or self.background.shape != cells.shape:
            self._pending.append(cells)
            if len(self._pending) >= self.warmup:
                self.background = np.median(np.stack(self._pending), axis=0)
                self._pending = []
            self._last_t = t
            return 0.0, False
        score = self.score(view)
        strong_at, weak_at = self.thresholds()
        if self._before is not None and self.score(view, self._before) <= weak_at:
            # back to the look from before an adopted anomaly (the door propped open all night is shut):
            # that is the background again, not a new anomaly for another `adopt` seconds
            self.background, self._before = self._before, None
            score = self.score(view)
        strong, weak = score > strong_at, score > weak_at
        self._weak_run = self._weak_run + 1 if weak else 0
        anomalous = strong or self._weak_run >= self.persist
        self.weak_only = anomalous and not strong
        dt = max(0.0, t - (self._last_t if self._last_t is not None else t))
        self._last_t = t
        if anomalous and not strong:  # ajar: keep learning, a slow drift of the light ends it by itself
            self._since, self._adopting = None, False
            learn = True
        elif anomalous:
            self._since = t if self._since is None else self._since
            # a background seen for only minutes (learned just after a light switch, with the door
            # open) gives way sooner than one seen for hours
            learn = t - self._since > min(self.adopt, max(self.min_adopt, self._normal_seconds))
            if learn and not self._adopting:
                self._adopting = True
                self._before = self.background.copy() if self._normal_seconds >= self.adopt else None
                self._normal_seconds = 0.0
        else:
            self._since, self._adopting = None, False
            self._normal_seconds += dt
            self.normal_scores.append(score)
            learn = True
        if learn:
            alpha = 1.0 - np.exp(-dt / self.tau) if dt > 0 else 0.01
            self.background += alpha * (cells - self.background)
            self._look += alpha * (view.color - self._look)
        return score, anomalous


class SmartSampler(Sampler):
    """Anomalies of the door region, activity, lighting and shape novelty, all on one Budget."""

    name = "smart"

    burst_interval = 0.5  # seconds between frames while the door region starts to change
    burst_seconds = 12.0   # how long such a burst lasts
    burst_keep = 2         # nearly-shut frames kept per burst
    burst_keep_strong = 2  # clearly changed, unseen looks kept per burst
    burst_novelty = 0.1    # HOG distance from the kept events that makes a burst frame unseen
    swing_share = 0.3      # of the budget, at most, for burst frames
    near_margin = 0.25     # motion within this share of the ROI's size around it: someone at the door / spot
    near_share = 0.02      # share of the pixels there that must change
    look_quota = 3         # kept frames that look the same (look_vector), at most: no near duplicates
    event_quota = 3        # times as many for frames whose door region differs from its background

    def __init__(self, budget: Budget, roi=None, predict: Callable[[Frame], dict[str, float]] | None = None):
        super().__init__(roi)
        self._burst_until = -np.inf
        self._burst_armed = True  # a new burst may start (the door region was back to normal since the last)
        self._burst_kept = self._burst_kept_strong = 0
        self._prev_t = -np.inf  # the previous frame's time
        self._regular_t: float | None = None  # the previous frame that was not a burst frame
        self._regular_dt = np.inf  # the source's own interval, as last seen
        # Save up for busy hours: a quarter of the budget may wait in the bucket.
        budget.burst = max(budget.burst, budget.total / 4)
        self.budget = budget
        self.anomaly = RoiAnomaly()
        self.motion = MotionDetector()
        self.event_memory = FeatureMemory(512, seed=1)  # ROI HOG of kept anomaly frames
        self.color_memory = FeatureMemory(256, seed=2)
        self.shape_memory = FeatureMemory(256, seed=3)
        self.looks = FeatureMemory(max(256, budget.total), seed=4)  # every kept frame's look_vector
        self.flips = FlipSampler(predict, budget, roi) if predict is not None else None
        self._event_frames = 0  # frames into the current anomaly; 0 = none
        self._activity_frames = 0
        self.kept_by: dict[str, int] = {}
        self.color_step = 0.05  # Hellinger distance that counts as a new lighting condition
        self.slot = budget.duration / (budget.total / 12)  # up to a twelfth of the budget: hourly for 300 a day
        self._last_slot: int | None = None

    def _decide(self, view: FrameView) -> Decision | None:
        t = view.timestamp
        budget = self.budget
        budget.advance(t)
        dt, self._prev_t = t - self._prev_t, t
        if t < self._burst_until and dt < 0.5 * self._regular_dt:
            return self._burst_frame(view)  # a frame the burst added (a source that ignores the pace sends none)
        if self._regular_t is not None and t > self._regular_t:
            self._regular_dt = t - self._regular_t
        self._regular_t = t
        self.pace = None
        share, scene_change = self.motion.update(view)
        if scene_change:
            self.anomaly.reset(color_vector(view).copy())
            return self._keep(view, "light", share, "scene change (lights / IR mode)", dedup=False)
        score, anomalous = self.anomaly.update(view)
        near = self._near_motion(view, share)
        if (anomalous or near) and self._burst_armed and self.burst_seconds > 0:
            # The door region starts to change, or something moves next to it: ask the source for
            # frames every `burst_interval` seconds for a while, to catch the door moving (the state
            # a slow poll misses most often) and its nearly-shut angles.
            self._burst_until, self._burst_armed = t + self.burst_seconds, False
            self._burst_kept = self._burst_kept_strong = 0
            self.pace = self.burst_interval
        elif not anomalous and not near:
            self._burst_armed = True
        if self.flips is not None:
            decision = self.flips.offer_view(view)  # spends from the shared budget itself
            if decision is not None:
                return self._remember(view, "flips", decision.score, decision.reason)
        if anomalous:
            self._event_frames += 1
            n = self._event_frames
            d = self.event_memory.distance(hog_vector(view))
            # the start of every event, its middle, and other frames while tokens last, preferring unseen
            # looks; frames 1, 2, 4, 8, ... always. A door left ajar barely changes: those frames only.
            if n & (n - 1) == 0:
                needed = 0.0
            else:
                needed = np.inf if self.anomaly.weak_only else 0.12 * (1.0 - budget.fill) ** 2
            if d > needed:
                why = "slightly, for a while (ajar?)" if self.anomaly.weak_only else "from background"
                decision = self._keep(view, "anomaly", score, f"door region differs {why} (frame {n})", dedup=n > 1)
                if decision is not None:
                    self.event_memory.add(hog_vector(view))
                return decision
            return None
        if self._event_frames:
            self._event_frames = 0
            if budget.fill > 0.6:
                return self._keep(view, "anomaly", score, "door region back to background")
        active = share >= 0.003
        if active:
            self._activity_frames += 1
            if self._activity_frames == 1 and budget.fill > 0.4:
                return self._keep(view, "motion", share, f"activity starts ({100 * share:.1f}% of pixels)")
        else:
            self._activity_frames = 0
        if budget.fill > 0.1:
            # lighting coverage: dawn, dusk, lamps; cheap to keep because it is rare by construction
            d = self.color_memory.distance(color_vector(view))
            if d > self.color_step + 0.2 * (1.0 - budget.fill):
                why = "first frame" if not np.isfinite(d) else f"new colours/brightness (distance {d:.3f})"
                return self._keep(view, "color", d, why)
        slot = int(t // self.slot)
        if slot != self._last_slot and t - slot * self.slot >= self.slot / 2 and budget.fill > 0.1:
            # nothing kept in this slot of the day: some conditions (dusk with the lamps on) look like
            # others and are only found by spreading frames over time
            return self._keep(view, "time", 1.0, f"first frame kept in {self.slot / 60:.0f} min", dedup=False)
        if budget.fill > 0.6:
            d = self.shape_memory.distance(hog_vector(view))
            if d > 0.2 + 0.3 * (1.0 - budget.fill):  # above sensor noise (HOG ~0.08 to 0.19 between frames)
                return self._keep(view, "hog", d, f"new shapes (distance {d:.3f})")
        return None

    def _burst_frame(self, view: FrameView) -> Decision | None:
        """A frame of a burst: only the door region's look counts; nothing else learns from it.

        A door swinging shut passes the open/closed boundary in a fraction of a second; the frames
        whose door region differs only a little (between the weak and the one-frame threshold) are
        the rare examples from both sides of that boundary (`burst_keep` a burst). Frames whose
        region clearly differs and looks unlike every kept event (`burst_novelty`) are the door
        open at an angle the polls missed (`burst_keep_strong` a burst).
        The background, motion and flip parts do not see burst frames (the novelty memories only the
        kept ones), so a burst does not change what they learn per second of stream time.
        """
        if view.timestamp + self.burst_interval >= self._burst_until - 1e-6:
            self.pace = None  # the last frame of the burst: the next one comes at the source's own rate
        score = self.anomaly.score(view)
        if not np.isfinite(score):
            return None
        band = self.anomaly.band(score)
        # at most `swing_share` of the budget: a busy day's swings must not starve the other parts
        if self.kept_by.get("swing", 0) + self.kept_by.get("burst", 0) >= self.swing_share * self.budget.total:
            return None
        if band == "weak" and self._burst_kept < self.burst_keep:
            decision = self._keep(view, "swing", score, "door region differs slightly while it moves (nearly shut?)")
            self._burst_kept += decision is not None
            return decision
        if band == "strong" and self._burst_kept_strong < self.burst_keep_strong:
            v = hog_vector(view)
            d = self.event_memory.distance(v)
            if d > self.burst_novelty:
                why = f"door region changes during a burst (unseen look, {d:.2f})"
                decision = self._keep(view, "burst", score, why)
                if decision is not None:
                    self._burst_kept_strong += 1
                    self.event_memory.add(v)
                return decision
        return None

    def _near_motion(self, view: FrameView, share: float) -> bool:
        """True when something moves in or next to the ROI (anywhere in the frame without one)."""
        if view.roi is None:
            return share >= 0.003
        w, h = view.size
        x0, y0, x1, y1 = view.roi
        mx, my = self.near_margin * (x1 - x0), self.near_margin * (y1 - y0)
        box = (max(0.0, (x0 - mx) / w), max(0.0, (y0 - my) / h), min(1.0, (x1 + mx) / w), min(1.0, (y1 + my) / h))
        return self.motion.share_in(box) >= self.near_share

    def _keep(self, view: FrameView, part: str, score: float, reason: str, dedup: bool = True) -> Decision | None:
        """Keep this frame if the budget allows and (with `dedup`) fewer than `look_quota` kept frames look like it."""
        if not self.budget.can_spend():
            return None
        quota = self.look_quota * (self.event_quota if part in EVENT_PARTS else 1)
        if dedup and self.looks.count_within(look_vector(view), 1.0) >= quota:
            return None  # a near duplicate of frames kept already: the same scene, the same state
        self.budget.spend(view.timestamp)
        return self._remember(view, part, score, reason)

    def _remember(self, view: FrameView, part: str, score: float, reason: str) -> Decision:
        """Book a kept frame: its time slot, its look for the novelty parts, the count per part."""
        self._last_slot = int(view.timestamp // self.slot)
        # every kept frame counts as seen by the novelty parts, whichever part kept it
        self.color_memory.add(color_vector(view))
        self.shape_memory.add(hog_vector(view))
        self.looks.add(look_vector(view))
        self.kept_by[part] = self.kept_by.get(part, 0) + 1
        return Decision(f"smart/{part}", float(score) if np.isfinite(score) else 1.0, reason)
