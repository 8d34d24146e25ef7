"""What a network sees: the InputSpec (ROI, input size, colour), example arrays, and a JPEG's input tensor.

The host computes an input with `camlytics.edge.preprocess.prepare_host` (docs/int8.md section 4):
Pillow's JPEG draft mode at the reduced scale 1/d, then the crop + area-resize shared with the edge,
so the host trains on, and scores, the tensors the camera will compute. No PyTorch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from camlytics.errors import CamlyticsError, ModelError, SourceError, host_error_type


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

    def model_meta(self) -> dict[str, Any]:
        """The `input`/`preprocess` part of the edge model file metadata (docs/int8.md section 5)."""
        return {"input": {"width": self.width, "height": self.height, "channels": self.channels},
                "preprocess": {"color": self.color, "roi": list(self.roi), "source_size": list(self.source_size),
                               "resize": "area"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        """Inverse of `to_dict`."""
        return cls(int(d["width"]), int(d["height"]), str(d["color"]), tuple(int(v) for v in d["roi"]),  # type: ignore[arg-type]
                   tuple(int(v) for v in d["source_size"]))  # type: ignore[arg-type]

    @classmethod
    def from_model_meta(cls, meta: dict) -> "InputSpec":
        """Inverse of `model_meta`: the InputSpec written into an edge model file's metadata."""
        try:
            inp, pre = meta["input"], meta["preprocess"]
            return cls(int(inp["width"]), int(inp["height"]), str(pre["color"]),
                       tuple(int(v) for v in pre["roi"]), tuple(int(v) for v in pre["source_size"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model file metadata lacks the input/preprocess description ({exc})") from None


@dataclass
class Arrays:
    """Preprocessed examples: uint8 images (N, H, W, C) and class indices (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(len(self.y))


def load_input(jpeg: bytes, spec: InputSpec, what: str = "image",
               error: type[CamlyticsError] | None = None) -> np.ndarray:
    """The network input (H, W, C uint8) for one JPEG: reduced-scale decode, ROI crop, area resize.

    An unreadable image is a SourceError naming `what` (or `error`, e.g. a TrainingError for training data)."""
    from PIL import UnidentifiedImageError

    from camlytics.edge.preprocess import prepare_host

    try:
        return prepare_host(jpeg, spec.model_meta())
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # Pillow's errors and the edge's
        raise (error or host_error_type(exc, SourceError))(f"{what}: unreadable image ({exc})") from None
