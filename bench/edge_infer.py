"""Edge int8 inference speed: MicroPython (viper, plain) and CPython (numpy, plain), same model and input.

    .venv/bin/python bench/edge_infer.py [--repeat-ms 2000] [--layers]

Prints ms per inference (best and median single run: a busy machine only slows runs down), achieved M MAC/s and MicroPython heap use for random valid models of the
door student's shape (32x32 grey, ~0.17 M MACs) and a 48x48 variant (~0.4 M MACs), after checking
that every backend gives int8ref's logits. Issue goal: MicroPython viper >= 100 M MAC/s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from camlytics.edge.infer import Network
from camlytics.export import testmodels
from camlytics.model import int8ref

ROOT = pathlib.Path(__file__).resolve().parents[1]
MICROPYTHON = pathlib.Path(sys.executable).parent / "micropython"

# The door student's layout at 48x48: about 0.4 M MACs, the upper end of what we deploy.
BENCH_ARCHS = {
    "door": testmodels.ARCHS["door"],
    "door48": {**testmodels.ARCHS["door"], "input": (48, 48, 1)},
}

MPY_SCRIPT = """
import gc, sys, time
from camlytics.edge.infer import Network
path, backend, budget_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
gc.collect()
heap0 = gc.mem_alloc()
net = Network(path, backend)
with open(path + ".input", "rb") as f:
    x = f.read()
logits = net.run(x)
gc.collect()
heap_net = gc.mem_alloc() - heap0
# Every run timed on its own: on a busy machine a run the scheduler interrupted is only slower,
# so the best run is the kernels' speed and the median shows what the load left.
times, start = [], time.ticks_us()
while time.ticks_diff(time.ticks_us(), start) < budget_ms * 1000 or len(times) < 5:
    t0 = time.ticks_us()
    net.run(x)
    times.append(time.ticks_diff(time.ticks_us(), t0))
times.sort()
us = "%d/%d" % (times[0], times[len(times) // 2])
print(" ".join(str(v) for v in logits), us, heap_net)
if len(sys.argv) > 4:  # per-layer times, best of 20 batches
    for step, layer in zip(net._steps, net.model.layers):
        best = None
        for _ in range(20):
            t0 = time.ticks_us()
            for _ in range(10):
                step.run()
            batch = time.ticks_diff(time.ticks_us(), t0) / 10
            best = batch if best is None or batch < best else best
        kind = "depthwise" if layer.depthwise else layer.op
        print("#", kind, layer.in_shape, layer.out_shape, layer.kernel, layer.stride, layer.macs(), best)
"""


def time_cpython(net: Network, x: bytes, budget_ms: int) -> tuple[float, float]:
    """(best, median) microseconds of single `net.run(x)` calls timed for `budget_ms` (at least 5)."""
    net.run(x)
    times, start = [], time.perf_counter()
    while (time.perf_counter() - start) * 1000 < budget_ms or len(times) < 5:
        t0 = time.perf_counter()
        net.run(x)
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return times[0], times[len(times) // 2]


def time_micropython(
    path: pathlib.Path, backend: str, budget_ms: int, layers: bool = False
) -> tuple[list[int], tuple[float, float], int]:
    """(logits, (best, median) microseconds per run, heap bytes held by the Network) inside MicroPython."""
    env = dict(os.environ, MICROPYPATH=f".frozen:{ROOT / 'src'}")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(MPY_SCRIPT)
    try:
        out = subprocess.run(
            [str(MICROPYTHON), f.name, str(path), backend, str(budget_ms)] + (["layers"] if layers else []),
            env=env, capture_output=True, text=True, timeout=600, check=True,
        ).stdout.splitlines()
    finally:
        os.unlink(f.name)
    for line in out[1:]:
        *desc, macs, us = line[2:].rsplit(" ", 2)
        print(f"    {' '.join(desc):58} {int(macs):8d} MACs {float(us) / 1000:7.3f} ms {int(macs) / float(us):7.1f} M MAC/s")
    first = out[0].split()
    best, median = (float(v) for v in first[-2].split("/"))
    return [int(v) for v in first[:-2]], (best, median), int(first[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat-ms", type=int, default=2000, help="time spent timing each backend (ms)")
    parser.add_argument("--layers", action="store_true", help="also print per-layer MicroPython viper times")
    args = parser.parse_args()
    print(f"{'model':8} {'MACs':>8} {'file':>7}  {'runtime':20} {'best ms':>8} {'median':>8} {'M MAC/s':>8}"
          f" {'heap KiB':>9}  bit-exact")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, spec in BENCH_ARCHS.items():
            testmodels.ARCHS.setdefault(arch, spec)  # random_model() looks architectures up by name
            model = testmodels.random_model(0, arch)
            data = model.to_bytes()
            path = pathlib.Path(tmp) / f"{arch}.cml"
            path.write_bytes(data)
            x = testmodels.random_inputs(model, 4, 0)[3]
            (pathlib.Path(tmp) / f"{arch}.cml.input").write_bytes(x.tobytes())
            want = int8ref.forward(data, x).tolist()
            macs = model.meta["macs"]
            rows = []
            for backend in ("viper", "pure"):
                budget = args.repeat_ms if backend == "viper" else max(args.repeat_ms // 4, 1)
                logits, us, heap = time_micropython(path, backend, budget, args.layers and backend == "viper")
                rows.append((f"MicroPython {backend}", us, heap, logits == want))
            for backend in ("numpy", "pure"):
                net = Network(data, backend)
                us = time_cpython(net, x.tobytes(), args.repeat_ms if backend == "numpy" else args.repeat_ms // 4)
                rows.append((f"CPython {backend}", us, None, list(net.run(x.tobytes())) == want))
            for name, (best, median), heap, exact in rows:
                heap_s = f"{heap / 1024:9.1f}" if heap is not None else f"{'-':>9}"
                print(f"{arch:8} {macs:8d} {len(data):7d}  {name:20} {best / 1000:8.3f} {median / 1000:8.3f}"
                      f" {macs / best:8.1f} {heap_s}  {exact}")
    return 0


if __name__ == "__main__":
    np.seterr(all="raise")
    sys.exit(main())
