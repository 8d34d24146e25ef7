"""Tiny portability layer so edge code runs unchanged on MicroPython and CPython."""

import sys
import time

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    sleep_ms = time.sleep_ms
else:

    def ticks_ms():
        """Milliseconds from a monotonic clock."""
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        """a - b for two ticks_ms() values."""
        return a - b

    def sleep_ms(ms):
        """Sleep for `ms` milliseconds."""
        time.sleep(ms / 1000)


def wall_time():
    """Seconds since the Unix epoch as a float (MicroPython's unix port also uses the Unix epoch)."""
    return time.time()
