"""Cheap per-frame features for the samplers: downscaled views, a vectorised HOG, colour histograms."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from camlytics.frames import Frame

THUMB_REDUCE = 4  # 640x360 -> 160x90: enough detail for a door, ~1 ms with Pillow's box filter
ROI_SIDE = 64  # the ROI is resized so that its longer side has this many pixels
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
HOG_BINS = 9
HOG_CELL = 8
COLOR_LEVELS = 4  # per channel: 4 x 4 x 4 joint RGB bins
LUMA_BINS = 16


def _box_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average resize of an RGB uint8 array to (width, height), as float32."""
    from PIL import Image

    im = Image.fromarray(image)
    w, h = im.size
    if w % size[0] == 0 and h % size[1] == 0 and w // size[0] == h // size[1]:
        im = im.reduce(w // size[0])  # the fast integer path
    else:
        im = im.resize(size, Image.BOX)
    return np.asarray(im, dtype=np.float32)


def roi_size(roi: tuple[int, int, int, int], side: int = ROI_SIDE) -> tuple[int, int]:
    """(width, height) of an ROI thumbnail whose longer side is `side` pixels (at least one HOG cell)."""
    w, h = roi[2] - roi[0], roi[3] - roi[1]
    scale = side / max(w, h)
    return max(HOG_CELL, round(w * scale)), max(HOG_CELL, round(h * scale))


class FrameView:
    """Downscaled views of one frame, computed on first use and shared by all samplers looking at it."""

    def __init__(self, frame: Frame, roi: tuple[int, int, int, int] | None = None):
        self.frame = frame
        self.timestamp = float(frame.timestamp)
        self.size = (frame.image.shape[1], frame.image.shape[0])  # (width, height) of the full frame
        self.roi = clip_roi(roi, frame.image.shape) if roi is not None else None

    @cached_property
    def small_rgb(self) -> np.ndarray:
        """The whole frame, area-reduced THUMB_REDUCE times, float32 (h, w, 3)."""
        h, w = self.frame.image.shape[:2]
        return _box_resize(self.frame.image, (max(1, w // THUMB_REDUCE), max(1, h // THUMB_REDUCE)))

    @cached_property
    def grey(self) -> np.ndarray:
        """The whole frame in grey, reduced, float32 0..255."""
        return self.small_rgb @ GREY_WEIGHTS

    @cached_property
    def roi_rgb(self) -> np.ndarray:
        """The ROI (or the whole reduced frame without one), float32 (h, w, 3)."""
        if self.roi is None:
            return self.small_rgb
        x0, y0, x1, y1 = self.roi
        return _box_resize(np.ascontiguousarray(self.frame.image[y0:y1, x0:x1]), roi_size(self.roi))

    @cached_property
    def roi_grey(self) -> np.ndarray:
        """The ROI thumbnail in grey."""
        return self.roi_rgb @ GREY_WEIGHTS

    @cached_property
    def roi_hog(self) -> np.ndarray:
        """HOG cells (rows, cols, bins) of the ROI (or whole frame)."""
        return hog_cells(self.roi_grey)

    @cached_property
    def hog(self) -> np.ndarray:
        """HOG cells of the whole reduced frame."""
        return hog_cells(self.grey)

    @cached_property
    def color(self) -> np.ndarray:
        """Square-rooted colour + intensity histograms: Euclidean distance is the Hellinger distance (0..1)."""
        return np.sqrt(color_histogram(self.small_rgb) * 0.25)


def clip_roi(roi: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The ROI clipped to an image of `shape`; None if nothing of it is inside."""
    h, w = shape[:2]
    x0, y0, x1, y1 = max(0, roi[0]), max(0, roi[1]), min(w, roi[2]), min(h, roi[3])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1, y1)


def hog_cells(grey: np.ndarray, cell: int = HOG_CELL, bins: int = HOG_BINS) -> np.ndarray:
    """Histogram of oriented gradients per cell, each cell L2-normalised (rows, cols, bins) float32.

    Unsigned orientations, linear interpolation between the two nearest bins, no block overlap: a
    cheap HOG that is invariant to brightness and contrast per cell (lighting changes), not to layout.
    """
    rows, cols = grey.shape[0] // cell, grey.shape[1] // cell
    g = grey[: rows * cell, : cols * cell]
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    pos = (np.arctan2(gy, gx) % np.pi) * (bins / np.pi) - 0.5
    lo = np.floor(pos)
    frac = (pos - lo).astype(np.float32)
    lo = lo.astype(np.int64) % bins
    hi = (lo + 1) % bins
    cell_id = (np.arange(rows * cell)[:, None] // cell) * cols + (np.arange(cols * cell)[None, :] // cell)
    base = (cell_id * bins).ravel()
    n = rows * cols * bins
    hist = np.bincount(base + lo.ravel(), (mag * (1 - frac)).ravel(), n)
    hist += np.bincount(base + hi.ravel(), (mag * frac).ravel(), n)
    hist = hist.reshape(rows, cols, bins).astype(np.float32)
    # Normalise per cell, but do not blow sensor noise in flat cells up to full-size gradients.
    norm = np.sqrt((hist * hist).sum(axis=2, keepdims=True))
    floor = 0.1 * float(np.mean(norm)) + 3.0 * cell * cell
    return hist / (norm + floor)


def color_histogram(rgb: np.ndarray, levels: int = COLOR_LEVELS, luma_bins: int = LUMA_BINS) -> np.ndarray:
    """Joint RGB histogram (levels^3 bins) followed by an intensity histogram, each normalised to 1."""
    q = np.clip(rgb * (levels / 256.0), 0, levels - 1).astype(np.int64)
    joint = np.bincount(((q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]).ravel(), minlength=levels**3)
    luma = np.clip((rgb @ GREY_WEIGHTS) * (luma_bins / 256.0), 0, luma_bins - 1).astype(np.int64)
    lhist = np.bincount(luma.ravel(), minlength=luma_bins)
    n = float(q.shape[0] * q.shape[1])
    return np.concatenate([joint / n, lhist / n]).astype(np.float32)

