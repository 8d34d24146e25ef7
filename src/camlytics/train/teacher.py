"""Teacher networks: MobileNetV2 (loads torchvision's ImageNet state dict) or a wider CNN from scratch.

torchvision is not a dependency, so MobileNetV2 is defined here with module names that match the
keys of torchvision's `mobilenet_v2-b0353104.pth` (`features.N.conv.M...`, `classifier.1`).
Teachers take the student's input tensor (N, C, H, W, pixel / 255) and adapt it themselves.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from camlytics.errors import TrainingError

# (expansion t, output channels c, repeats n, first stride s) from the MobileNetV2 paper.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Modules of `features` kept as loaded (stem + blocks up to the 96-channel stage); the 160/320-channel
# blocks, the last 1x1 conv and the classifier are fine-tuned.
FROZEN_BLOCKS = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: children 0 (conv), 1 (bn), 2 (ReLU6)."""
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual when shapes match."""

    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = [] if expand == 1 else [conv_bn_relu6(inp, hidden, 1)]
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with a new classifier; input is resized to `size` and ImageNet-normalised.

    The first `frozen` modules of `features` keep their (ImageNet) weights and batch-norm statistics:
    a few hundred images of one door cannot retrain them (fine-tuning everything reached 61.8 %
    validation on the office benchmark, freezing them 91.7 %), and backpropagation stops at the top blocks.
    """

    def __init__(self, num_classes: int, size: int = 96, frozen: int = 0) -> None:
        super().__init__()
        self.size = size
        self.frozen = frozen
        features: list[nn.Module] = [conv_bn_relu6(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        features.append(conv_bn_relu6(inp, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.features[:frozen].parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "MobileNetV2":
        """Train mode for the trainable part only; the frozen blocks stay in eval mode."""
        super().train(mode)
        self.features[:self.frozen].eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:  # grey: the same plane in all three colour channels
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = self.features((x - self.mean) / self.std)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def load_imagenet_weights(model: MobileNetV2, path: Path) -> None:
    """Load torchvision's MobileNetV2 state dict into `model`'s features (the classifier stays new)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"--teacher-weights {path}: no such file") from None
    except Exception as exc:  # a pickle that is not a tensor dict, a truncated file...
        raise TrainingError(f"--teacher-weights {path}: not a PyTorch state dict ({exc.__class__.__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TrainingError(f"--teacher-weights {path}: not a PyTorch state dict of tensors")
    own = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    for key, tensor in own.items():
        if key not in state:
            raise TrainingError(f"--teacher-weights {path}: not torchvision MobileNetV2 weights (missing {key})")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise TrainingError(f"--teacher-weights {path}: wrong shape for {key}: "
                                f"{tuple(state[key].shape)} in the file, MobileNetV2 needs {tuple(tensor.shape)}")
    model.load_state_dict({k: state[k] for k in own}, strict=False)


def wide_cnn(in_channels: int, num_classes: int, width: int = 24) -> nn.Sequential:
    """A plain VGG-like CNN much wider than the student, trained from scratch when no weights are given."""
    def block(i: int, o: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    w = width
    return nn.Sequential(*block(in_channels, w, 1), *block(w, w, 2), *block(w, 2 * w, 1), *block(2 * w, 2 * w, 2),
                         *block(2 * w, 4 * w, 1), *block(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(4 * w, num_classes))


def build_teacher(in_channels: int, num_classes: int, weights: Path | None) -> nn.Module:
    """MobileNetV2 from ImageNet weights when a file is given, else the wide CNN."""
    if weights is None:
        return wide_cnn(in_channels, num_classes)
    model = MobileNetV2(num_classes, frozen=FROZEN_BLOCKS)
    load_imagenet_weights(model, Path(weights))
    return model
