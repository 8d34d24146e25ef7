"""Training data: labelled records -> ROI crops at the model's input size, time-block split.

Images are decoded the way docs/int8.md section 4 says: Pillow's JPEG draft mode at the reduced
scale 1/d (the same DCT scaling the edge decoder uses), then the shared crop + area-resize from
`camlytics.edge.preprocess`, so the host trains on the tensors the camera will compute.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from camlytics.errors import CamlyticsError, TrainingError
from camlytics.train.fit import Arrays

MIN_PER_CLASS = 10


@dataclass
class InputSpec:
    """What the network sees: ROI (full-resolution pixels), input size and colour."""

    width: int
    height: int
    color: str  # "gray" | "rgb"
    roi: tuple[int, int, int, int]
    source_size: tuple[int, int]  # (width, height) of the camera frames

    @property
    def channels(self) -> int:
        """1 for grey, 3 for colour."""
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return {"width": self.width, "height": self.height, "color": self.color, "roi": list(self.roi),
                "source_size": list(self.source_size)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        """Inverse of `to_dict`."""
        return cls(int(d["width"]), int(d["height"]), str(d["color"]), tuple(int(v) for v in d["roi"]),  # type: ignore[arg-type]
                   tuple(int(v) for v in d["source_size"]))  # type: ignore[arg-type]


@dataclass
class LabelledData:
    """All usable labelled examples of a dataset, preprocessed, in time order."""

    x: np.ndarray             # uint8 (N, H, W, C)
    y: np.ndarray             # int64 class indices
    timestamps: np.ndarray    # float64 seconds
    record_ids: list[int]
    classes: list[str]
    spec: InputSpec
    skipped: dict[str, int] = field(default_factory=dict)

    def subset(self, idx: np.ndarray) -> Arrays:
        """The examples at `idx` as training arrays."""
        return Arrays(self.x[idx], self.y[idx])


def _preprocess_module() -> Any:
    from camlytics.edge import preprocess  # the one definition shared with the edge runtime
    return preprocess


def decode_scale(spec: InputSpec) -> int:
    """The JPEG reduced-decode denominator d for this ROI and input size (docs/int8.md section 4)."""
    x0, y0, x1, y1 = spec.roi
    for d in (8, 4, 2, 1):
        if (x1 - x0) / d >= spec.width and (y1 - y0) / d >= spec.height:
            return d
    return 1


def jpeg_size(jpeg: bytes, what: str) -> tuple[int, int]:
    """(width, height) of a JPEG; TrainingError naming `what` when it is not a readable JPEG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            if im.format != "JPEG":
                raise TrainingError(f"{what}: not a JPEG image ({im.format})")
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise TrainingError(f"{what}: unreadable image ({exc})") from None


