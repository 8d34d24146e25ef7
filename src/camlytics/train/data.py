"""Training data: labelled records -> ROI crops at the model's input size, time-block split.

Images become network inputs with `camlytics.model.inputs.load_input`, the tensors the camera computes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from camlytics.errors import CamlyticsError, TrainingError
from camlytics.model.inputs import Arrays, InputSpec, load_input
from camlytics.validate import check_roi

MIN_PER_CLASS = 10


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


# The CNN's input pixel budget (64x32 = 32x64 = 48x43...): the student is sized to its MAC budget whatever the shape.
INPUT_PIXELS = 2048
MAX_ASPECT = 4.0  # wider or taller ROIs are squashed to this aspect ratio
INPUT_MULTIPLE = 8  # three stride-2 stages: a multiple of 8 keeps every feature map whole


def input_for_roi(roi_w: int, roi_h: int, pixels: int = INPUT_PIXELS, multiple: int = INPUT_MULTIPLE) -> tuple[int, int]:
    """(width, height) of a network input with about `pixels` pixels and the ROI's aspect ratio (clamped to
    1:MAX_ASPECT), each side a multiple of `multiple` (at least 2 multiples). A ROI smaller than the input is
    upscaled: the area resize of docs/int8.md repeats pixels then, identically on the host and the camera."""
    if roi_w < 1 or roi_h < 1:
        raise TrainingError(f"roi must have a positive size, got {roi_w}x{roi_h}")
    aspect = min(MAX_ASPECT, max(1.0 / MAX_ASPECT, roi_w / roi_h))
    w = (pixels * aspect) ** 0.5
    h = pixels / w

    def side(v: float) -> int:
        return max(2 * multiple, int(round(v / multiple)) * multiple)
    return side(w), side(h)


def resolve_spec(ds: Any, records: list[Any], roi: Sequence[int] | None, input_wh: tuple[int, int] | None,
                 color: str, pixels: int = INPUT_PIXELS, multiple: int = INPUT_MULTIPLE) -> InputSpec:
    """The InputSpec for a dataset: ROI from the argument, else the dataset's, else the whole frame; the input
    size from `input_wh`, else from the ROI's shape (`input_for_roi` with `pixels`, `multiple`)."""
    w, h = jpeg_size(ds.read_image(records[0]), f"record {records[0].id} ({records[0].path})")
    roi = check_roi((ds.roi or (0, 0, w, h)) if roi is None else roi, error=TrainingError)
    if not roi.inside(w, h):
        raise TrainingError(f"roi {roi} is not inside the {w}x{h} frames")
    if color not in ("gray", "rgb"):
        raise TrainingError(f"color must be 'gray' or 'rgb', got {color!r}")
    iw, ih = input_wh or input_for_roi(roi.x1 - roi.x0, roi.y1 - roi.y0, pixels, multiple)
    if not (4 <= iw <= 256 and 4 <= ih <= 256):
        raise TrainingError(f"input size must be between 4x4 and 256x256, got {iw}x{ih}")
    return InputSpec(iw, ih, color, tuple(roi), (w, h))


def load_labelled(dataset: str | Path, *, input_wh: tuple[int, int] | None, classes: Sequence[str] | None = None,
                  roi: Sequence[int] | None = None, color: str = "gray", progress: Any = None,
                  pixels: int = INPUT_PIXELS, multiple: int = INPUT_MULTIPLE) -> LabelledData:
    """Every labelled record of `dataset`, checked and preprocessed; TrainingError when training cannot work.

    `input_wh` None: the input's shape follows the ROI's (`input_for_roi` with `pixels`, `multiple`)."""
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
        spec = resolve_spec(ds, records, roi, input_wh, color, pixels, multiple)
        task = progress.add_task("load images", total=len(records), status="") if progress is not None else None
        xs = []
        for r in records:
            xs.append(load_input(ds.read_image(r), spec, f"record {r.id} ({r.path})", TrainingError))
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
