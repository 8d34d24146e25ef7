"""Post-training int8 quantization of a float student (docs/int8.md), and fake-quant modules for QAT.

Scheme (TFLite/gemmlowp style): BatchNorm folded into the preceding convolution; weights int8,
per-output-channel symmetric (zero point 0, range -127..127); activations per-tensor affine with
ranges calibrated on training images (uint8, zero point 0 after a ReLU; the logits int8); biases
int32 in units of `x_scale * w_scale`; requantization by an integer multiplier and shift chosen
per channel as the largest shift obeying the 32-bit bound of the spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from camlytics.errors import ModelError
from camlytics.model import int8ref
from camlytics.model.modelfile import MODEL_FILE, Int8Model, write_model

INPUT_SCALE = 1.0 / 255.0  # the float student sees pixel / 255; the int8 input is the pixel itself
WEIGHT_QMAX = 127  # symmetric weights: -127..127 (never -128, so negation is safe)
_SKIP = (nn.Identity, nn.Dropout)


@dataclass
class FloatLayer:
    """One layer of the network after BatchNorm folding: what becomes one int8 layer."""

    op: str  # "conv2d" | "dense" | "gap"
    weight: torch.Tensor | None = None  # conv: [OC, C/groups, KH, KW]; dense: [OC, C]
    bias: torch.Tensor | None = None  # [OC]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    relu: bool = False

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Float forward on N x C x H x W (dense: N x C x 1 x 1), optionally with replaced weights."""
        w = self.weight if weight is None else weight
        if self.op == "gap":
            return x.mean(dim=(2, 3), keepdim=True)
        if self.op == "dense":
            y = F.linear(x.flatten(1), w, self.bias)[:, :, None, None]
        else:
            y = F.conv2d(x, w, self.bias, self.stride, self.padding, 1, self.groups)
        return F.relu(y) if self.relu else y


def _modules(model: nn.Module) -> list[nn.Module]:
    """The leaf modules of a (possibly nested) nn.Sequential, without no-op layers."""
    if not isinstance(model, nn.Sequential):
        raise ModelError(f"the student must be an nn.Sequential, got {type(model).__name__}")
    out: list[nn.Module] = []
    for mod in model:
        if isinstance(mod, nn.Sequential):
            out.extend(_modules(mod))
        elif not isinstance(mod, _SKIP):
            out.append(mod)
    return out


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, str):
        raise ModelError(f"{what}={value!r} is not supported; use integer padding")
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return int(pair[0]), int(pair[1])


def fuse(model: nn.Sequential) -> list[FloatLayer]:
    """Walk the student and fold each BatchNorm2d into its convolution (float64 copies, detached).

    Accepts only Conv2d (full or depthwise) [+ BatchNorm2d] [+ ReLU], AdaptiveAvgPool2d(1), Flatten,
    Linear [+ ReLU]; anything else raises ModelError naming the module.
    """
    mods = _modules(model)
    layers: list[FloatLayer] = []
    i = 0
    while i < len(mods):
        mod = mods[i]
        where = f"module {i} ({type(mod).__name__})"
        if isinstance(mod, nn.Conv2d):
            if mod.dilation != (1, 1) or mod.padding_mode != "zeros":
                raise ModelError(f"{where}: dilation {mod.dilation} / padding_mode {mod.padding_mode!r} not supported")
            if mod.groups not in (1, mod.in_channels) or (mod.groups > 1 and mod.out_channels != mod.in_channels):
                raise ModelError(f"{where}: groups={mod.groups} must be 1 or depthwise (in == out channels)")
            w = mod.weight.detach().double().clone()
            b = mod.bias.detach().double().clone() if mod.bias is not None else torch.zeros(mod.out_channels).double()
            if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                bn = mods[i + 1]
                gain = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
                w = w * gain[:, None, None, None]
                b = (b - bn.running_mean.double()) * gain + bn.bias.detach().double()
                i += 1
            layer = FloatLayer("conv2d", w, b, _pair(mod.stride, "stride"), _pair(mod.padding, "padding"), mod.groups)
        elif isinstance(mod, nn.Linear):
            b = mod.bias.detach().double().clone() if mod.bias is not None else torch.zeros(mod.out_features).double()
            layer = FloatLayer("dense", mod.weight.detach().double().clone(), b)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            if _pair(mod.output_size, "output_size") != (1, 1):
                raise ModelError(f"{where}: only AdaptiveAvgPool2d(1) is supported, got {mod.output_size}")
            layer = FloatLayer("gap")
        elif isinstance(mod, nn.Flatten):
            i += 1
            continue  # the int8 tensors are already flat after a global pool
        else:
            raise ModelError(f"{where} is not supported by the int8 exporter (Conv2d, BatchNorm2d after a conv, "
                             "ReLU after a conv/linear, AdaptiveAvgPool2d(1), Flatten, Linear)")
        if layer.op != "gap" and i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU):
            layer.relu = True
            i += 1
        layers.append(layer)
        i += 1
    if not layers:
        raise ModelError("the student has no layers")
    return layers


