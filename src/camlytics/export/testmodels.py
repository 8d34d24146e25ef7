"""Random but valid quantized models, for testing every runtime against the reference.

Weights use the full per-channel int8 range and multipliers are calibrated on random images, so
requantization, rounding, clamping and non-zero zero points are all exercised.
"""

from __future__ import annotations

import numpy as np

from camlytics.model.modelfile import Int8Model

# Layer specs: ("conv", out_channels, kernel, stride, pad) full convolution; ("dw", kernel, stride, pad)
# depthwise; ("pw", out_channels) 1x1; ("lin", out_channels, y_dtype, y_zp) conv 1x1 without ReLU;
# ("gap",); ("dense", out_channels, relu); ("whole", out_channels, stride) a convolution without ReLU
# whose kernel covers the whole input map (a head that weighs every cell of the map). The last layer gives
# the int8 logits.
ARCHS: dict[str, dict] = {
    "tiny": {
        "input": (16, 16, 1),
        "layers": [("conv", 8, 3, 2, [1, 1, 1, 1]), ("dw", 3, 1, [1, 1, 1, 1]), ("pw", 12),
                   ("dw", 3, 2, [0, 0, 1, 1]), ("pw", 16), ("gap",), ("dense", 2, False)],
    },
    "rgb": {
        "input": (20, 24, 3),
        "layers": [("conv", 8, 3, 1, [1, 1, 1, 1]), ("conv", 12, 3, 2, [0, 0, 1, 1]),
                   ("dw", 3, 2, [1, 1, 1, 1]), ("pw", 16), ("gap",), ("dense", 3, False)],
    },
    "zp": {  # hidden activations with non-zero zero points, an int8 hidden tensor, a hidden dense
        "input": (12, 10, 1),
        "layers": [("conv", 6, 3, 2, [1, 1, 1, 1]), ("lin", 8, "uint8", 131), ("dw", 3, 1, [1, 1, 1, 1]),
                   ("lin", 8, "int8", -7), ("conv", 10, 3, 1, [0, 0, 0, 0]), ("gap",),
                   ("dense", 8, True), ("dense", 4, False)],
    },
    "door": {  # the size of a real door student: 32x32 grey, ~0.2 M MACs
        "input": (32, 32, 1),
        "layers": [("conv", 8, 3, 2, [1, 1, 1, 1]), ("dw", 3, 1, [1, 1, 1, 1]), ("pw", 16),
                   ("dw", 3, 2, [1, 1, 1, 1]), ("pw", 32), ("dw", 3, 2, [1, 1, 1, 1]), ("pw", 32),
                   ("dw", 3, 1, [1, 1, 1, 1]), ("pw", 64), ("gap",), ("dense", 2, False)],
    },
    "linear": {  # the linear baseline of `camlytics train`: one convolution over the whole (upscaled) input
        "input": (43, 24, 1),
        "layers": [("whole", 2, 1)],
    },
    "linear-rgb": {
        "input": (20, 26, 3),
        "layers": [("whole", 3, 1)],
    },
    "whole": {  # logits from one stride-2 convolution over the whole 4x8 map: non-square, unpadded, no pool
        "input": (32, 64, 1),
        "layers": [("conv", 8, 3, 2, [1, 1, 1, 1]), ("dw", 3, 2, [1, 1, 1, 1]), ("pw", 16),
                   ("dw", 3, 2, [1, 1, 1, 1]), ("pw", 24), ("whole", 2, 2)],
    },
}


