"""The int8 kernels of the camlytics C module (`_camlytics`, edge backend "c") give the host reference's
bytes inside real firmwares: x86_64 natively, armv7hf and aarch64 under qemu-user.

- every layer type of docs/int8.md, random but valid (`tests/edge/test_ops.py`'s cases plus the C
  loops' own corners: windows on both sides of the short-window and chunk limits, channel counts past
  the channel block, extreme multipliers and shifts), against `int8ref`;
- raw parameter blocks with any int32 table values (negative or huge m, s up to 100, odd rounding
  terms), against the plain-Python kernels of `edge/ops.py`, the whole output buffer compared;
- whole networks: the door model on 500 real frames of a simulated day and random models of every
  test architecture, logits against `int8ref` (0 may differ);
- a parameter block that does not fit its buffers raises ValueError and writes nothing.

Each firmware runs one interpreter per test over all its inputs.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from camlytics.edge import ops
from camlytics.edge.infer import backend_module
from camlytics.export.testmodels import random_inputs, random_model
from camlytics.model import int8ref
from tests.edge.test_ops import CASES, make_case

ARCHES = ("x86_64", "armv7hf", "aarch64")
SRC = Path(__file__).resolve().parents[2] / "src"


def run_firmware(argv: list[str], script: str, args: list[str], tmp_path: Path, timeout: float = 600) -> list[str]:
    """Run `script` in the firmware (its frozen edge package first, else the working tree's); stdout lines."""
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "MICROPYPATH": os.pathsep.join([".frozen", str(SRC)])}
    proc = subprocess.run([*argv, "-X", "heapsize=8m", str(path), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path, env=env)
    assert proc.returncode == 0, f"firmware exited {proc.returncode}:\n{proc.stderr[-3000:]}\n{proc.stdout[-1000:]}"
    return [line for line in proc.stdout.split("\n") if line]


# --- layers against int8ref ------------------------------------------------------------------------

# More cases in test_ops.py's format, for the C loops' corners: windows of 9, 16, 17, 24 and 64 taps
# (weight rows padded to 16, 16, 24, 24, 64), window rows copied 8 bytes at a time and, at the end of
# x where that would read past it, byte by byte; windows longer than the 4096 values gathered at once
# (one crossing window rows), channel counts past the block of 64 and not a multiple of 4, unusual
# strides.
C_CASES = [
    ("conv3x3_c1_oc70", "conv2d", [7, 6, 1], 70, [3, 3], [1, 1], [1, 1, 1, 1], False, ("uint8", 0), ("uint8", 0), True),
    ("conv4x4_k16_s3x2", "conv2d", [9, 8, 1], 6, [4, 4], [3, 2], [1, 0, 2, 1], False, ("uint8", 4), ("int8", 3), False),
    ("pw_k17", "conv2d", [4, 5, 17], 9, [1, 1], [1, 1], [0, 0, 0, 0], False, ("uint8", 0), ("uint8", 0), True),
    ("conv3x1_k24_int8", "conv2d", [6, 5, 8], 5, [3, 1], [2, 1], [1, 0, 1, 0], False, ("int8", -50), ("int8", 20), True),
    ("pw_c64_oc70", "conv2d", [3, 4, 64], 70, [1, 1], [1, 1], [0, 0, 0, 0], False, ("uint8", 0), ("uint8", 0), True),
    ("conv2x2_c40_oc130", "conv2d", [4, 4, 40], 130, [2, 2], [2, 2], [0, 0, 0, 0], False, ("uint8", 200), ("uint8", 0), True),
    ("conv3x3_c600_chunks", "conv2d", [4, 3, 600], 3, [3, 3], [1, 1], [0, 0, 0, 0], False, ("uint8", 0), ("int8", -2), False),
    ("dense_5000_chunks", "dense", [1, 1, 5000], 3, None, None, None, False, ("uint8", 0), ("int8", -3), False),
    ("dense_int8_in_oc66", "dense", [1, 1, 40], 66, None, None, None, False, ("int8", -100), ("int8", 5), True),
    ("dw3x3_c70_s2", "conv2d", [7, 8, 70], 70, [3, 3], [2, 2], [0, 1, 1, 0], True, ("uint8", 0), ("uint8", 0), True),
    ("dw3x3_s1x3", "conv2d", [6, 9, 4], 4, [3, 3], [1, 3], [1, 1, 1, 1], True, ("int8", 0), ("uint8", 77), False),
    ("dw5x3_c70", "conv2d", [6, 5, 70], 70, [5, 3], [1, 2], [2, 1, 2, 1], True, ("uint8", 3), ("int8", -1), False),
    ("dw2x2_c2_int8", "conv2d", [3, 3, 2], 2, [2, 2], [1, 1], [0, 0, 0, 0], True, ("int8", 127), ("int8", -128), True),
    ("gap_c70", "gap", [9, 11, 70], 70, None, None, None, False, ("uint8", 0), ("uint8", 0), False),
    ("gap_1x1", "gap", [1, 1, 3], 3, None, None, None, False, ("int8", 0), ("int8", 0), False),
]
# Requantization extremes, channel by channel (docs/int8.md section 3 allows 1 <= s <= 31, 0 <= m < 2**31
# within the 32-bit bound): the largest shift with the largest m it allows (outputs near +-0.5: every
# rounding decision), the smallest shift with the largest m (saturation), m = 0, a random pair.
EXTREME_NAMES = ["conv3x3_s2_int8_out", "conv1x1_int8_in_odd_c", "dw3x3_int8", "dense_logits", "gap_int8",
                 "pw_c64_oc70", "dw5x3_c70", "dense_5000_chunks"]


def _extreme_requant(layer: dict, wt, bias, rng: np.random.Generator) -> None:
    bound = int8ref.accumulator_bound(layer, wt, bias)
    n = 1 if layer["op"] == "gap" else int(layer["out_shape"][2])
    ms, ss = [], []
    for ch in range(n):
        b = int(bound[0] if layer["op"] == "gap" else bound[ch])
        kind = 1 if layer["op"] == "gap" else ch % 4  # gap's one pair: saturating, so its outputs differ
        s = {0: 31, 1: 1, 2: int(rng.integers(1, 32)), 3: int(rng.integers(1, 32))}[kind]
        top = min(2**31 - 1, (2**31 - 1 - (1 << (s - 1))) // max(b, 1))
        m = {0: top, 1: top, 2: 0, 3: int(rng.integers(0, top + 1))}[kind]
        assert int8ref.bound_ok(np.array([b]), m, s).all()
        ms.append(m)
        ss.append(s)
    if layer["op"] == "gap":
        layer.update(m=ms[0], s=ss[0])
    else:
        layer.update(m=ms, s=ss)


def _with_extreme_requant(case: dict, seed: int) -> dict:
    """`case` with the requantization of `_extreme_requant` and int8ref's outputs for it."""
    layer = json.loads(json.dumps(case["layer"]))
    wt = bias = None
    if case["w"] is not None:
        wt = np.frombuffer(bytes.fromhex(case["w"]), np.int8).reshape(int8ref.weight_shape(layer))
        bias = np.array(case["b"], np.int32)
    _extreme_requant(layer, wt, bias, np.random.default_rng(seed))
    dtype = np.uint8 if layer["x_dtype"] == "uint8" else np.int8
    h, w, c = layer["in_shape"]
    x = np.stack([np.frombuffer(bytes.fromhex(v), dtype).reshape(h, w, c) for v in case["x"]])
    y = int8ref.run_layer(layer, wt, bias, x)
    return {**case, "name": case["name"] + "_extreme", "layer": layer, "y": [yi.tobytes().hex() for yi in y]}


@pytest.fixture(scope="module")
def layer_cases() -> list[dict]:
    cases = [make_case(case, seed) for seed, case in enumerate(CASES + C_CASES)]
    by_name = {case["name"]: case for case in cases}
    cases += [_with_extreme_requant(by_name[name], 100 + i) for i, name in enumerate(EXTREME_NAMES)]
    return cases


def test_layer_cases_cover_the_c_loops(layer_cases):
    """Every path of int8.c is met: short windows, dot rows, chunked windows, channel blocks, 3x3 and
    general depthwise, gap; and the extreme requantizations reach both ends and the middle."""
    def k(case):
        layer = case["layer"]
        kh, kw = layer.get("kernel", [1, 1])
        return kh * kw * layer["in_shape"][2]
    full = [c for c in layer_cases if c["layer"]["op"] != "gap" and c["layer"].get("groups", 1) == 1]
    assert any(k(c) <= 16 for c in full) and any(16 < k(c) <= 4096 for c in full)
    assert any(k(c) > 4096 for c in full) and any(k(c) in (16, 17) for c in full)
    assert any(c["layer"]["out_shape"][2] > 128 and c["layer"]["out_shape"][2] % 4 for c in full)
    dws = [c for c in layer_cases if c["layer"].get("groups", 1) > 1]
    assert any(c["layer"]["kernel"] == [3, 3] and c["layer"]["in_shape"][2] > 64 for c in dws)
    assert any(c["layer"]["kernel"] != [3, 3] and c["layer"]["in_shape"][2] > 64 for c in dws)
    extreme = [c for c in layer_cases if c["name"].endswith("_extreme")]
    ss = {s for c in extreme for s in np.atleast_1d(c["layer"]["s"]).tolist()}
    assert {1, 31} <= ss
    assert 0 in {m for c in extreme for m in np.atleast_1d(c["layer"]["m"]).tolist()}
    for c in extreme:
        assert len({bytes.fromhex(y) for y in c["y"]}) > 1, c["name"]


MPY_LAYERS = """
import binascii, json, sys
from camlytics.edge.infer import run_layer
from camlytics.edge.model import Layer
with open(sys.argv[1]) as f:
    cases = json.load(f)
for case in cases:
    w = None if case["w"] is None else binascii.unhexlify(case["w"])
    b = None if case["b"] is None else tuple(case["b"])
    layer = Layer(case["layer"], w, b)
    for x in case["x"]:
        print(case["name"], binascii.hexlify(run_layer(layer, binascii.unhexlify(x), "c")).decode())
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_c_layers_match_int8ref(arch, layer_cases, firmware_argv, tmp_path):
    (tmp_path / "cases.json").write_text(json.dumps(layer_cases))
    got = run_firmware(firmware_argv(arch), MPY_LAYERS, [str(tmp_path / "cases.json")], tmp_path)
    want = [f"{case['name']} {y}" for case in layer_cases for y in case["y"]]
    assert len(got) == len(want)
    bad = [w.split()[0] for g, w in zip(got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(want)} layer outputs differ: {sorted(set(bad))}"


# --- raw parameter blocks against the plain-Python kernels -------------------------------------------

def _raw_case(rng: random.Random, kind: str, edge: bool = False) -> dict:
    """A random parameter block (any int32 table values) with x, w, an initial y and ops.py's result.

    `edge`: valid shifts, weights of one sign and x all 255, so every window's acc sits at the end of its
    range, and m at the largest value for which acc * m + rnd fits int32 in every channel, or, in one
    channel, 1 or 1000 past it: the C kernels' choice between int32 and int64 arithmetic must not show.
    """
    c = rng.choice([1, 2, 3, 5, 8, 16, 33, 70]) if kind != "conv2d_big" else 600
    kh, kw = rng.choice([(1, 1), (3, 3), (2, 3), (5, 1), (1, 4)]) if kind != "conv2d_big" else (3, 3)
    sh, sw = (1, 1) if edge else (rng.randint(1, 3), rng.randint(1, 3))
    ph, pw = kh + (3 if edge else rng.randint(0, 5)), kw + (3 if edge else rng.randint(0, 5))
    if kind == "gap":
        kh, kw = ph, pw = rng.randint(1, 6), rng.randint(1, 6)
    oh, ow = (ph - kh) // sh + 1, (pw - kw) // sw + 1
    oc = c if kind in ("depthwise", "gap") else rng.choice([1, 3, 4, 9, 64, 67])
    # the output lands inside a larger buffer, as in the next layer's padded input
    ybase, yrow = rng.randint(0, 7), ow * oc + rng.randint(0, 9)
    y_len = ybase + (oh - 1) * yrow + ow * oc + rng.randint(0, 5)
    yz = 0 if edge else rng.choice([0, 128, rng.randint(-300, 300)])
    lo = 0 if edge else rng.choice([0, 0, max(0, min(yz, 255)), rng.randint(0, 255)])  # ReLU raises it
    hi = 255 if edge else rng.choice([255, 255, rng.randint(lo, 255)])
    p = ops.params(1 if kind == "gap" else oc)
    geometry = {ops.OH: oh, ops.OW: ow, ops.OC: oc, ops.KH: kh, ops.KW: kw, ops.C: c, ops.ROW: pw * c,
                ops.SY: sh * pw * c, ops.SX: sw * c, ops.YBASE: ybase, ops.YROW: yrow, ops.SH: sh, ops.SW: sw,
                ops.PH: ph, ops.PW: pw, ops.LO: lo, ops.HI: hi, ops.YZ: yz, ops.HB: -(2**31)}
    for i, v in geometry.items():
        p[i] = v
    taps = kh * kw * (1 if kind == "depthwise" else c)
    if edge:
        sign = rng.choice([1, -1])
        signed = [sign * rng.randint(0, 127) for _ in range(0 if kind == "gap" else oc * taps)]
        weights = bytes(v & 255 for v in signed)
        x = bytes([255]) * (ph * pw * c)
        past, over = rng.randrange(len(p) // 4 - 5), rng.choice([0, 1, 1000])
    else:
        weights = bytes(rng.getrandbits(8) for _ in range(0 if kind == "gap" else oc * taps))
        x = bytes(rng.getrandbits(8) for _ in range(ph * pw * c))
    for row, t in enumerate(range(ops.TABLE, len(p), 4)):
        if edge:
            s = rng.randint(1, 31)
            acc0, rnd = rng.randint(-1000, 1000), 1 << (s - 1)
            wsum = kh * kw if kind == "gap" else sum(signed[row * taps:(row + 1) * taps])
            m = (2**31 - 1 - rnd) // max(abs(acc0 + 255 * wsum), 1) + (over if row == past else 0)
            p[t], p[t + 1], p[t + 2], p[t + 3] = acc0, min(m, 2**31 - 1), rnd, s
            continue
        s = rng.choice([0, 1, 2, 15, 31, 32, 47, 62, 63, 64, 100, rng.randint(0, 70)])
        m = rng.choice([0, 1, 2**31 - 1, -(2**31), rng.randint(-(2**31), 2**31 - 1), rng.randint(0, 4096)])
        rnd = rng.choice([0, 1 << min(s - 1, 30) if s else 0, rng.randint(-(2**31), 2**31 - 1)])
        p[t], p[t + 1], p[t + 2], p[t + 3] = rng.randint(-(2**30), 2**30), m, rnd, s
    y0 = bytes(rng.getrandbits(8) for _ in range(y_len))
    y = bytearray(y0)
    if kind == "gap":
        ops.gap(x, y, p)
    else:
        layer = types.SimpleNamespace(weights=weights, out_shape=(oh, ow, oc))
        kernel = ops.depthwise if kind == "depthwise" else ops.conv2d
        kernel(x, ops.prepare_weights(layer), y, p)
    return {"kind": "conv2d" if kind == "conv2d_big" else kind, "p": list(p), "w": weights.hex(), "x": x.hex(),
            "y0": y0.hex(), "y": bytes(y).hex(), "out_shape": [oh, ow, oc]}


@pytest.fixture(scope="module")
def raw_cases() -> list[dict]:
    rng = random.Random(23)
    kinds = ["conv2d"] * 60 + ["depthwise"] * 40 + ["gap"] * 20 + ["conv2d_big"] * 2
    edges = ["conv2d"] * 24 + ["depthwise"] * 24 + ["gap"] * 12
    return [_raw_case(rng, kind) for kind in kinds] + [_raw_case(rng, kind, edge=True) for kind in edges]


MPY_RAW = """
import array, binascii, json, sys
from camlytics.edge import ops_c

class L:
    def __init__(self, weights, out_shape, depthwise):
        self.weights, self.out_shape, self.depthwise = weights, tuple(out_shape), depthwise

with open(sys.argv[1]) as f:
    cases = json.load(f)
for i, case in enumerate(cases):
    p = array.array("i", case["p"])
    x = binascii.unhexlify(case["x"])
    y = bytearray(binascii.unhexlify(case["y0"]))
    if case["kind"] == "gap":
        ops_c.gap(x, y, p)
    else:
        w = ops_c.prepare_weights(L(binascii.unhexlify(case["w"]), case["out_shape"], case["kind"] == "depthwise"))
        (ops_c.depthwise if case["kind"] == "depthwise" else ops_c.conv2d)(x, w, y, p)
    print(i, binascii.hexlify(y).decode())
"""


def test_raw_cases_reach_the_extremes(raw_cases):
    rows = [r for c in raw_cases for r in zip(*[iter(c["p"][ops.TABLE:])] * 4)]
    assert {0, 31, 32, 63, 64, 100} <= {s for _, _, _, s in rows}
    assert {0, 2**31 - 1, -(2**31)} <= {m for _, m, _, _ in rows}
    assert {c["kind"] for c in raw_cases} == {"conv2d", "depthwise", "gap"}
    assert len({b for c in raw_cases for b in bytes.fromhex(c["y"])}) > 200


@pytest.mark.parametrize("arch", ARCHES)
def test_c_kernels_match_the_plain_kernels_on_raw_parameter_blocks(arch, raw_cases, firmware_argv, tmp_path):
    """Any int32 row [acc0, m, rnd, s] (m negative or 2**31 - 1, s = 0..100) and any clamp: the same bytes as
    ops.py's unbounded Python ints, over the whole y buffer (nothing written outside the outputs)."""
    (tmp_path / "raw.json").write_text(json.dumps(raw_cases))
    got = run_firmware(firmware_argv(arch), MPY_RAW, [str(tmp_path / "raw.json")], tmp_path)
    want = [f"{i} {case['y']}" for i, case in enumerate(raw_cases)]
    bad = [raw_cases[int(w.split()[0])]["kind"] + " " + w.split()[0] for g, w in zip(got, want) if g != w]
    assert len(got) == len(want) and not bad, f"differ: {bad}"


# --- whole networks --------------------------------------------------------------------------------

MPY_NETWORK = """
import sys
from camlytics.edge.infer import Network
for spec in sys.argv[1:]:
    path, n = spec.split(",")
    net = Network(path, "c")
    auto = Network(net.model).backend
    size = 1
    for d in net.model.input_shape:
        size *= d
    with open(path + ".inputs", "rb") as f:
        data = f.read()
    for i in range(int(n)):
        logits = net.run(memoryview(data)[i * size:(i + 1) * size])
        print(net.backend, auto, " ".join(str(v) for v in logits))
"""

N_DAY_FRAMES = 500


@pytest.fixture(scope="module")
def day_tensors(door_model) -> tuple[Path, np.ndarray, np.ndarray]:
    """The door model's input tensors (the host's decode, `prepare_host`) of 500 JPEG frames of a simulated day the
    model never saw, every ~5 minutes plus 250 inside door events; and int8ref's logits for them."""
    from camlytics.edge.model import load_model
    from camlytics.edge.preprocess import prepare_host
    from camlytics.sim.camera import shared_scene

    scene = shared_scene("office", 7, 640, 360)
    events = scene.timeline.events[: (N_DAY_FRAMES // 2) // 2]
    times = [i * 86400.0 / (N_DAY_FRAMES // 2) + 7.0 for i in range(N_DAY_FRAMES // 2)]
    times += [e.start + f * (e.end - e.start) for e in events for f in (0.3, 0.7)]
    frames = [scene.frame(t) for t in times]
    assert len(frames) == N_DAY_FRAMES
    assert {f.meta["truth"]["state"] for f in frames} >= {"open", "closed"}
    model_file = door_model / "model.cml"
    model = load_model(str(model_file))
    x = np.stack([prepare_host(f.jpeg, model) for f in frames])  # Pillow's decode, as training sees them
    return model_file, x, int8ref.forward(int8ref.as_model(model_file), x)


def test_day_logits_are_not_degenerate(day_tensors):
    _, _, logits = day_tensors
    assert len({row.tobytes() for row in logits}) > 100
    assert set(logits.argmax(1).tolist()) == {0, 1}  # the model sees the door both closed and open


@pytest.fixture(scope="module")
def random_models() -> list[tuple[bytes, np.ndarray, np.ndarray]]:
    out = []
    for seed, arch in enumerate(["tiny", "rgb", "zp", "door", "whole"]):
        model = random_model(seed + 40, arch)
        data = model.to_bytes()
        x = random_inputs(model, 8, seed + 40)
        out.append((data, x, int8ref.forward(data, x)))
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_c_network_matches_int8ref_on_a_simulated_day(arch, day_tensors, random_models, firmware_argv, tmp_path):
    """The door model on 500 real frames and random models of every test architecture: 0 logits differ,
    and "auto" picks the C module in the firmware."""
    model_file, x, want = day_tensors
    specs, expected = [], []
    (tmp_path / "door.cml").write_bytes(model_file.read_bytes())
    (tmp_path / "door.cml.inputs").write_bytes(x.tobytes())
    specs.append(f"{tmp_path / 'door.cml'},{len(x)}")
    expected.append(want)
    for i, (data, xs, logits) in enumerate(random_models):
        path = tmp_path / f"random{i}.cml"
        path.write_bytes(data)
        (tmp_path / f"random{i}.cml.inputs").write_bytes(xs.tobytes())
        specs.append(f"{path},{len(xs)}")
        expected.append(logits)
    got = run_firmware(firmware_argv(arch), MPY_NETWORK, specs, tmp_path)
    want_lines = [f"c c {' '.join(str(v) for v in row.tolist())}" for rows in expected for row in rows]
    assert len(got) == len(want_lines) == N_DAY_FRAMES + sum(len(m[1]) for m in random_models)
    differ = sum(g != w for g, w in zip(got, want_lines))
    assert differ == 0, f"{differ} of {len(want_lines)} logit rows differ from int8ref (first {got[0]!r})"


MPY_HEAP = """
import gc, sys
from camlytics.edge.infer import Network
net = Network(sys.argv[1], "c")
x = bytes(range(256)) * 4
net.run(x)
gc.collect()
base = gc.mem_alloc()
for _ in range(500):
    net.run(x)
gc.collect()
print(base, gc.mem_alloc())
"""


def test_c_network_heap_is_stable(random_models, firmware_argv, tmp_path):
    """500 inferences with the C kernels leave MicroPython's heap as it was (x86_64)."""
    path = tmp_path / "door.cml"
    path.write_bytes(random_models[3][0])
    base, after = map(int, run_firmware(firmware_argv("x86_64"), MPY_HEAP, [str(path)], tmp_path)[0].split())
    assert after - base < 1_000


# --- bad parameter blocks ----------------------------------------------------------------------------

MPY_BAD = """
import array
import _camlytics
from camlytics.edge import ops
OH, OW, OC, KH, KW, C, ROW, SY, SX, YBASE, YROW, LO, HI, YZ = (
    ops.OH, ops.OW, ops.OC, ops.KH, ops.KW, ops.C, ops.ROW, ops.SY, ops.SX, ops.YBASE, ops.YROW, ops.LO, ops.HI, ops.YZ)
BIG = 2147483647

def block(n_rows, geometry):
    p = ops.params(n_rows)
    for i, v in geometry.items():
        p[i] = v
    for t in range(ops.TABLE, len(p), 4):
        p[t], p[t + 1], p[t + 2], p[t + 3] = 0, 1 << 16, 1 << 20, 21  # acc / 32
    return p

# a 3x3 convolution 5x5x3 -> 3x3x4, a 3x3 depthwise 5x5x3 -> 3x3x3 and a gap over 5x5x3: all valid
conv_geo = {OH: 3, OW: 3, OC: 4, KH: 3, KW: 3, C: 3, ROW: 15, SY: 15, SX: 3, YBASE: 0, YROW: 12, LO: 0, HI: 255, YZ: 0}
dw_geo = dict(conv_geo)
dw_geo[OC] = 3
dw_geo[YROW] = 9
gap_geo = {KH: 5, KW: 5, C: 3, YBASE: 0, LO: 0, HI: 255, YZ: 0}
x75 = bytes(range(75))
valid = {  # kernel, x, w, output bytes, rows, geometry
    "conv2d": (_camlytics.conv2d, x75, array.array("h", ([1] * 27 + [0] * 5) * 4), 36, 4, conv_geo),  # [OC][32]
    "depthwise": (_camlytics.depthwise, x75, array.array("h", [1] * 27), 27, 3, dw_geo),
    "gap": (_camlytics.gap, x75, None, 3, 1, gap_geo),
}

def call(kind, x, w, y, p):
    kernel = valid[kind][0]
    if w is None:
        kernel(x, y, p)
    else:
        kernel(x, w, y, p)

def try_bad(kind, what, x=None, w=None, y_len=None, p=None, edit=None):
    kernel, x0, w0, n_out, n_rows, g = valid[kind]
    if p is None:
        p = block(n_rows, g)
    if edit:
        for i, v in edit.items():
            p[i] = v
    y = bytearray(b"\\x5a" * (n_out if y_len is None else y_len))
    before = bytes(y)
    try:
        call(kind, x0 if x is None else x, w0 if w is None else w, y, p)
    except ValueError:
        print("refused", kind, what, "untouched" if bytes(y) == before else "WRITTEN")
        return
    print("accepted", kind, what)

for kind in ("conv2d", "depthwise", "gap"):  # (a MicroPython dict keeps no order)
    kernel, x0, w0, n_out, n_rows, g = valid[kind]
    y = bytearray(n_out)
    call(kind, x0, w0, y, block(n_rows, g))
    print("valid", kind, len(set(y)) > 1)
    try_bad(kind, "p is a bytearray", p=bytearray(4 * (20 + 4 * n_rows)))
    try_bad(kind, "p is array('h')", p=array.array("h", [0] * (2 * (20 + 4 * n_rows))))
    try_bad(kind, "p holds no table", p=array.array("i", list(block(n_rows, g))[:20]))
    try_bad(kind, "p lacks the last row", p=array.array("i", list(block(n_rows, g))[:-1]))
    try_bad(kind, "p shorter than the geometry", p=array.array("i", [1] * 19))
    try_bad(kind, "x one byte short", x=x0[:-1])
    try_bad(kind, "y one byte short", y_len=n_out - 1)
    try_bad(kind, "negative shift", edit={20 + 4 * (n_rows - 1) + 3: -1})
    try_bad(kind, "LO < 0", edit={LO: -1})
    try_bad(kind, "HI > 255", edit={HI: 256})
    try_bad(kind, "LO > HI", edit={LO: 9, HI: 8})
    try_bad(kind, "C = 0", edit={C: 0})
    try_bad(kind, "KH = 0", edit={KH: 0})
    try_bad(kind, "KW < 0", edit={KW: -3})
    try_bad(kind, "C huge", edit={C: BIG})
    try_bad(kind, "KH huge", edit={KH: BIG})
    try_bad(kind, "YBASE < 0", edit={YBASE: -1})
    try_bad(kind, "YBASE past y", edit={YBASE: n_out})
    try_bad(kind, "YBASE huge", edit={YBASE: BIG})
    if kind != "gap":
        try_bad(kind, "OH = 0", edit={OH: 0})
        try_bad(kind, "OW < 0", edit={OW: -1})
        try_bad(kind, "OH huge", edit={OH: BIG})
        try_bad(kind, "OW huge", edit={OW: BIG})
        try_bad(kind, "ROW < 0", edit={ROW: -15})
        try_bad(kind, "SY < 0", edit={SY: -1})
        try_bad(kind, "SX huge", edit={SX: BIG})
        try_bad(kind, "ROW huge", edit={ROW: BIG})
        try_bad(kind, "YROW < 0", edit={YROW: -1})
        try_bad(kind, "YROW huge", edit={YROW: BIG})
        try_bad(kind, "KW and C huge", edit={KW: BIG, C: BIG})
        try_bad(kind, "w one weight short", w=array.array("h", list(w0)[:-1]))
        try_bad(kind, "w raw int8 bytes", w=bytes(len(w0)))
        try_bad(kind, "w array('i')", w=array.array("i", list(w0)))
    if kind == "conv2d":
        try_bad(kind, "OC = 0", edit={OC: 0})
        try_bad(kind, "OC one more than the rows", edit={OC: 5})
        try_bad(kind, "OC huge", edit={OC: BIG})
        try_bad(kind, "w for another window", edit={KH: 1, KW: 1, C: 16})
    if kind == "depthwise":
        try_bad(kind, "C one more than the rows", edit={C: 4})
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_bad_parameter_blocks_raise_value_error(arch, firmware_argv, tmp_path):
    """Each broken parameter block, buffer or weight array is refused before anything is written (the
    32-bit armv7hf firmware included, where sizes overflow first)."""
    out = run_firmware(firmware_argv(arch), MPY_BAD, [], tmp_path, timeout=120)
    valid = [line for line in out if line.startswith("valid")]
    assert valid == [f"valid {kind} True" for kind in ("conv2d", "depthwise", "gap")]
    refused = [line for line in out if not line.startswith("valid")]
    assert len(refused) > 80
    wrong = [line for line in refused if not (line.startswith("refused") and line.endswith("untouched"))]
    assert not wrong, wrong


# --- the backend on the host -------------------------------------------------------------------------

@pytest.fixture
def fake_cmodule(monkeypatch):
    """Import `camlytics.edge.ops_c` against a stand-in `_camlytics` of a given VERSION (CPython)."""
    def load(version):
        fake = types.ModuleType("_camlytics")
        fake.VERSION = version
        fake.conv2d = fake.depthwise = fake.gap = None
        monkeypatch.setitem(sys.modules, "_camlytics", fake)
        sys.modules.pop("camlytics.edge.ops_c", None)
        return importlib.import_module("camlytics.edge.ops_c")

    yield load
    sys.modules.pop("camlytics.edge.ops_c", None)


def test_ops_c_refuses_another_module_version(fake_cmodule):
    with pytest.raises(ImportError, match=r"camlytics C module version 2, this edge package needs 1: rebuild"):
        fake_cmodule(2)


def test_ops_c_weight_layouts(fake_cmodule):
    """prepare_weights: depthwise [KH*KW][C]; conv2d/dense [OC][KP], each row zero-padded to a multiple of 8."""
    ops_c = fake_cmodule(1)
    rng = np.random.default_rng(5)

    def layer(shape, depthwise=False):
        w = rng.integers(-128, 128, size=shape).astype(np.int8)
        w.reshape(shape[0], -1)[0, 0] = -128  # both ends of int8
        w.reshape(shape[0], -1)[-1, -1] = 127
        fake = types.SimpleNamespace(weights=w.tobytes(), out_shape=(1, 1, shape[0]), depthwise=depthwise)
        return fake, w.reshape(shape[0], -1).astype(np.int16)

    fake, w = layer((5, 3, 3, 1), depthwise=True)
    assert list(ops_c.prepare_weights(fake)) == w.T.ravel().tolist()
    for k, kp in ((1, 8), (9, 16), (16, 16), (17, 24), (27, 32), (64, 64)):
        fake, w = layer((6, k))
        out = np.array(ops_c.prepare_weights(fake), np.int16).reshape(6, kp)
        np.testing.assert_array_equal(out[:, :k], w)
        assert not out[:, k:].any()
    assert ops_c.prepare_weights(fake).typecode == "h"


def test_backend_c_needs_micropython():
    with pytest.raises(ValueError, match="backend 'c' needs MicroPython with the camlytics C module"):
        backend_module("c")
    assert backend_module("auto")[0] == "numpy"


def test_plain_micropython_refuses_backend_c_and_picks_viper():
    """Without the C module (the PyPI MicroPython), "c" is refused by name and "auto" is viper."""
    from tests.edge.conftest import run_micropython

    out = run_micropython(
        "from camlytics.edge.infer import backend_module\n"
        "try:\n    backend_module('c')\nexcept ValueError as exc:\n    print(exc)\n"
        "print(backend_module()[0])\n"
    ).splitlines()
    assert out == ["backend 'c' is not available here: no camlytics C module here (_camlytics): it is built into a "
                   "camlytics firmware", "viper"]


def test_ops_c_imports_only_what_micropython_has():
    import ast

    import camlytics.edge

    tree = ast.parse(Path(camlytics.edge.__file__).with_name("ops_c.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"array", "_camlytics", "camlytics.edge.ops"}
