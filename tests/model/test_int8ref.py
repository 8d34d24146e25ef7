"""The host int8 reference implements docs/int8.md exactly (checked against a literal loop version)."""

from __future__ import annotations

import numpy as np
import pytest

from camlytics.errors import ModelError
from camlytics.export import testmodels
from camlytics.model import int8ref
from camlytics.model.modelfile import Int8Model


def literal_layer(layer: dict, w, b, x: np.ndarray) -> np.ndarray:
    """docs/int8.md section 2 transcribed with plain Python integers, one output element at a time."""
    lo, hi = int8ref.DTYPE_RANGE[layer["y_dtype"]]
    yz, xz = layer["y_zp"], layer["x_zp"]
    oh, ow, oc = layer["out_shape"]
    h, wd, c = layer["in_shape"]

    def rq(acc, m, s):
        return (acc * m + (1 << (s - 1))) >> s  # Python ints: exact, flooring shift

    out = np.zeros((oh, ow, oc), dtype=np.int64)
    if layer["op"] == "gap":
        for ch in range(c):
            acc = sum(int(x[i, j, ch]) - xz for i in range(h) for j in range(wd))
            out[0, 0, ch] = min(max(rq(acc, layer["m"], layer["s"]) + yz, lo), hi)
        return out
    relu_lo = max(lo, yz) if layer["relu"] else lo
    if layer["op"] == "dense":
        for o in range(oc):
            acc = int(b[o]) + sum((int(x[0, 0, i]) - xz) * int(w[o, i]) for i in range(c))
            out[0, 0, o] = min(max(rq(acc, layer["m"][o], layer["s"][o]) + yz, relu_lo), hi)
        return out
    kh, kw = layer["kernel"]
    sh, sw = layer["stride"]
    top, left = layer["pad"][:2]
    cg = c // layer["groups"]
    for oy in range(oh):
        for ox in range(ow):
            for o in range(oc):
                g = o // (oc // layer["groups"])
                acc = int(b[o])
                for ky in range(kh):
                    for kx in range(kw):
                        for ic in range(cg):
                            i, j = oy * sh + ky - top, ox * sw + kx - left
                            xv = int(x[i, j, g * cg + ic]) if 0 <= i < h and 0 <= j < wd else xz
                            acc += (xv - xz) * int(w[o, ky, kx, ic])
                out[oy, ox, o] = min(max(rq(acc, layer["m"][o], layer["s"][o]) + yz, relu_lo), hi)
    return out


def test_requant_rounds_half_towards_plus_infinity():
    acc = np.array([3, -3, 5, -5, 4, -4, 0])
    assert int8ref.requant(acc, 1, 1).tolist() == [2, -1, 3, -2, 2, -2, 0]
    # 1000 * 3 / 2**4 = 187.5 -> 188; -187.5 -> -187
    assert int8ref.requant(np.array([1000, -1000]), 3, 4).tolist() == [188, -187]


@pytest.mark.parametrize("arch", ["tiny", "rgb", "zp"])
def test_every_layer_matches_the_literal_spec(arch):
    model = testmodels.random_model(seed=11, arch=arch)
    x = testmodels.random_inputs(model, 3, seed=5)
    for image in x:
        cur = image
        for layer, w, b in zip(model.layers, model.weights, model.biases):
            got = int8ref.run_layer(layer, w, b, cur[None])[0]
            want = literal_layer(layer, w, b, cur)
            np.testing.assert_array_equal(got.astype(np.int64), want, err_msg=f"{layer['op']} {layer['in_shape']}")
            cur = got


def _one_conv(**over) -> Int8Model:
    layer = {"op": "conv2d", "in_shape": [2, 2, 1], "out_shape": [1, 1, 2], "kernel": [2, 2], "stride": [1, 1],
             "pad": [0, 0, 0, 0], "groups": 1, "relu": False, "m": [1, 1], "s": [1, 1],
             "x_zp": 0, "x_dtype": "uint8", "y_zp": 0, "y_dtype": "int8"}
    gap = {"op": "gap", "in_shape": [1, 1, 2], "out_shape": [1, 1, 2], "m": 2, "s": 1,
           "x_zp": 0, "x_dtype": "int8", "y_zp": 0, "y_dtype": "int8"}
    layer.update(over)
    meta = {"format": "camlytics-int8", "version": 1, "name": "t", "classes": ["a", "b"],
            "input": {"height": 2, "width": 2, "channels": 1, "dtype": "uint8", "zp": 0, "scale": 1 / 255},
            "output": {"dtype": "int8", "zp": 0, "scale": 0.1}, "layers": [layer, gap]}
    w = np.array([[[[1], [2]], [[3], [4]]], [[[-1], [-1]], [[-1], [-1]]]], dtype=np.int8)
    return Int8Model(meta, [w, None], [np.array([1, 0], dtype=np.int32), None])