def load_input(jpeg: bytes, spec: InputSpec, what: str = "image") -> np.ndarray:
    """The network input (H, W, C uint8) for one JPEG: reduced-scale decode, ROI crop, area resize."""
    from PIL import Image, UnidentifiedImageError

    d = decode_scale(spec)
    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            if im.format != "JPEG":
                raise TrainingError(f"{what}: not a JPEG image ({im.format})")
            w, h = im.size
            mode = "L" if spec.color == "gray" else "RGB"
            im.draft(mode, (math.ceil(w / d), math.ceil(h / d)))
            if im.size != (math.ceil(w / d), math.ceil(h / d)):  # draft picks the scale; make sure it is d
                raise TrainingError(f"{what}: JPEG decoder gave {im.size} at scale 1/{d}")
            pixels = np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise TrainingError(f"{what}: unreadable image ({exc})") from None
    if (w, h) != tuple(spec.source_size):
        raise TrainingError(f"{what}: image is {w}x{h}, the model expects {spec.source_size[0]}x{spec.source_size[1]}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return crop_resize(pixels, spec.roi, d, (spec.width, spec.height))


def crop_resize(pixels: np.ndarray, roi: Sequence[int], d: int, out_wh: tuple[int, int]) -> np.ndarray:
    """Crop the full-resolution `roi` from an image decoded at scale 1/d and area-resize it."""
    # TEMPORARY until camlytics.edge.preprocess lands (then this calls the shared function).
    x0, y0, x1, y1 = roi
    h, w = pixels.shape[:2]
    crop = pixels[min(y0 // d, h - 1):min(-(-y1 // d), h), min(x0 // d, w - 1):min(-(-x1 // d), w)]
    ow, oh = out_wh
    ch, cw = crop.shape[:2]
    xs0 = np.arange(ow) * cw // ow
    xs1 = np.maximum(xs0 + 1, np.arange(1, ow + 1) * cw // ow)
    ys0 = np.arange(oh) * ch // oh
    ys1 = np.maximum(ys0 + 1, np.arange(1, oh + 1) * ch // oh)
    ii = np.zeros((ch + 1, cw + 1, crop.shape[2]), np.int64)
    ii[1:, 1:] = crop.astype(np.int64).cumsum(0).cumsum(1)
    sums = ii[ys1][:, xs1] - ii[ys0][:, xs1] - ii[ys1][:, xs0] + ii[ys0][:, xs0]
    n = ((ys1 - ys0)[:, None] * (xs1 - xs0)[None, :])[:, :, None]
    return ((sums + n // 2) // n).astype(np.uint8)


def resolve_spec(ds: Any, records: list[Any], roi: Sequence[int] | None, input_wh: tuple[int, int],
                 color: str) -> InputSpec:
    """The InputSpec for a dataset: ROI from the argument, else the dataset's, else the whole frame."""
    w, h = jpeg_size(ds.read_image(records[0]), f"record {records[0].id} ({records[0].path})")
    if roi is None:
        roi = ds.roi or (0, 0, w, h)
    x0, y0, x1, y1 = (int(v) for v in roi)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise TrainingError(f"roi {x0},{y0},{x1},{y1} is not inside the {w}x{h} frames")
    if color not in ("gray", "rgb"):
        raise TrainingError(f"color must be 'gray' or 'rgb', got {color!r}")
    iw, ih = input_wh
    if not (4 <= iw <= 256 and 4 <= ih <= 256):
        raise TrainingError(f"input size must be between 4x4 and 256x256, got {iw}x{ih}")
    if x1 - x0 < iw or y1 - y0 < ih:
        raise TrainingError(f"roi {x0},{y0},{x1},{y1} is smaller than the input size {iw}x{ih}")
    return InputSpec(iw, ih, color, (x0, y0, x1, y1), (w, h))


def load_labelled(dataset: str | Path, *, classes: Sequence[str] | None = None, roi: Sequence[int] | None = None,
                  input_wh: tuple[int, int] = (32, 32), color: str = "gray", progress: Any = None) -> LabelledData:
    """Every labelled record of `dataset`, checked and preprocessed; TrainingError when training cannot work."""
    from camlytics.store import Dataset

    try:
        ds = Dataset.open(dataset, create=False)
    except CamlyticsError as exc:
        raise TrainingError(str(exc)) from None
    with ds:
        records = ds.records(labelled=True, order="time")
        if not records:
            raise TrainingError(f"dataset {dataset} has no labelled images: label some first (camlytics annotate)")
        classes = list(classes) if classes else ds.classes
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise TrainingError(f"classes must be at least two distinct names, got {classes!r}")
        unknown = sorted({r.label for r in records} - set(classes))
        if unknown:
            raise TrainingError(f"labels {unknown} of dataset {dataset} are not among the classes {classes}")
        counts = {c: sum(r.label == c for r in records) for c in classes}
        present = [c for c in classes if counts[c]]
        if len(present) < 2:
            raise TrainingError(f"dataset {dataset} has labels of one class only ({present[0]!r}: {counts[present[0]]} "
                                f"images); label at least {MIN_PER_CLASS} images of each of {classes}")
        few = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
        if few:
            raise TrainingError(f"too few labelled images per class {few}: need at least {MIN_PER_CLASS} of each")
        spec = resolve_spec(ds, records, roi, input_wh, color)
        task = progress.add_task("load images", total=len(records), status="") if progress is not None else None
        xs = []
        for r in records:
            xs.append(load_input(ds.read_image(r), spec, f"record {r.id} ({r.path})"))
            if task is not None:
                progress.advance(task)
    index = {c: i for i, c in enumerate(classes)}
    return LabelledData(np.stack(xs), np.array([index[r.label] for r in records], np.int64),
                        np.array([r.timestamp for r in records], np.float64), [r.id for r in records], classes, spec)


def time_block_split(timestamps: np.ndarray, y: np.ndarray, *, blocks: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: per class, time-sorted examples cut into `blocks` contiguous
    blocks, one of which (chosen by `seed`) is held out.

    Neighbouring frames are near duplicates, so a random split would leak; whole blocks of time do not.
    """
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[np.argsort(timestamps[idx], kind="stable")]
        chunks = np.array_split(idx, blocks)
        val.append(chunks[seed % blocks])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx, val_idx
