"""ImageFolder: the images of a directory in time order (timestamps from a CSV or file times)."""

from __future__ import annotations

import csv
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from camlytics.errors import SourceError
from camlytics.frames import Frame, decode_jpeg
from camlytics.sources.base import FrameSource, check_limit

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_IMAGE = 64 << 20  # bytes; a larger "image" is refused rather than read into memory


def parse_timestamp(text: str) -> float:
    """Unix seconds from a number or an ISO 8601 date-time (naive = UTC); ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def read_timestamps(csv_path: str | Path) -> dict[str, float]:
    """`filename -> timestamp` from a CSV with `filename,timestamp` columns (header optional)."""
    path = Path(csv_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"timestamps CSV {str(path)!r}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["filename", "timestamp"]:
        rows = rows[1:]
        first_line = 2
    else:
        first_line = 1
    stamps: dict[str, float] = {}
    for line, row in enumerate(rows, first_line):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise SourceError(f"timestamps CSV {str(path)!r} line {line}: expected filename,timestamp, got {row!r}")
        try:
            stamps[row[0].strip()] = parse_timestamp(row[1])
        except ValueError:
            raise SourceError(f"timestamps CSV {str(path)!r} line {line}: bad timestamp {row[1]!r} "
                              "(use Unix seconds or ISO 8601)") from None
    if not stamps:
        raise SourceError(f"timestamps CSV {str(path)!r} has no filename,timestamp rows")
    return stamps


class ImageFolder(FrameSource):
    """Images (jpg, png, ...) of one directory, oldest first; a single image file works too.

    Timestamps come from `timestamps` (a CSV of `filename,timestamp`) where it lists the file, else
    from the file's modification time. Unreadable images are skipped and counted; `interval` keeps at
    most one image per `interval` seconds.
    """

    strict_start = False

    def __init__(self, path: str | Path, *, timestamps: str | Path | None = None, interval: float | None = None,
                 count: int | None = None, duration: float | None = None) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), count=count, duration=duration)
        self.interval = check_limit("interval", interval)
        if self.path.is_file():
            files = [self.path]
        elif self.path.is_dir():
            files = [p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        else:
            raise SourceError(f"image folder {str(self.path)!r}: no such directory")
        if not files:
            raise SourceError(f"image folder {str(self.path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        stamps = read_timestamps(timestamps) if timestamps else {}
        listed = sum(p.name in stamps for p in files)
        if stamps and not listed:
            raise SourceError(f"timestamps CSV {str(timestamps)!r} lists none of the {len(files)} images "
                              f"in {str(self.path)!r}")
        self.entries = sorted(
            ((stamps[p.name], "csv", p) if p.name in stamps else (p.stat().st_mtime, "mtime", p) for p in files),
            key=lambda e: (e[0], e[2].name),
        )

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self) -> Iterator[Frame | SourceError]:
        last_kept: float | None = None
        for timestamp, origin, path in self.entries:
            if self._closed:
                return
            if self.interval and last_kept is not None and timestamp - last_kept < self.interval:
                continue
            try:
                if path.stat().st_size > MAX_IMAGE:
                    raise SourceError(f"image {str(path)!r} is larger than {MAX_IMAGE} bytes")
                data = path.read_bytes()
                is_jpeg = data[:2] == b"\xff\xd8"
                image = decode_jpeg(data, f"image {str(path)!r}") if is_jpeg else _decode_other(data, path)
            except SourceError as exc:
                yield exc
                continue
            except OSError as exc:
                yield SourceError(f"image {str(path)!r}: cannot read ({exc.strerror or exc})")
                continue
            last_kept = timestamp
            yield Frame(image, timestamp, str(path), data if is_jpeg else None,
                        {"path": str(path), "original_name": path.name, "timestamp_from": origin})


def _decode_other(data: bytes, path: Path):
    """PNG/BMP/WebP bytes to RGB uint8."""
    import io

    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # Pillow raises many types for a damaged file
        raise SourceError(f"image {str(path)!r}: cannot decode ({exc})") from None
