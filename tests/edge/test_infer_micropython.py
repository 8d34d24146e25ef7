"""Whole int8 networks on the edge runtime give the host reference's logits bit for bit.

Random valid models of every test architecture (`camlytics.export.testmodels`) run in CPython
(numpy and plain kernels) and inside the real MicroPython (viper and plain kernels); the runtime
keeps a small, constant heap there.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

from camlytics.edge.infer import Network, argmax, backend_module
from camlytics.edge.model import load_model
from camlytics.export.testmodels import random_inputs, random_model
from camlytics.model import int8ref

ARCHS = ["tiny", "rgb", "zp", "door", "whole", "linear", "linear-rgb"]


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[bytes, np.ndarray, np.ndarray]]:
    """arch -> (model file bytes, 6 inputs, int8ref logits)."""
    out = {}
    for seed, arch in enumerate(ARCHS):
        model = random_model(seed + 10, arch)
        data = model.to_bytes()
        x = random_inputs(model, 6, seed)
        out[arch] = (data, x, int8ref.forward(data, x))
    return out


def test_reference_logits_are_not_degenerate(models):
    """The random models separate inputs: logits differ between inputs and classes."""
    for arch, (_, _, logits) in models.items():
        assert len({row.tobytes() for row in logits}) > 2, arch
        assert len(set(logits.ravel().tolist())) > 3, arch


@pytest.mark.parametrize("backend", ["numpy", "pure"])
@pytest.mark.parametrize("arch", ARCHS)
def test_cpython_network_matches_int8ref(models, arch, backend):
    data, xs, expected = models[arch]
    net = Network(data, backend=backend)
    assert net.backend == backend
    for x, want in zip(xs, expected):
        assert list(net.run(x.tobytes())) == want.tolist()
        index, scores = net.predict(x)  # numpy arrays are accepted too
        assert index == int(np.argmax(want))
        assert scores == pytest.approx(int8ref.scores(data, want).tolist())


MPY_RUN = """
import sys
from camlytics.edge.infer import Network
path, backend, n_inputs = sys.argv[1], sys.argv[2], int(sys.argv[3])
net = Network(path, backend)
size = 1
for d in net.model.input_shape:
    size *= d
with open(path + ".inputs", "rb") as f:
    data = f.read()
for i in range(n_inputs):
    x = data[i * size:(i + 1) * size]
    logits = net.run(x)
    index, scores = net.predict(x)
    print(backend, net.backend, " ".join(str(v) for v in logits), index, round(sum(scores), 6))
"""


@pytest.mark.parametrize(
    "backend,arch,n_inputs",
    [("c", arch, 6) for arch in ARCHS] + [("viper", arch, 6) for arch in ARCHS]
    + [("pure", "tiny", 3), ("pure", "zp", 3), ("pure", "door", 2), ("pure", "whole", 2)],
)
def test_micropython_network_matches_int8ref(models, micropython, tmp_path, backend, arch, n_inputs):
    data, xs, expected = models[arch]
    path = tmp_path / "model.cml"
    path.write_bytes(data)
    (tmp_path / "model.cml.inputs").write_bytes(xs.tobytes())
    if backend not in micropython.backends:  # refused by name, with the reason
        out = micropython(f"from camlytics.edge.infer import Network\ntry:\n    Network({str(path)!r}, {backend!r})\n"
                          "except ValueError as exc:\n    print(exc)")
        assert f"backend '{backend}'" in out and ("not available" in out or "needs" in out), out
        if backend == "viper":
            assert "no native code emitter" in out, out
        return
    out = micropython(MPY_RUN, args=[str(path), backend, str(n_inputs)]).split("\n")
    want = [
        f"{backend} {backend} {' '.join(str(v) for v in row.tolist())} {int(np.argmax(row))} 1.0"
        for row in expected[:n_inputs]
    ]
    assert [line for line in out if line] == want


def test_micropython_auto_backend_is_the_fastest_it_has(models, micropython, tmp_path):
    """The C module in the firmware, viper in the PyPI build."""
    path = tmp_path / "model.cml"
    path.write_bytes(models["tiny"][0])
    out = micropython(
        "import sys\nfrom camlytics.edge.infer import Network\nprint(Network(sys.argv[1]).backend)", args=[str(path)]
    )
    assert out.strip() == micropython.auto


MPY_HEAP = """
import gc, sys
from camlytics.edge.infer import Network
net = Network(sys.argv[1])
x = bytes(range(256)) * 4
net.run(x)
gc.collect()
base = gc.mem_alloc()
gc.disable()
before = gc.mem_alloc()
net.predict(x)
net.run(x)
during = gc.mem_alloc() - before   # bytes allocated by one predict + one run, nothing collected
gc.enable()
for _ in range(1000):
    net.run(x)
gc.collect()
print(base, during, gc.mem_alloc())
"""


def test_micropython_inference_heap_is_small_and_stable(models, micropython, tmp_path):
    """The door-sized model loads and runs in a 256 KiB heap; 1000 runs leave the heap as it was."""
    path = tmp_path / "model.cml"
    path.write_bytes(models["door"][0])
    assert models["door"][1].shape[1:] == (32, 32, 1)
    base, during, after = map(int, micropython(MPY_HEAP, args=[str(path)], heapsize="256k").split())
    assert base < 200_000
    assert during < 4_000  # row memoryviews for the padded input copy, the scores list and floats
    assert after - base < 1_000  # a leak of even one small object per run would show 16 KB


def test_argmax_takes_the_first_largest():
    assert argmax([3, 7, 7, -1]) == 1
    assert argmax([-128, -128]) == 0
    assert argmax([5]) == 0


def test_network_rejects_input_of_wrong_size(models):
    net = Network(models["tiny"][0], backend="pure")
    with pytest.raises(ValueError, match="input must be 256 bytes"):
        net.run(bytes(255))


def test_backend_names_are_validated(models):
    with pytest.raises(ValueError, match="backend must be one of"):
        backend_module("gpu")
    with pytest.raises(ValueError, match="needs MicroPython"):
        Network(models["tiny"][0], backend="viper")
    assert backend_module("auto")[0] == "numpy"


def test_network_accepts_a_loaded_model_or_a_path(models, tmp_path):
    data, xs, expected = models["rgb"]
    (tmp_path / "model.cml").write_bytes(data)
    for source in (load_model(data), tmp_path / "model.cml", str(tmp_path)):
        assert list(Network(source).run(xs[0])) == expected[0].tolist()


MICROPYTHON_MODULES = {"sys", "time", "struct", "array", "socket", "hashlib", "binascii", "json", "gc", "os",
                       "errno", "select", "micropython"}


@pytest.mark.parametrize("module,extra", [
    ("__init__", set()), ("model", set()), ("ops", set()), ("infer", set()),
    ("ops_viper", {"micropython"}), ("ops_numpy", {"numpy", "numpy.lib.stride_tricks"}),
])
def test_runtime_modules_import_only_what_micropython_has(module, extra):
    """The camera runs these files as they are: only MicroPython's modules and the edge package itself."""
    import camlytics.edge

    path = pathlib.Path(camlytics.edge.__file__).with_name(f"{module}.py")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    outside = {name for name in imported if not name.startswith("camlytics.edge")} - MICROPYTHON_MODULES - extra
    assert not outside, f"{module}.py imports {outside}"
    if module != "ops_viper":
        assert "micropython" not in imported  # only guarded or MicroPython-only modules may use it
