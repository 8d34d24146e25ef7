"""Moved to `camlytics.model.modelfile`; this name stays for code written before the move (tests/edge)."""

from camlytics.model.modelfile import *  # noqa: F401,F403