def to_sequential(layers: list[FloatLayer]) -> nn.Sequential:
    """Float layers as a plain nn.Sequential (Conv2d/Linear with bias, ReLU, pool + flatten)."""
    out: list[nn.Module] = []
    for layer in layers:
        if layer.op == "gap":
            out += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            continue
        w = layer.weight.detach()
        if layer.op == "dense":
            mod = nn.Linear(w.shape[1], w.shape[0])
        else:
            mod = nn.Conv2d(w.shape[1] * layer.groups, w.shape[0], tuple(w.shape[2:]), layer.stride,
                            layer.padding, groups=layer.groups)
        with torch.no_grad():
            mod.weight.copy_(w)
            mod.bias.copy_(layer.bias.detach())
        out += [mod, nn.ReLU()] if layer.relu else [mod]
    return nn.Sequential(*out)


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """A float copy of the student with every BatchNorm2d folded into its convolution (same outputs)."""
    return to_sequential(fuse(model))


def _to_float_input(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float64 NCHW pixel / 255, the float student's input."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).double() * INPUT_SCALE


def calibrate(layers: list[FloatLayer], images: np.ndarray, batch: int = 256) -> list[tuple[float, float]]:
    """(min, max) of every layer's float output over the calibration images."""
    ranges = [(np.inf, -np.inf)] * len(layers)
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = _to_float_input(images[start : start + batch])
            for k, layer in enumerate(layers):
                x = layer.forward(x)
                lo, hi = ranges[k]
                ranges[k] = (min(lo, float(x.min())), max(hi, float(x.max())))
    return ranges


def activation_params(lo: float, hi: float, dtype: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor affine activation covering [lo, hi] (and 0) in `dtype`."""
    qlo, qhi = int8ref.DTYPE_RANGE[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qhi - qlo)
    if not np.isfinite(scale) or scale <= 1e-12:
        scale = 1e-6  # a dead tensor (always 0): any scale represents it exactly
    zp = int(np.clip(np.round(qlo - lo / scale), qlo, qhi))
    return float(scale), zp


def _quantize_weights(w: np.ndarray, min_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights and their scales (at least `min_scale`)."""
    peak = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    scale = np.maximum(peak / WEIGHT_QMAX, min_scale)
    q = np.clip(np.rint(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -WEIGHT_QMAX, WEIGHT_QMAX)
    return q.astype(np.int8), scale


def _quantize_layer(layer: FloatLayer, meta: dict, x_scale: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Fill `meta` (m, s, scales) and return the int8 weights ([OC, KH, KW, Cg] / [OC, C]) and int32 bias."""
    y_scale = meta["y_scale"]
    if layer.op == "gap":
        h, w, _ = meta["in_shape"]
        bound = int8ref.accumulator_bound(meta, None, None)
        m, s = int8ref.choose_requant(x_scale / (y_scale * h * w), bound)
        meta.update(m=int(m[0]), s=int(s[0]))
        return None, None
    wf = layer.weight.numpy()
    if layer.op == "conv2d":
        wf = wf.transpose(0, 2, 3, 1)  # [OC, C/g, KH, KW] -> [OC, KH, KW, C/g], channels last
    bias = layer.bias.numpy()
    # A (pruned) channel with near-zero weights but a real bias would need a bias beyond 32 bits in
    # units of x_scale * w_scale: raise its weight scale so the bias fits in 2**22 steps instead.
    qw, w_scale = _quantize_weights(wf, np.maximum(np.abs(bias) / (x_scale * 2**22), 1e-30))
    big_m = x_scale * w_scale / y_scale
    reach = np.abs(qw.astype(np.int64)).reshape(qw.shape[0], -1).sum(axis=1) * int8ref.input_range(meta)
    # A bias beyond reach + 256 output steps saturates the output whatever the input: clipping it
    # there changes no output and keeps the accumulator within the 32-bit bound.
    limit = reach + np.ceil(256.0 / np.maximum(big_m, 1e-30)) + 1
    qb = np.clip(np.rint(bias / (x_scale * w_scale)), -limit, limit)
    qb = np.clip(qb, -(2**31 - 1) + reach, 2**31 - 1 - reach).astype(np.int64)
    try:
        m, s = int8ref.choose_requant(big_m, int8ref.accumulator_bound(meta, qw, qb))
    except ValueError as exc:
        raise ModelError(f"layer {meta['op']} {meta['out_shape']}: cannot requantize in 32 bits ({exc})") from None
    meta.update(m=[int(v) for v in m], s=[int(v) for v in s], x_scale=x_scale, w_scale=[float(v) for v in w_scale])
    return qw, qb.astype(np.int32)


def _layer_meta(layer: FloatLayer, in_shape: list[int]) -> dict:
    """Shape attributes of the int8 layer for `layer` on an input of `in_shape` (H, W, C)."""
    h, w, c = in_shape
    if layer.op == "gap":
        return {"op": "gap", "in_shape": in_shape, "out_shape": [1, 1, c]}
    oc = layer.weight.shape[0]
    if layer.op == "dense":
        if [h, w] != [1, 1] or layer.weight.shape[1] != c:
            raise ModelError(f"Linear({layer.weight.shape[1]}, {oc}) needs a flat {layer.weight.shape[1]}-vector "
                             f"(after AdaptiveAvgPool2d(1)), got a {in_shape} tensor")
        return {"op": "dense", "in_shape": in_shape, "out_shape": [1, 1, oc], "relu": layer.relu}
    _, cg, kh, kw = layer.weight.shape
    if cg * layer.groups != c:
        raise ModelError(f"Conv2d expects {cg * layer.groups} input channels, got a {in_shape} tensor")
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ModelError(f"Conv2d kernel {kh}x{kw} does not fit a {in_shape} input")
    return {"op": "conv2d", "in_shape": in_shape, "out_shape": [oh, ow, oc], "kernel": [kh, kw],
            "stride": [sh, sw], "pad": [ph, pw, ph, pw], "groups": layer.groups, "relu": layer.relu}


@dataclass
class QuantizedModel:
    """An int8 network ready for the edge: `.forward` runs the host reference, `.to_bytes` the model file."""

    int8: Int8Model
    float_layers: list[FloatLayer] = field(default_factory=list, repr=False)

    @property
    def meta(self) -> dict:
        """The model file metadata."""
        return self.int8.meta

    @property
    def classes(self) -> list[str]:
        """Class names, in logit order."""
        return self.int8.classes

    def to_bytes(self) -> bytes:
        """The edge model file (docs/int8.md section 5)."""
        return self.int8.to_bytes()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file atomically to `path` (a file, or a directory that gets model.cml)."""
        path = Path(path)
        return write_model(self.int8, path / MODEL_FILE if path.is_dir() else path)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """int8 logits for a uint8 HWC image or NHWC batch (bit-exact with every runtime)."""
        return int8ref.forward(self.int8, x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (softmax of the dequantized logits) for a uint8 image or batch."""
        return int8ref.scores(self.int8, self.forward(x))

    def float_forward(self, x: np.ndarray) -> np.ndarray:
        """Float logits of the BN-folded float network on the same uint8 input (for comparisons)."""
        batch = np.asarray(x)[None] if np.ndim(x) == 3 else np.asarray(x)
        y = _to_float_input(batch)
        with torch.no_grad():
            for layer in self.float_layers:
                y = layer.forward(y)
        out = y.flatten(1).numpy()
        return out[0] if np.ndim(x) == 3 else out


def quantize(
    model: nn.Sequential,
    calib_uint8_nhwc: np.ndarray,
    *,
    classes: list[str],
    preprocess: dict | None = None,
    name: str = "door",
) -> QuantizedModel:
    """Quantize a float student to int8, calibrating activation ranges on uint8 NHWC images.

    `preprocess` (colour, ROI, source size, resize) is stored in the model file for the edge.
    """
    images = np.asarray(calib_uint8_nhwc)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ModelError(f"calibration images must be a non-empty uint8 N x H x W x C array, "
                         f"got {images.dtype} {images.shape}")
    layers = fuse(model)
    h, w, c = (int(v) for v in images.shape[1:])
    metas, shape = [], [h, w, c]
    for layer in layers:
        metas.append(_layer_meta(layer, shape))
        shape = metas[-1]["out_shape"]
    if shape[:2] != [1, 1] or shape[2] != len(classes):
        raise ModelError(f"the student outputs {shape} but {len(classes)} classes were given: {classes}")
    ranges = calibrate(layers, images)
    weights, biases = [], []
    x_dtype, x_zp, x_scale = "uint8", 0, INPUT_SCALE
    for k, (layer, meta, (lo, hi)) in enumerate(zip(layers, metas, ranges)):
        last = k == len(layers) - 1
        y_dtype = "int8" if last else "uint8"
        y_scale, y_zp = activation_params(lo, hi, y_dtype)
        if meta.get("relu"):  # the clamp at the zero point is the ReLU: keep real 0 representable at zp
            y_scale, y_zp = activation_params(0.0, hi, y_dtype)
        meta.update(x_zp=x_zp, x_dtype=x_dtype, y_zp=y_zp, y_dtype=y_dtype, x_scale=x_scale, y_scale=y_scale)
        qw, qb = _quantize_layer(layer, meta, x_scale)
        weights.append(qw)
        biases.append(qb)
        x_dtype, x_zp, x_scale = y_dtype, y_zp, y_scale
    meta_all = {
        "format": "camlytics-int8", "version": 1, "name": name, "classes": list(classes),
        "input": {"height": h, "width": w, "channels": c, "dtype": "uint8", "zp": 0, "scale": INPUT_SCALE},
        "preprocess": dict(preprocess or {"color": "gray" if c == 1 else "rgb", "resize": "area"}),
        "output": {"dtype": "int8", "zp": metas[-1]["y_zp"], "scale": metas[-1]["y_scale"]},
        "macs": int8ref.model_macs(metas),
        "layers": metas,
    }
    int8 = Int8Model(meta_all, weights, biases)
    int8ref.check_model(int8)
    return QuantizedModel(int8, layers)


# ---------------------------------------------------------------------------- quantization-aware training


class QATModel(nn.Module):
    """The BN-folded student with fake-quantized weights and activations, trainable like any module.

    Input: float N x C x H x W = pixel / 255 (already on the int8 input grid). Weights are fake-
    quantized per output channel (symmetric, -127..127); each layer's output per tensor, with ranges
    calibrated first and then tracked as an exponential moving average while training.
    `to_sequential()` gives back a plain float nn.Sequential for `quantize`.
    """

    def __init__(self, model: nn.Sequential, calib_uint8_nhwc: np.ndarray, momentum: float = 0.05):
        super().__init__()
        self.layers = fuse(model)
        self.momentum = momentum
        self.weights = nn.ParameterList(
            [nn.Parameter(lay.weight.float()) if lay.weight is not None else None for lay in self.layers])
        self.biases = nn.ParameterList(
            [nn.Parameter(lay.bias.float()) if lay.bias is not None else None for lay in self.layers])
        ranges = calibrate(self.layers, np.asarray(calib_uint8_nhwc))
        self.register_buffer("ranges", torch.tensor(ranges, dtype=torch.float32))

    def _float_layer(self, k: int) -> FloatLayer:
        lay = self.layers[k]
        return FloatLayer(lay.op, self.weights[k], self.biases[k], lay.stride, lay.padding, lay.groups, lay.relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantized logits (N x classes)."""
        for k in range(len(self.layers)):
            layer = self._float_layer(k)
            w = layer.weight
            if w is not None:
                peak = w.detach().abs().flatten(1).amax(dim=1)
                scale = torch.where(peak > 0, peak / WEIGHT_QMAX, torch.ones_like(peak))
                w = torch.fake_quantize_per_channel_affine(
                    w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -WEIGHT_QMAX, WEIGHT_QMAX)
            x = layer.forward(x, w)
            if self.training:
                with torch.no_grad():
                    lo, hi = float(x.min()), float(x.max())
                    self.ranges[k, 0] += self.momentum * (lo - self.ranges[k, 0])
                    self.ranges[k, 1] += self.momentum * (hi - self.ranges[k, 1])
            last = k == len(self.layers) - 1
            dtype = "int8" if last else "uint8"
            lo, hi = (0.0 if layer.relu else float(self.ranges[k, 0])), float(self.ranges[k, 1])
            scale, zp = activation_params(lo, hi, dtype)
            qlo, qhi = int8ref.DTYPE_RANGE[dtype]
            x = torch.fake_quantize_per_tensor_affine(x, scale, zp, qlo, qhi)
        return x.flatten(1)

    def to_sequential(self) -> nn.Sequential:
        """The trained float network (BN already folded) as a plain nn.Sequential."""
        return to_sequential([self._float_layer(k) for k in range(len(self.layers))])


def prepare_qat(model: nn.Sequential, calib_uint8_nhwc: np.ndarray) -> QATModel:
    """A fake-quantized, BN-folded copy of `model` to fine-tune; then `quantize(qat.to_sequential(), ...)`."""
    return QATModel(model, calib_uint8_nhwc)
