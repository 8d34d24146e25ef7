"""The float student on disk (`student.pt`) and the input it expects; imports PyTorch.

`save_student` writes the architecture as plain data next to the state dict, so `load_student` rebuilds
the network without the training code (the float runtime, `export --target onnx`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from camlytics.errors import ModelError


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Unaugmented uint8 N x H x W x C images as the student's float N x C x H x W input."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def sequential_arch(model: nn.Sequential) -> list[dict[str, Any]]:
    """A JSON-able description of every layer of a student, enough to rebuild it."""
    arch: list[dict[str, Any]] = []
    for m in model:
        if isinstance(m, nn.Conv2d):
            arch.append({"type": "conv", "in": m.in_channels, "out": m.out_channels, "kernel": list(m.kernel_size),
                         "stride": list(m.stride), "padding": list(m.padding), "groups": m.groups,
                         "bias": m.bias is not None})
        elif isinstance(m, nn.BatchNorm2d):
            arch.append({"type": "bn", "channels": m.num_features})
        elif isinstance(m, nn.ReLU):
            arch.append({"type": "relu"})
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            arch.append({"type": "gap"})
        elif isinstance(m, nn.Flatten):
            arch.append({"type": "flatten"})
        elif isinstance(m, nn.Linear):
            arch.append({"type": "linear", "in": m.in_features, "out": m.out_features})
        else:
            raise ModelError(f"layer {type(m).__name__} is not allowed in a student")
    return arch


def build_from_arch(arch: list[dict[str, Any]]) -> nn.Sequential:
    """Rebuild a student from `sequential_arch` output."""
    layers: list[nn.Module] = []
    for i, a in enumerate(arch):
        kind = a.get("type")
        if kind == "conv":
            if not isinstance(a.get("padding"), list) or any(not isinstance(p, int) for p in a["padding"]):
                raise ModelError(f"layer {i}: conv padding must be integers, got {a.get('padding')!r}")
            layers.append(nn.Conv2d(a["in"], a["out"], tuple(a["kernel"]), tuple(a["stride"]), tuple(a["padding"]),
                                    groups=a["groups"], bias=a["bias"]))
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(a["channels"]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "linear":
            layers.append(nn.Linear(a["in"], a["out"]))
        else:
            raise ModelError(f"layer {i}: unknown layer type {kind!r}")
    return nn.Sequential(*layers)


def save_student(path: Path, model: nn.Sequential, meta: dict[str, Any]) -> None:
    """Write `student.pt`: the architecture, the float state dict and `meta` (classes, input, ROI...)."""
    torch.save({"format": "camlytics-student", "version": 1, "arch": sequential_arch(model),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta}, path)


def load_student(path: Path) -> tuple[nn.Sequential, dict[str, Any]]:
    """Read `student.pt` back into an eval-mode Sequential and its metadata."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except Exception as exc:  # torch raises many types for corrupt pickles
        raise ModelError(f"{path}: not a readable student model ({exc.__class__.__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != "camlytics-student":
        raise ModelError(f"{path}: not a camlytics student model")
    model = build_from_arch(blob["arch"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not match the architecture ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, dict(blob.get("meta", {}))
