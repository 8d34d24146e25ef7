"""Moved to `camlytics.model.predictor`; this name stays for code written before the move (tests/firmware)."""

from camlytics.model.predictor import *  # noqa: F401,F403
