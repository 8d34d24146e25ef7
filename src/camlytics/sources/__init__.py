"""Frame sources: one iterator interface over cameras, streams, files and the simulator.

`open_source(spec, **options)` picks the source from the spec:

- `"sim:office?seed=1&interval=10&start=0&duration=86400&width=640&height=360"` -> SimSource
- `"http://user:pass@host[:port]"` (or a snapshot URL such as `.../axis-cgi/jpg/image.cgi`) -> VapixCamera
- an MJPEG URL (path containing `mjpg` / `video.cgi` / `.mjpeg`, or `mjpeg=True`) -> MjpegStream
- a directory of images or an image file -> ImageFolder; any other file -> VideoFile
"""

from __future__ import annotations

import inspect
from pathlib import Path

from camlytics.errors import SourceError
from camlytics.sources.base import FrameSource
from camlytics.urls import parse_url

__all__ = ["FrameSource", "open_source", "parse_url", "source_kind"]

MJPEG_HINTS = ("mjpg", "mjpeg", "video.cgi")


def source_kind(spec: str, mjpeg: bool | None = None) -> str:
    """"sim", "vapix", "mjpeg", "folder" or "video" for a source spec (files must exist)."""
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise SourceError(f"source must be a URL, a path or sim:PRESET, got {spec!r}")
    text = str(spec).strip()
    if text.startswith("sim:"):
        return "sim"
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise SourceError(f"source {text.split('@')[-1]!r}: unsupported scheme {scheme!r} (use http, https or sim:)")
        path = parse_url(text).path.lower()  # a bad port or bracket: a SourceError naming the URL
        if mjpeg or (mjpeg is None and any(h in path for h in MJPEG_HINTS)):
            return "mjpeg"
        return "vapix"
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        from camlytics.sources.folder import IMAGE_SUFFIXES

        return "folder" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    raise SourceError(f"source {text!r}: no such file or directory (nor a URL or sim:PRESET)")


def _source_class(kind: str):
    if kind == "mjpeg":
        from camlytics.sources.mjpeg import MjpegStream

        return MjpegStream
    if kind == "vapix":
        from camlytics.sources.vapix import VapixCamera

        return VapixCamera
    if kind == "folder":
        from camlytics.sources.folder import ImageFolder

        return ImageFolder
    from camlytics.sources.video import VideoFile

    return VideoFile


def open_source(spec: str, **options) -> FrameSource:
    """Open a frame source; options are passed to its class (count, duration, interval, user, ...).

    Options set to None are ignored, so CLI arguments can be passed through unchanged.
    """
    options = {k: v for k, v in options.items() if v is not None}
    kind = source_kind(spec, options.pop("mjpeg", None))
    text = str(spec).strip()
    if kind == "sim":
        from camlytics.sources.simsource import open_sim

        return open_sim(text, **options)
    cls = _source_class(kind)
    if kind == "vapix" and parse_url(text).path not in ("", "/"):
        options.setdefault("snapshot_path", parse_url(text).path)
    target: str | Path = text if kind in ("vapix", "mjpeg") else Path(text).expanduser()
    try:
        inspect.signature(cls).bind(target, **options)
    except TypeError:
        accepted = [p for p in inspect.signature(cls).parameters if p not in ("url", "path")]
        unknown = sorted(set(options) - set(accepted))
        raise SourceError(f"a {kind} source does not take option(s) {unknown}; it takes {accepted}") from None
    return cls(target, **options)