def random_images(shape: tuple[int, int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` uint8 HWC images with smooth structure plus noise (closer to camera frames than white noise)."""
    h, w, c = shape
    coarse = rng.uniform(0, 255, size=(n, (h + 3) // 4, (w + 3) // 4, c))
    smooth = coarse.repeat(4, axis=1).repeat(4, axis=2)[:, :h, :w, :]
    noisy = smooth + rng.normal(0, 20, size=smooth.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _layer(spec: tuple, in_shape: list[int], x_dtype: str, x_zp: int, last: bool) -> dict:
    """The layer's attributes (shapes, dtypes) without weights or requantization parameters."""
    h, w, c = in_shape
    kind = spec[0]
    if kind == "gap":
        return {"op": "gap", "in_shape": in_shape, "out_shape": [1, 1, c]}
    if kind == "dense":
        return {"op": "dense", "in_shape": in_shape, "out_shape": [1, 1, spec[1]], "relu": spec[2]}
    if kind == "whole":
        return {"op": "conv2d", "in_shape": in_shape, "out_shape": [1, 1, spec[1]], "kernel": [h, w],
                "stride": [spec[2], spec[2]], "pad": [0, 0, 0, 0], "groups": 1, "relu": False}
    if kind in ("pw", "lin"):
        oc, k, stride, pad, groups = spec[1], 1, 1, [0, 0, 0, 0], 1
    elif kind == "dw":
        oc, k, stride, pad, groups = c, spec[1], spec[2], spec[3], c
    else:
        oc, k, stride, pad, groups = spec[1], spec[2], spec[3], spec[4], 1
    oh = (h + pad[0] + pad[2] - k) // stride + 1
    ow = (w + pad[1] + pad[3] - k) // stride + 1
    return {"op": "conv2d", "in_shape": in_shape, "out_shape": [oh, ow, oc], "kernel": [k, k],
            "stride": [stride, stride], "pad": pad, "groups": groups, "relu": kind != "lin"}


def random_model(seed: int, arch: str = "tiny") -> Int8Model:
    """A random valid `Int8Model` of the named architecture (see ARCHS), deterministic in `seed`."""
    from camlytics.model import int8ref

    if arch not in ARCHS:
        raise ValueError(f"unknown test architecture {arch!r}; choose one of {sorted(ARCHS)}")
    rng = np.random.default_rng(seed)
    spec = ARCHS[arch]
    h, w, c = spec["input"]
    x = random_images((h, w, c), 16, rng)
    shape, x_dtype, x_zp, x_scale = [h, w, c], "uint8", 0, 1 / 255
    layers, weights, biases = [], [], []
    for i, lspec in enumerate(spec["layers"]):
        last = i == len(spec["layers"]) - 1
        layer = _layer(lspec, shape, x_dtype, x_zp, last)
        if last:
            y_dtype, y_zp = "int8", int(rng.integers(-8, 9))
        elif lspec[0] == "lin":
            y_dtype, y_zp = lspec[2], lspec[3]
        else:
            y_dtype, y_zp = "uint8", 0
        layer.update(x_zp=x_zp, x_dtype=x_dtype, y_zp=y_zp, y_dtype=y_dtype)
        y_scale = float(rng.uniform(0.01, 0.05))
        if layer["op"] == "gap":
            hh, ww, _ = shape
            big_m = np.array([rng.uniform(1.0, 2.0) / (hh * ww)])
            wt = bias = None
            bound = int8ref.accumulator_bound(layer, None, None)
            m, s = int8ref.choose_requant(big_m, bound)
            layer.update(m=int(m[0]), s=int(s[0]))
        else:
            wshape = int8ref.weight_shape(layer)
            raw = rng.normal(0, 1, size=wshape)
            peak = np.abs(raw).reshape(wshape[0], -1).max(axis=1).reshape((-1,) + (1,) * (len(wshape) - 1))
            wt = np.rint(raw / peak * 127).astype(np.int8)  # per-channel symmetric: each channel reaches 127
            zero_b = np.zeros(wshape[0], dtype=np.int32)
            acc = (int8ref.conv2d_acc if layer["op"] == "conv2d" else int8ref.dense_acc)(x, wt, zero_b, layer)
            flat = acc.reshape(-1, wshape[0])
            spread = flat.std(axis=0) + 1.0
            # Centre each channel, then offset it a little: about half the ReLU outputs stay positive.
            bias = np.rint(rng.normal(0, 0.5, size=wshape[0]) * spread - flat.mean(axis=0)).astype(np.int32)
            target = 100.0 if y_dtype == "int8" or y_zp else 180.0  # output levels used by 2.5 sigma
            big_m = target / (2.5 * spread)
            m, s = int8ref.choose_requant(big_m, int8ref.accumulator_bound(layer, wt, bias))
            layer.update(m=[int(v) for v in m], s=[int(v) for v in s],
                         x_scale=x_scale, w_scale=[float(v) for v in big_m * y_scale / x_scale])
        layer.update(x_scale=x_scale, y_scale=y_scale)
        layers.append(layer)
        weights.append(wt)
        biases.append(bias)
        x = int8ref.run_layer(layer, wt, bias, x)
        shape, x_dtype, x_zp, x_scale = layer["out_shape"], y_dtype, y_zp, y_scale
    n_classes = shape[2]
    classes = ["closed", "open"] if n_classes == 2 else [f"class{i}" for i in range(n_classes)]
    meta = {
        "format": "camlytics-int8", "version": 1, "name": f"random-{arch}-{seed}", "classes": classes,
        "input": {"height": h, "width": w, "channels": c, "dtype": "uint8", "zp": 0, "scale": 1 / 255},
        "preprocess": {"color": "gray" if c == 1 else "rgb", "roi": [0, 0, 8 * w, 8 * h],
                       "source_size": [8 * w, 8 * h], "resize": "area"},
        "output": {"dtype": "int8", "zp": layers[-1]["y_zp"], "scale": layers[-1]["y_scale"]},
        "macs": int8ref.model_macs(layers),
        "layers": layers,
    }
    return Int8Model(meta, weights, biases)


def random_model_bytes(seed: int, arch: str = "tiny") -> bytes:
    """Model file bytes of `random_model(seed, arch)`."""
    return random_model(seed, arch).to_bytes()


def random_inputs(model: Int8Model, n: int, seed: int) -> np.ndarray:
    """`n` uint8 NHWC inputs for `model`: structured images plus some all-0 / all-255 extremes."""
    rng = np.random.default_rng(seed)
    x = random_images(model.input_shape, n, rng)
    if n >= 3:
        x[0] = 0
        x[1] = 255
        x[2] = rng.integers(0, 256, size=x[2].shape, dtype=np.uint8)  # white noise
    return x
