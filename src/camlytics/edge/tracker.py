"""Debounced state tracking: turn per-frame predictions into stable state changes, and flag the
frames a deployed model probably gets wrong ("surprising" frames worth labelling).

Rules (all counts are frames):
- a prediction counts as a vote only when its confidence >= `threshold`; lower ones are
  "uncertain" and neither confirm nor reset a candidate state;
- the state changes when `stable_frames` consecutive votes agree on a new class (hysteresis: the
  current state needs no confirmation, a new one does), so a single odd frame never flips it;
- surprising: a candidate that was seen at least once and then lost before it became stable (a
  flip-back), or `low_streak` uncertain frames in a row.
"""


class Update:
    """What one frame did: the (possibly new) state and whether it changed or surprised us."""

    def __init__(self, state, confidence, changed, surprise):
        self.state = state
        self.confidence = confidence
        self.changed = changed
        self.surprise = surprise  # None, "flip" or "low_confidence"


class StateTracker:
    """Debounced state with hysteresis on confidence."""

    def __init__(self, classes, stable_frames=3, threshold=0.6, low_streak=3):
        if stable_frames < 1:
            raise ValueError("stable_frames must be >= 1, got %r" % (stable_frames,))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1], got %r" % (threshold,))
        self.classes = list(classes)
        self.stable_frames = stable_frames
        self.threshold = threshold
        self.low_streak = low_streak
        self.state = None  # unknown until the first stable run
        self.confidence = 0.0
        self.candidate = None
        self.run = 0
        self.run_conf = 0.0
        self.uncertain = 0
        self.changes = 0

    def update(self, class_index, confidence):
        """Feed one prediction; returns an Update."""
        label = self.classes[class_index]
        surprise = None
        if confidence < self.threshold:
            self.uncertain += 1
            if self.uncertain == self.low_streak:
                surprise = "low_confidence"
            return Update(self.state, self.confidence, False, surprise)
        self.uncertain = 0
        if label == self.state:
            if self.candidate is not None:
                surprise = "flip"  # a new state showed up and vanished again
            self.candidate = None
            self.run = 0
            self.confidence = confidence
            return Update(self.state, confidence, False, surprise)
        if label != self.candidate:
            if self.candidate is not None:
                surprise = "flip"
            self.candidate = label
            self.run = 0
            self.run_conf = 0.0
        self.run += 1
        self.run_conf += confidence
        if self.run >= self.stable_frames:
            self.state = label
            self.confidence = self.run_conf / self.run
            self.candidate = None
            self.run = 0
            self.changes += 1
            return Update(self.state, self.confidence, True, surprise)
        return Update(self.state, self.confidence, False, surprise)
