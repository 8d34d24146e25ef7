"""Host reference of the int8 network arithmetic (docs/int8.md), in numpy int64.

Every other implementation (the edge runtime, the generated C) must match `forward` bit for bit.
"""

from __future__ import annotations

import os

import numpy as np

from camlytics.model.modelfile import Int8Model, read_model, to_bytes

DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
INT32_MAX = 2**31 - 1


def requant(acc: np.ndarray, m, s) -> np.ndarray:
    """`(acc * m + (1 << (s - 1))) >> s` with a flooring shift (m, s scalars or per-channel arrays)."""
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    return (acc.astype(np.int64) * m + (np.int64(1) << (s - 1))) >> s


def weight_shape(layer: dict) -> tuple[int, ...]:
    """Shape of a conv2d (`[OC, KH, KW, C/groups]`) or dense (`[OC, C]`) layer's weights."""
    oc = int(layer["out_shape"][2])
    if layer["op"] == "dense":
        return (oc, int(layer["in_shape"][2]))
    kh, kw = (int(v) for v in layer["kernel"])
    return (oc, kh, kw, int(layer["in_shape"][2]) // int(layer["groups"]))


def input_range(layer: dict) -> int:
    """`R` of the spec: the largest `|x - x_zp|` over the input dtype's range."""
    lo, hi = DTYPE_RANGE[layer["x_dtype"]]
    return max(abs(lo - layer["x_zp"]), abs(hi - layer["x_zp"]))


def accumulator_bound(layer: dict, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """`B` of the spec: a bound on `|acc|` per output channel (one value for `gap`)."""
    r = input_range(layer)
    if layer["op"] == "gap":
        h, w_, _ = layer["in_shape"]
        return np.array([h * w_ * r], dtype=np.int64)
    w64 = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)
    return np.abs(b.astype(np.int64)) + w64 * r


def bound_ok(bound: np.ndarray, m, s) -> np.ndarray:
    """Whether `B * m + (1 << (s - 1)) <= 2**31 - 1` (and `B` itself fits), per channel."""
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    return (bound * m + (np.int64(1) << (s - 1)) <= INT32_MAX) & (bound <= INT32_MAX)


def choose_requant(multiplier, bound) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the largest shift `s <= 31` (and `m = round(M * 2**s)`) that obeys the 32-bit bound.

    `multiplier` is the real multiplier `M >= 0`; raises ValueError when even `s = 1` overflows.
    """
    big_m = np.atleast_1d(np.asarray(multiplier, dtype=np.float64))
    bound = np.atleast_1d(np.asarray(bound, dtype=np.int64))
    if np.any(big_m < 0) or not np.all(np.isfinite(big_m)):
        raise ValueError(f"requantization multipliers must be finite and >= 0, got {big_m}")
    ms = np.zeros(big_m.shape, dtype=np.int64)
    ss = np.zeros(big_m.shape, dtype=np.int64)
    for i, (mult, bnd) in enumerate(zip(big_m, np.broadcast_to(bound, big_m.shape))):
        for s in range(31, 0, -1):
            m = int(np.round(mult * 2.0**s))
            if m < 2**31 and bnd * m + (1 << (s - 1)) <= INT32_MAX and bnd <= INT32_MAX:
                ms[i], ss[i] = m, s
                break
        else:
            raise ValueError(f"channel {i}: multiplier {mult} with accumulator bound {bnd} overflows 32 bits")
    return ms, ss


def _clamp_output(acc: np.ndarray, layer: dict) -> np.ndarray:
    """Requantize, add the output zero point and clamp (ReLU raises the lower clamp to the zero point)."""
    lo, hi = DTYPE_RANGE[layer["y_dtype"]]
    yz = int(layer["y_zp"])
    if layer.get("relu"):
        lo = max(lo, yz)
    y = np.clip(requant(acc, layer["m"], layer["s"]) + yz, lo, hi)
    return y.astype(np.uint8 if layer["y_dtype"] == "uint8" else np.int8)


def conv2d_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray, layer: dict) -> np.ndarray:
    """int64 accumulators `[N, OH, OW, OC]` of a conv2d layer for a batch `x` `[N, H, W, C]`."""
    n = x.shape[0]
    oh, ow, oc = layer["out_shape"]
    kh, kw = layer["kernel"]
    sh, sw = layer["stride"]
    top, left, bottom, right = layer["pad"]
    groups = int(layer["groups"])
    xz = int(layer["x_zp"])
    # Centre on the zero point first, so padding with 0 "adds nothing" exactly as the spec says.
    xc = np.pad(x.astype(np.int64) - xz, ((0, 0), (top, bottom), (left, right), (0, 0)))
    acc = np.broadcast_to(b.astype(np.int64), (n, oh, ow, oc)).copy()
    for ky in range(kh):
        for kx in range(kw):
            tap = xc[:, ky : ky + sh * (oh - 1) + 1 : sh, kx : kx + sw * (ow - 1) + 1 : sw, :]
            if groups == 1:
                # float64 products and sums of these integers are exact (far below 2**53).
                acc += np.rint(tap.astype(np.float64) @ w[:, ky, kx, :].T.astype(np.float64)).astype(np.int64)
            else:  # depthwise: groups == C == OC, one input channel per output channel
                acc += tap * w[:, ky, kx, 0].astype(np.int64)
    return acc


def gap_acc(x: np.ndarray, layer: dict) -> np.ndarray:
    """int64 accumulators `[N, 1, 1, C]` of a global average pool (the sum of `x - x_zp`)."""
    return (x.astype(np.int64) - int(layer["x_zp"])).sum(axis=(1, 2), keepdims=True)


def dense_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray, layer: dict) -> np.ndarray:
    """int64 accumulators `[N, 1, 1, OC]` of a dense layer on `[N, 1, 1, C]`."""
    xc = x.reshape(x.shape[0], -1).astype(np.int64) - int(layer["x_zp"])
    acc = np.rint(xc.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64) + b.astype(np.int64)
    return acc.reshape(x.shape[0], 1, 1, -1)


def run_layer(layer: dict, w, b, x: np.ndarray) -> np.ndarray:
    """One layer on a batch `[N, H, W, C]`: its quantized output `[N, OH, OW, OC]`."""
    if layer["op"] == "conv2d":
        acc = conv2d_acc(x, w, b, layer)
    elif layer["op"] == "dense":
        acc = dense_acc(x, w, b, layer)
    else:
        acc = gap_acc(x, layer)
    return _clamp_output(acc, layer)


def as_model(model) -> Int8Model:
    """Accept an `Int8Model`, model file bytes, or a path to a model file / model directory."""
    if isinstance(model, Int8Model):
        return model
    if isinstance(model, (bytes, bytearray, memoryview, str, os.PathLike)):
        return read_model(model)
    inner = getattr(model, "int8", None)  # a QuantizedModel
    if isinstance(inner, Int8Model):
        return inner
    raise TypeError(f"expected an Int8Model, model file bytes or a path, got {type(model).__name__}")


def _batch(model: Int8Model, x: np.ndarray) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    single = x.ndim in (2, 3)
    if x.ndim == 2:
        x = x[:, :, None]
    if single:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != model.input_shape:
        raise ValueError(
            f"input must be uint8 HWC/NHWC of shape {model.input_shape}, got {x.dtype} {tuple(x.shape)}"
        )
    return x, single


def forward(model, x: np.ndarray, *, trace: bool = False):
    """int8 logits of an input uint8 HWC image (`[OC]`) or NHWC batch (`[N, OC]`).

    With `trace=True`, returns the list of every layer's output instead (for debugging runtimes).
    """
    model = as_model(model)
    x, single = _batch(model, x)
    outputs = []
    for layer, w, b in zip(model.layers, model.weights, model.biases):
        x = run_layer(layer, w, b, x)
        outputs.append(x[0] if single else x)
    if trace:
        return outputs
    logits = x.reshape(x.shape[0], -1)
    return logits[0] if single else logits


def predict(model, x: np.ndarray) -> tuple[int, np.ndarray]:
    """`(class index, int8 logits)` for one image: the first largest logit wins ties."""
    logits = forward(model, x)
    return int(np.argmax(logits)), logits


def scores(model, logits: np.ndarray) -> np.ndarray:
    """Display probabilities: softmax of the dequantized logits (not part of the bit-exact contract)."""
    model = as_model(model)
    out = model.meta["output"]
    z = float(out["scale"]) * (np.asarray(logits, dtype=np.float64) - int(out["zp"]))
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def check_model(model: Int8Model) -> None:
    """Raise ModelError unless `model` satisfies every rule of docs/int8.md (the edge reader's checks)."""
    to_bytes(model)


def layer_macs(layer: dict) -> int:
    """Multiply-accumulates of one layer (gap counts one add per input element)."""
    oh, ow, oc = layer["out_shape"]
    if layer["op"] == "gap":
        return int(np.prod(layer["in_shape"]))
    return int(oh * ow * np.prod(weight_shape(layer)))


def model_macs(layers: list[dict]) -> int:
    """Total multiply-accumulates of a network, as written in the metadata's `macs`."""
    return sum(layer_macs(layer) for layer in layers)
