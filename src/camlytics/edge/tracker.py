"""Debounced state tracking: turn per-frame predictions into stable state changes, and flag the
frames a deployed model probably gets wrong ("surprising" frames worth labelling).

States are the model's class names plus UNKNOWN ("unknown"): the sensor says it does not know
instead of publishing a wrong state. A frame votes for UNKNOWN when the model predicts a class named
"unknown" (a user labelled obstructed-view or camera-moved frames so), or when the top class's
confidence is below `min_confidence` (0 = never).

Rules (all counts are frames):
- a prediction counts as a vote only when its confidence >= `threshold`; lower ones are
  "uncertain" and neither confirm nor reset a candidate state; below `min_confidence` a frame is
  not uncertain but a vote for UNKNOWN;
- the state changes when `stable_frames` consecutive votes agree on a new state, UNKNOWN included
  (hysteresis: the current state needs no confirmation, a new one does), so a single odd frame never
  flips it;
- surprising: a candidate that was seen at least once and then lost before it became stable (a
  flip-back, "flip"), `low_streak` uncertain frames in a row ("low_confidence"), or the first vote of
  a run of UNKNOWN votes ("unknown").
"""

UNKNOWN = "unknown"


def known_classes(classes):
    """The classes that name a real state (every class but UNKNOWN), in model order."""
    return [c for c in classes if c != UNKNOWN]


def default_active_class(classes, preferred=None):
    """The class that means "something is there": `preferred` (the model's say), else open, occupied,
    else the second real class (the first when there is only one)."""
    known = known_classes(classes)
    for name in (preferred, "open", "occupied"):
        if name is not None and name in known:
            return name
    return known[1] if len(known) > 1 else known[0]


class Update:
    """What one frame did: the (possibly new) state, whether it changed or surprised us, and the
    frame's own prediction (`raw_class`, `raw_confidence`) and vote (a state name, or None when uncertain)."""

    def __init__(self, state, confidence, changed, surprise, vote, raw_class, raw_confidence):
        self.state = state
        self.confidence = confidence
        self.changed = changed
        self.surprise = surprise  # None, "flip", "low_confidence" or "unknown"
        self.vote = vote
        self.raw_class = raw_class
        self.raw_confidence = raw_confidence


class StateTracker:
    """Debounced state with hysteresis on confidence and an UNKNOWN state."""

    def __init__(self, classes, stable_frames=3, threshold=0.6, low_streak=3, min_confidence=0.0):
        if stable_frames < 1:
            raise ValueError("stable_frames must be >= 1, got %r" % (stable_frames,))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1], got %r" % (threshold,))
        if not 0.0 <= min_confidence < 1.0:
            raise ValueError("min_confidence must be in [0, 1), got %r" % (min_confidence,))
        if not known_classes(classes):
            raise ValueError("the model needs a class other than %r, got %r" % (UNKNOWN, list(classes)))
        self.classes = list(classes)
        self.stable_frames = stable_frames
        self.threshold = threshold
        self.low_streak = low_streak
        self.min_confidence = min_confidence
        self.state = None  # nothing yet: no stable run so far
        self.confidence = 0.0
        self.candidate = None
        self.run = 0
        self.run_conf = 0.0
        self.uncertain = 0
        self.changes = 0
        self.last_vote = None
        self.raw_class = None  # the latest frame's top class and its confidence
        self.raw_confidence = 0.0
        self.unknown_votes = 0

    def vote(self, class_index, confidence):
        """The state one prediction votes for, or None when it is uncertain."""
        if confidence < self.min_confidence:
            return UNKNOWN  # not sure enough to name a state: say so rather than guess
        if confidence < self.threshold:
            return None
        return self.classes[class_index]

    def update(self, class_index, confidence):
        """Feed one prediction (top class index, its confidence); returns an Update."""
        raw = self.classes[class_index]
        self.raw_class, self.raw_confidence = raw, confidence
        label = self.vote(class_index, confidence)
        if label is None:
            self.uncertain += 1
            surprise = "low_confidence" if self.uncertain == self.low_streak else None
            return self._update(False, surprise, None)
        self.uncertain = 0
        surprise = None
        if label == UNKNOWN:
            self.unknown_votes += 1
            if self.last_vote != UNKNOWN:
                surprise = UNKNOWN  # keep the first frame of each unknown spell for labelling
        self.last_vote = label
        if label == self.state:
            if self.candidate is not None:
                surprise = surprise or "flip"  # a new state showed up and vanished again
            self.candidate = None
            self.run = 0
            self.confidence = confidence
            return self._update(False, surprise, label)
        if label != self.candidate:
            if self.candidate is not None:
                surprise = surprise or "flip"
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
            return self._update(True, surprise, label)
        return self._update(False, surprise, label)

    def _update(self, changed, surprise, vote):
        return Update(self.state, self.confidence, changed, surprise, vote, self.raw_class, self.raw_confidence)
