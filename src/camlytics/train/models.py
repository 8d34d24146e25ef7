"""The tiny student network family and its MAC and weight-size counters (`student.pt`: camlytics.model.student).

A student is a plain `nn.Sequential` of Conv2d / BatchNorm2d / ReLU / AdaptiveAvgPool2d(1) /
Flatten / Linear (contracts.md), so the int8 exporter and the pruner can walk it layer by layer.
Shape: a 3x3 stride-2 stem, then blocks that are either full 3x3 convolutions ("conv": cheap and
expressive while channels are few) or depthwise-separable (3x3 depthwise + 1x1 pointwise, "ds":
cheap when channels are many), global average pool, one dense layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from camlytics.errors import ModelError

# Blocks of the base (width multiplier 1.0) student: (output channels, stride, kind).
BASE_STEM = 16
# A full conv while channels are few, then depthwise-separable blocks: on held-out simulated days
# this generalised much better than an all-depthwise student of the same MACs (bench/train.py).
BASE_BLOCKS: tuple[tuple[int, int, str], ...] = ((24, 1, "conv"), (32, 2, "conv"), (64, 2, "ds"), (96, 1, "ds"))
BLOCK_KINDS = ("conv", "ds")
MIN_CHANNELS = 4


@dataclass
class StudentSpec:
    """Architecture hyper-parameters of a student (config, not learned state)."""

    input_hw: tuple[int, int] = (32, 32)
    in_channels: int = 1
    num_classes: int = 2
    stem: int = BASE_STEM
    blocks: list[tuple[int, int, str]] = field(default_factory=lambda: list(BASE_BLOCKS))

    def scaled(self, width: float) -> "StudentSpec":
        """The same shape with every channel count multiplied by `width` (at least MIN_CHANNELS)."""
        def ch(c: int) -> int:
            return max(MIN_CHANNELS, int(round(c * width)))
        return StudentSpec(self.input_hw, self.in_channels, self.num_classes, ch(self.stem),
                           [(ch(c), s, k) for c, s, k in self.blocks])


def build_student(spec: StudentSpec) -> nn.Sequential:
    """Build the float student for `spec` (BN after every conv, ReLU after every BN)."""
    layers: list[nn.Module] = [nn.Conv2d(spec.in_channels, spec.stem, 3, 2, 1, bias=False),
                               nn.BatchNorm2d(spec.stem), nn.ReLU()]
    c = spec.stem
    for out, stride, kind in spec.blocks:
        if kind not in BLOCK_KINDS:
            raise ModelError(f"block kind must be one of {BLOCK_KINDS}, got {kind!r}")
        if kind == "ds":
            layers += [nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            stride = 1
        kernel = 3 if kind == "conv" else 1
        layers += [nn.Conv2d(c, out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, spec.num_classes)]
    return nn.Sequential(*layers)


def count_macs(model: nn.Module, input_chw: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers)."""
    if isinstance(model, nn.Sequential) and all(isinstance(m, _SHAPE_LAYERS) for m in model):
        return _sequential_macs(model, input_chw)
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * kh * kw * (module.in_channels // module.groups)
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_chw))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return int(total)


_SHAPE_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear)


def _sequential_macs(model: nn.Sequential, input_chw: tuple[int, int, int]) -> int:
    """`count_macs` by shape arithmetic for a student (no forward pass: pruning searches call it often)."""
    _, h, w = input_chw
    total = 0
    for m in model:
        if isinstance(m, nn.Conv2d):
            (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            total += h * w * m.out_channels * kh * kw * (m.in_channels // m.groups)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            h = w = 1
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
    return int(total)


def int8_weight_bytes(model: nn.Module) -> int:
    """Bytes of the int8 weights plus int32 biases once BN is folded (one bias per output channel)."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            total += m.weight.numel() + 4 * m.out_channels
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() + 4 * m.out_features
    return int(total)


def size_student(base: StudentSpec, budget_macs: int, budget_bytes: int) -> tuple[StudentSpec, float]:
    """The widest scaling of `base` whose MACs and int8 weight bytes fit both budgets."""
    chw = (base.in_channels, *base.input_hw)
    best: tuple[StudentSpec, float] | None = None
    for step in range(1, 65):  # width 1/16 .. 4 in steps of 1/16
        width = step / 16
        spec = base.scaled(width)
        model = build_student(spec)
        if count_macs(model, chw) > budget_macs or int8_weight_bytes(model) > budget_bytes:
            break
        best = (spec, width)
    if best is None:
        narrow = build_student(base.scaled(1 / 16))
        raise ModelError(f"budget too small: the narrowest student needs {count_macs(narrow, chw):,} MACs and "
                         f"{int8_weight_bytes(narrow):,} int8 weight bytes at input {base.input_hw[1]}x"
                         f"{base.input_hw[0]}; it may start with {budget_macs:,} and {budget_bytes:,}")
    return best


def spec_dict(spec: StudentSpec) -> dict[str, Any]:
    """`spec` as plain JSON-able data."""
    d = asdict(spec)
    d["input_hw"] = list(spec.input_hw)
    d["blocks"] = [list(b) for b in spec.blocks]
    return d

