"""The robustness suite: every parser fed hostile input (Hypothesis, atheris), every outside fault injected.

Each fuzz test has a fixed budget (`max_examples`, no deadline): the suite is bounded in work, not in time,
so it gives the same verdicts on a slow CI machine. Set CAMLYTICS_FUZZ_SCALE=10 for a longer local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("CAMLYTICS_FUZZ_SCALE", "1"))


def budget(examples: int):
    """Hypothesis settings for a fuzz test: `examples` cases (times CAMLYTICS_FUZZ_SCALE), no deadline."""
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture],
                    database=None)
