"""Every int8 kernel, in every backend, matches the host reference `camlytics.model.int8ref` bit for bit.

Layers are random (weights over the full int8 range, zero points on both sides, both dtypes, ReLU on
and off, several kernels, strides and paddings) with multipliers calibrated so outputs spread over
the whole range, including saturation. MicroPython runs the viper and plain kernels for real.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from camlytics.edge.infer import run_layer
from camlytics.edge.model import Layer
from camlytics.model import int8ref

# (name, op, in_shape, out_channels, kernel, stride, pad, depthwise, x (dtype, zp), y (dtype, zp), relu)
CASES = [
    ("conv3x3_s1_p1_c3", "conv2d", [7, 6, 3], 5, [3, 3], [1, 1], [1, 1, 1, 1], False, ("uint8", 0), ("uint8", 0), True),
    ("conv3x3_s2_first_layer", "conv2d", [9, 8, 1], 8, [3, 3], [2, 2], [0, 0, 1, 1], False, ("uint8", 0), ("uint8", 0), True),
    ("conv3x3_s2_int8_out", "conv2d", [8, 7, 4], 6, [3, 3], [2, 2], [1, 1, 1, 1], False, ("uint8", 17), ("int8", -5), False),
    ("conv1x1_int8_in_odd_c", "conv2d", [5, 4, 13], 7, [1, 1], [1, 1], [0, 0, 0, 0], False, ("int8", -7), ("uint8", 131), False),
    ("conv1x1_s2", "conv2d", [6, 6, 8], 4, [1, 1], [2, 2], [0, 0, 0, 0], False, ("uint8", 0), ("uint8", 0), True),
    ("conv2x3_asym", "conv2d", [6, 7, 2], 3, [2, 3], [1, 2], [2, 0, 1, 3], False, ("uint8", 255), ("int8", 0), True),
    ("conv3x3_no_pad", "conv2d", [5, 5, 5], 9, [3, 3], [1, 1], [0, 0, 0, 0], False, ("int8", 127), ("int8", -128), False),
    ("dw3x3_s1_p1", "conv2d", [7, 6, 6], 6, [3, 3], [1, 1], [1, 1, 1, 1], True, ("uint8", 0), ("uint8", 0), True),
    ("dw3x3_s2_pad_br", "conv2d", [8, 9, 5], 5, [3, 3], [2, 2], [0, 0, 1, 1], True, ("uint8", 9), ("uint8", 0), True),
    ("dw3x3_int8", "conv2d", [5, 6, 4], 4, [3, 3], [1, 1], [1, 1, 1, 1], True, ("int8", 5), ("int8", -9), True),
    ("dw5x5_s2x1", "conv2d", [7, 6, 3], 3, [5, 5], [2, 1], [2, 2, 2, 2], True, ("uint8", 0), ("uint8", 0), True),
    ("dw1x3", "conv2d", [4, 6, 5], 5, [1, 3], [1, 1], [0, 1, 0, 1], True, ("uint8", 2), ("int8", 4), False),
    # "fine": small weights and inputs near the zero point with a multiplier near 1, so an
    # accumulator that is off by one changes the output
    ("conv3x3_s2_first_layer_fine", "conv2d", [9, 8, 1], 8, [3, 3], [2, 2], [1, 1, 1, 1], False, ("uint8", 3), ("uint8", 100), True),
    ("conv3x3_c4_fine", "conv2d", [6, 5, 4], 6, [3, 3], [1, 1], [1, 1, 1, 1], False, ("uint8", 0), ("int8", 0), False),
    ("conv1x1_fine", "conv2d", [5, 5, 9], 7, [1, 1], [1, 1], [0, 0, 0, 0], False, ("int8", 0), ("int8", 0), False),
    ("dw3x3_fine", "conv2d", [6, 6, 5], 5, [3, 3], [1, 1], [1, 1, 1, 1], True, ("uint8", 5), ("uint8", 120), True),
    ("dw2x2_fine", "conv2d", [5, 6, 3], 3, [2, 2], [1, 1], [0, 0, 1, 1], True, ("uint8", 0), ("int8", 0), False),
    ("gap_uint8", "gap", [5, 4, 6], 6, None, None, None, False, ("uint8", 3), ("uint8", 0), False),
    ("gap_int8", "gap", [3, 7, 5], 5, None, None, None, False, ("int8", -20), ("int8", 10), False),
    ("dense_logits", "dense", [1, 1, 20], 3, None, None, None, False, ("uint8", 0), ("int8", -3), False),
    ("dense_relu", "dense", [1, 1, 9], 5, None, None, None, False, ("uint8", 40), ("uint8", 7), True),
]
NP_DTYPE = {"uint8": np.uint8, "int8": np.int8}


def make_case(case: tuple, seed: int) -> dict:
    """A random valid layer of the given configuration, an input batch and int8ref's outputs."""
    name, op, in_shape, oc, kernel, stride, pad, dw, (xdt, xz), (ydt, yz), relu = case
    rng = np.random.default_rng(seed)
    h, w, c = in_shape
    layer = {"op": op, "in_shape": in_shape, "x_dtype": xdt, "x_zp": xz, "y_dtype": ydt, "y_zp": yz}
    if op == "conv2d":
        oh = (h + pad[0] + pad[2] - kernel[0]) // stride[0] + 1
        ow = (w + pad[1] + pad[3] - kernel[1]) // stride[1] + 1
        layer.update(out_shape=[oh, ow, oc], kernel=kernel, stride=stride, pad=pad, groups=c if dw else 1, relu=relu)
    elif op == "dense":
        layer.update(out_shape=[1, 1, oc], relu=relu)
    else:
        layer.update(out_shape=[1, 1, c])
    fine = name.endswith("_fine")
    lo, hi = int8ref.DTYPE_RANGE[xdt]
    if fine:
        lo, hi = max(lo, xz - 4), min(hi, xz + 4)
    x = rng.integers(lo, hi + 1, size=(6, h, w, c)).astype(NP_DTYPE[xdt])
    x[0] = lo  # extremes: the largest |x - x_zp| the bound allows for
    x[1] = hi
    if op == "gap":
        wt = bias = None
        acc = int8ref.gap_acc(x, layer)
        big_m = rng.uniform(0.5, 3.0) / (h * w)
        m, s = int8ref.choose_requant(big_m, int8ref.accumulator_bound(layer, None, None))
        layer.update(m=int(m[0]), s=int(s[0]))
    else:
        shape = int8ref.weight_shape(layer)
        wt = rng.integers(-3 if fine else -128, 4 if fine else 128, size=shape).astype(np.int8)
        if not fine:
            wt.reshape(shape[0], -1)[0, :] = -128  # one channel at the int8 extreme
        zero = np.zeros(oc, dtype=np.int32)
        acc = (int8ref.conv2d_acc if op == "conv2d" else int8ref.dense_acc)(x, wt, zero, layer)
        spread = acc.reshape(-1, oc).std(axis=0) + 1.0
        bias = np.rint(rng.normal(0, 1, oc) * spread - acc.reshape(-1, oc).mean(axis=0)).astype(np.int32)
        # some channels saturate, all spread; "fine" layers resolve single accumulator steps
        big_m = rng.uniform(0.6, 1.5, oc) if fine else rng.uniform(40, 200, oc) / (2.5 * spread)
        m, s = int8ref.choose_requant(big_m, int8ref.accumulator_bound(layer, wt, bias))
        layer.update(m=[int(v) for v in m], s=[int(v) for v in s])
    y = int8ref.run_layer(layer, wt, bias, x)
    return {
        "name": name,
        "layer": layer,
        "w": None if wt is None else wt.tobytes().hex(),
        "b": None if bias is None else [int(v) for v in bias],
        "x": [xi.tobytes().hex() for xi in x],
        "y": [yi.tobytes().hex() for yi in y],
    }


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return [make_case(case, seed) for seed, case in enumerate(CASES)]


