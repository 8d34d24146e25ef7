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


# light_condition thresholds, on 0..255 values. Cameras auto-expose, so brightness separates the light only where
# exposure runs out (dusk, night); a camera in night mode (IR-cut filter out) sends a grey picture whatever its
# brightness, which is what tells IR apart. Measured on the simulator: IR frames have chroma 0.0, grey day scenes
# (office, warehouse) 4.5 to 11; real IR JPEGs stay below 2 (chroma rounding only).
NIGHT_MAX_LUMA = 40.0  # mean luma below this: "night" (too dark to tell colour from noise)
DIM_MAX_LUMA = 80.0  # mean luma below this: "dim"; at or above it: "day"
IR_MAX_CHROMA = 2.5  # mean (max - min) over R, G, B below this: a grey picture, "ir"
LIGHT_CONDITIONS = ("day", "dim", "night", "ir")
_LIGHT_SAMPLES = 128  # at most this many rows and columns are read: the means need no more


def light_condition(image: np.ndarray) -> str:
    """The light a frame was taken in: "day", "dim", "night" or "ir", from a uint8 (H, W, 3) RGB or (H, W) grey image.

    Mean luma below NIGHT_MAX_LUMA is "night"; else a grey picture (mean chroma below IR_MAX_CHROMA) is "ir";
    else mean luma below DIM_MAX_LUMA is "dim", and the rest is "day". A (H, W) image carries no colour, so it
    is judged by brightness alone (never "ir").
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    ) or image.size == 0:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"light_condition needs a non-empty uint8 (H, W, 3) or (H, W) image, got {what}")
    step_y = max(1, image.shape[0] // _LIGHT_SAMPLES)
    step_x = max(1, image.shape[1] // _LIGHT_SAMPLES)
    pixels = image[::step_y, ::step_x]
    if pixels.ndim == 2:
        luma, chroma = float(pixels.mean()), None
    else:
        # Per-channel planes: numpy reduces a last axis of 3 ten times slower than it combines three planes.
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        luma = 0.299 * float(r.mean()) + 0.587 * float(g.mean()) + 0.114 * float(b.mean())  # BT.601, linear
        chroma = float((np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)).mean())  # uint8: >= 0
    if luma < NIGHT_MAX_LUMA:
        return "night"
    if chroma is not None and chroma < IR_MAX_CHROMA:
        return "ir"
    return "dim" if luma < DIM_MAX_LUMA else "day"