def test_hand_computed_network():
    model = _one_conv()
    x = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    # channel 0: 1 + 10 + 40 + 90 + 160 = 301 -> (301 + 1) >> 1 = 151 -> clamp 127
    # channel 1: -100 -> (-100 + 1) >> 1 = -50; gap: m=2, s=1 -> (x*2 + 1) >> 1 = x
    assert int8ref.forward(model, x).tolist() == [127, -50]
    assert int8ref.predict(model, x)[0] == 0


def test_ties_go_to_the_lower_class_index():
    model = _one_conv(relu=True)  # both channels clamp to >= 0 ... channel 1 to exactly 0
    x = np.zeros((2, 2), dtype=np.uint8)
    model.biases[0][:] = [0, 0]
    logits = int8ref.forward(model, x)
    assert logits.tolist() == [0, 0] and int8ref.predict(model, x)[0] == 0


def test_choose_requant_takes_the_largest_shift_within_the_bound():
    big_m = np.array([0.0123, 0.5, 3e-5])
    bound = np.array([40_000, 10_000_000, 70_000])
    m, s = int8ref.choose_requant(big_m, bound)
    assert np.all(int8ref.bound_ok(bound, m, s))
    for mm, ss, mult, bnd in zip(m, s, big_m, bound):
        assert abs(mm / 2.0**ss - mult) <= 2.0 ** -(ss + 1)
        if ss < 31:  # one more bit of shift would overflow
            m2 = int(round(mult * 2.0 ** (ss + 1)))
            assert m2 >= 2**31 or bnd * m2 + (1 << ss) > 2**31 - 1
    with pytest.raises(ValueError, match="overflows"):
        int8ref.choose_requant([4.0], [2**30])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda mdl: mdl.layers[0].update(m=[2**31 - 1, 1]), "overflow"),
        (lambda mdl: mdl.layers[0].update(s=[0, 1]), "s must be"),
        (lambda mdl: mdl.layers[0].update(out_shape=[2, 1, 2]), "in_shape|out_shape"),
        (lambda mdl: mdl.layers[0].update(groups=2), "groups"),
        (lambda mdl: mdl.layers[1].update(x_zp=3), "previous output"),
        (lambda mdl: mdl.meta.update(classes=["a"]), "classes"),
        (lambda mdl: mdl.meta.update(output={"dtype": "int8", "zp": 5}), "output"),
        (lambda mdl: mdl.layers[0].update(y_zp=200), "y_zp"),
        (lambda mdl: mdl.biases.__setitem__(0, np.array([2**31 - 1, 0], dtype=np.int64)), "overflow"),
    ],
)
def test_check_model_rejects_spec_violations(change, message):
    model = _one_conv()
    int8ref.check_model(model)
    change(model)
    with pytest.raises(ModelError, match=message):
        int8ref.check_model(model)


def test_batch_and_single_inputs_agree_and_bad_inputs_are_named():
    model = testmodels.random_model(seed=3, arch="rgb")
    x = testmodels.random_inputs(model, 5, seed=1)
    batch = int8ref.forward(model, x)
    assert batch.dtype == np.int8 and batch.shape == (5, 3)
    for i in range(5):
        np.testing.assert_array_equal(int8ref.forward(model, x[i]), batch[i])
    with pytest.raises(ValueError, match=r"\(20, 24, 3\)"):
        int8ref.forward(model, x[:, :10])
    with pytest.raises(ValueError, match="uint8"):
        int8ref.forward(model, x.astype(np.float32))


def test_scores_are_a_softmax_of_dequantized_logits():
    model = testmodels.random_model(seed=1)
    logits = np.array([10, -20], dtype=np.int8)
    p = int8ref.scores(model, logits)
    out = model.meta["output"]
    z = out["scale"] * (logits.astype(float) - out["zp"])
    assert p.sum() == pytest.approx(1.0) and p[0] / p[1] == pytest.approx(np.exp(z[0] - z[1]))
