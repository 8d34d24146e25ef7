"""The host's shared checks of user input: positive numbers, regions of interest, resolutions, hosts.

Each check names the bad value in one line and raises the error class its caller passes (the stage's
own CamlyticsError subclass, argparse's ArgumentTypeError, an HTTP 400...), so every stage reports a
bad ROI or resolution the same way. The camera checks its own config with `camlytics.edge.config`.
"""

from __future__ import annotations

import ipaddress
import math
import numbers
import re
from typing import Any, NamedTuple

from camlytics.errors import CamlyticsError, SourceError

MIN_SIDE, MAX_SIDE = 16, 8192  # pixels; no camera offers a side outside this


def check_positive(name: str, value: float, *, integer: bool = False) -> float:
    """A positive number (or whole number), else a CamlyticsError naming the value."""
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise CamlyticsError(f"{name} must be a positive {'whole ' if integer else ''}number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0 or (integer and number != float(value)):
        raise CamlyticsError(f"{name} must be a positive {'whole ' if integer else ''}number, got {value!r}")
    return number


class Roi(NamedTuple):
    """A region of interest in full-resolution pixels: 0 <= x0 < x1 and 0 <= y0 < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __str__(self) -> str:
        return f"{self.x0},{self.y0},{self.x1},{self.y1}"

    def inside(self, width: int, height: int) -> bool:
        """Whether the region lies within a width x height frame."""
        return self.x1 <= width and self.y1 <= height


def check_roi(value: Any, *, what: str = "roi", error: type[Exception] = CamlyticsError,
              limit: int | None = None) -> Roi:
    """`value` (four integers x0, y0, x1, y1) as a Roi; `error` naming it otherwise (coordinates <= `limit`)."""
    try:
        items = tuple(value)  # a generator would print as an object in the messages below
    except TypeError:
        items = value
    if (not isinstance(items, tuple) or len(items) != 4
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items)):
        raise error(f"{what} must be four integers x0,y0,x1,y1, got {items!r}")
    roi = Roi(*(int(v) for v in items))
    if min(roi.x0, roi.y0) < 0 or roi.x0 >= roi.x1 or roi.y0 >= roi.y1:
        raise error(f"{what} must satisfy 0 <= x0 < x1 and 0 <= y0 < y1, got {roi}")
    if limit is not None and max(roi.x1, roi.y1) > limit:
        raise error(f"{what} {roi}: coordinates must be at most {limit} pixels")
    return roi


def parse_roi(text: str, *, what: str = "roi", error: type[Exception] = CamlyticsError) -> Roi:
    """A Roi from "x0,y0,x1,y1" (spaces allowed); `error` naming the text otherwise."""
    parts = str(text).replace(" ", "").split(",")
    if len(parts) != 4 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise error(f"{what} must be four integers x0,y0,x1,y1, got {text!r}")
    return check_roi([int(p) for p in parts], what=what, error=error)


def parse_resolution(text: str, *, what: str = "resolution", sides: tuple[int, int] = (MIN_SIDE, MAX_SIDE),
                     error: type[Exception] = SourceError) -> tuple[int, int]:
    """(width, height) from "WIDTHxHEIGHT"; `error` names the value and the allowed range of `sides`."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise error(f"{what} must be WIDTHxHEIGHT in pixels, got {text!r}")
    (width, height), (lo, hi) = (int(match[1]), int(match[2])), sides
    if not (lo <= width <= hi and lo <= height <= hi):
        raise error(f"{what} {text!r}: width and height must each be {lo}..{hi} pixels")
    return width, height


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
