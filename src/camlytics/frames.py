"""The Frame type that flows from sources to samplers and the store, and host-side image helpers."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camlytics.errors import SourceError


@dataclass
class Frame:
    """One camera frame.

    `image` is RGB uint8 (H, W, 3). `jpeg` keeps the camera's original bytes when the frame came
    as a JPEG, so the store saves it without re-encoding (the edge decodes those same bytes).
    `timestamp` is Unix seconds (for the simulator: seconds of the simulated day, see `meta`).
    `meta` carries source details; simulated frames carry the ground truth under `meta["truth"]`.
    """

    image: np.ndarray
    timestamp: float
    source: str
    jpeg: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def to_jpeg(self, quality: int = 90) -> bytes:
        """The original JPEG bytes if present, else a fresh encoding."""
        if self.jpeg is None:
            self.jpeg = encode_jpeg(self.image, quality)
        return self.jpeg


def decode_jpeg(data: bytes, what: str = "image") -> np.ndarray:
    """Decode JPEG (or any Pillow-readable) bytes to RGB uint8; a clear SourceError if it is not one."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise SourceError(f"{what}: empty data, expected a JPEG image")
    if data[:2] != b"\xff\xd8":
        head = data[:40].decode("latin-1", "replace").strip().replace("\n", " ")
        raise SourceError(f"{what}: not a JPEG image (starts with {head!r})")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SourceError(f"{what}: corrupt or truncated JPEG ({exc})") from None


def encode_jpeg(image: np.ndarray, quality: int = 90, subsampling: int | str = -1) -> bytes:
    """Encode an RGB (H, W, 3) or grey (H, W) uint8 array as baseline JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, "JPEG", quality=int(quality), subsampling=subsampling)
    return buf.getvalue()
