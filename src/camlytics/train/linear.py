"""The baseline floor: logistic regression on the ROI downscaled, shipped as one int8 layer.

The simplest honest model of an installation: every input pixel (grey or RGB) weighted once per class,
class-balanced, L2-regularised. In the model file it is a single conv2d whose kernel covers the whole
input (a dense layer on the pixels, since a `dense` layer of docs/int8.md reads a 1x1 input), so it
runs on every edge runtime bit for bit like the CNN. `camlytics train` fits it on the same
cross-validation folds as the CNN and ships it when it scores at least as well (train/select.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from camlytics.model.student import to_tensor

# L2 strengths tried by cross-validation (per pixel weight, in units of the mean class-balanced log loss).
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
# Input pixels of the linear model: a 32x32 grey ROI was the baseline that matched our CNN on real footage.
LINEAR_PIXELS = 1024
# Each training image is also seen moved by this fraction of its size (rounded, at least a pixel) in the eight
# directions: a camera knocked by a few pixels, or a ROI drawn loosely, must not flip a pixel-weighting model
# (the CNN's augmentation shifts by up to the same fraction).
SHIFT_FRACTION = 0.06


@dataclass(frozen=True)
class LinearConfig:
    """One point of the linear model's grid."""

    l2: float

    @property
    def name(self) -> str:
        return f"linear l2={self.l2:g}"


def build_linear(channels: int, height: int, width: int, num_classes: int) -> nn.Sequential:
    """The linear model as the int8 exporter's building blocks: one full-input convolution, flattened."""
    return nn.Sequential(nn.Conv2d(channels, num_classes, (height, width), bias=True), nn.Flatten())


def shifted_copies(x: np.ndarray, fraction: float = SHIFT_FRACTION) -> np.ndarray:
    """`x` (N, H, W, C) and its copies moved by `fraction` of the height and width in the eight directions (edge
    pixels repeated), as (9N, H, W, C), the unmoved images first; `x` itself when `fraction` is 0."""
    if fraction <= 0:
        return x
    n, h, w, _ = x.shape
    sy, sx = max(1, round(fraction * h)), max(1, round(fraction * w))
    padded = np.pad(x, ((0, 0), (sy, sy), (sx, sx), (0, 0)), mode="edge")
    offsets = [(0, 0)] + [(dy, dx) for dy in (-sy, 0, sy) for dx in (-sx, 0, sx) if (dy, dx) != (0, 0)]
    return np.concatenate([padded[:, sy + dy:sy + dy + h, sx + dx:sx + dx + w] for dy, dx in offsets])


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float, *, max_iter: int = 200,
               shift: float = SHIFT_FRACTION) -> nn.Sequential:
    """Class-balanced, L2-regularised multinomial logistic regression on uint8 NHWC images (full batch, L-BFGS),
    each image also seen moved by `shift` of its size in the eight directions (`shifted_copies`; 0: not).

    Deterministic: no random numbers are drawn (zero initial weights, a full-batch optimiser)."""
    copies = shifted_copies(x, shift)
    y = np.tile(y, len(copies) // len(x))
    x = copies
    n, h, w, c = x.shape
    model = build_linear(c, h, w, num_classes)
    conv = model[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
    inputs = to_tensor(x).double()
    mean = inputs.mean(dim=0, keepdim=True)  # centred inputs condition L-BFGS; the mean folds into the bias
    centred = (inputs - mean).reshape(n, -1)
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    class_weight = torch.from_numpy(np.where(counts > 0, n / (num_classes * np.maximum(counts, 1)), 0.0))
    target = torch.from_numpy(y.astype(np.int64))
    weight = torch.zeros(num_classes, centred.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = centred @ weight.T + bias
        loss = nn.functional.cross_entropy(logits, target, weight=class_weight) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        w4 = weight.reshape(num_classes, c, h, w)
        conv.weight.copy_(w4.float())
        conv.bias.copy_((bias - (weight * mean.reshape(1, -1)).sum(dim=1)).float())
    model.eval()
    return model
