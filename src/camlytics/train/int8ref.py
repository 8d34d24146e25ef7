"""Moved to `camlytics.model.int8ref`; this name stays for code written before the move (tests/edge)."""

from camlytics.model.int8ref import *  # noqa: F401,F403