def edge_layer(case: dict) -> Layer:
    w = None if case["w"] is None else bytes.fromhex(case["w"])
    return Layer(case["layer"], w, None if case["b"] is None else tuple(case["b"]))


def test_cases_exercise_saturation_and_zero_points(cases):
    """The generated outputs are not degenerate: they reach both ends of their range somewhere."""
    seen = set()
    for case in cases:
        for y in case["y"]:
            data = bytes.fromhex(y)
            seen.update({min(data), max(data)})
        assert len({bytes.fromhex(y) for y in case["y"]}) > 1, case["name"]
    assert 0 in seen and 255 in seen


@pytest.mark.parametrize("backend", ["numpy", "pure"])
def test_cpython_kernels_match_int8ref(cases, backend):
    for case in cases:
        layer = edge_layer(case)
        for x, y in zip(case["x"], case["y"]):
            got = run_layer(layer, bytes.fromhex(x), backend)
            assert bytes(got).hex() == y, f"{case['name']} ({backend})"


MPY_SCRIPT = """
import binascii, json, sys
from camlytics.edge.infer import run_layer
from camlytics.edge.model import Layer
with open(sys.argv[1]) as f:
    cases = json.load(f)
for backend in sys.argv[2:]:
    for case in cases:
        w = None if case["w"] is None else binascii.unhexlify(case["w"])
        b = None if case["b"] is None else tuple(case["b"])
        layer = Layer(case["layer"], w, b)
        for x in case["x"]:
            y = run_layer(layer, binascii.unhexlify(x), backend)
            print(backend, case["name"], binascii.hexlify(y).decode())
"""


def test_micropython_kernels_match_int8ref(cases, micropython, tmp_path):
    """Every kernel backend inside the real MicroPython (C module, viper, plain) gives int8ref's bytes."""
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    backends = micropython.backends
    out = micropython(MPY_SCRIPT, args=[str(path), *backends]).split("\n")
    expected = [f"{backend} {case['name']} {y}" for backend in backends for case in cases for y in case["y"]]
    assert [line for line in out if line] == expected

