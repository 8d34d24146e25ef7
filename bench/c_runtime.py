"""Benchmark: generated C runtime vs onnxruntime (1 thread) vs the numpy reference, per inference.

Students of the shipped family (camlytics.train.models) at several MAC budgets are quantized; the
float student goes to ONNX, the int8 model to C. Times are medians of several repeats, measured
interleaved (the machine may be shared); instruction counts come from callgrind.
Usage: .venv/bin/python bench/c_runtime.py [--quick]

Runs on any x86-64 machine: the `-march=native` build is only timed natively. valgrind cannot run every
CPU's native code (valgrind 3.19 dies with SIGILL on AVX-512), so its instruction count comes from the
native build only when valgrind runs it; otherwise from an `-march=x86-64-v3` (AVX2) build when this CPU
has AVX2, else it is reported as n/a. The row's label says which build was counted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from camlytics.export import c_codegen, testmodels
from camlytics.model import int8ref
from camlytics.model.onnx_export import INPUT_NAME, export_onnx, onnx_session
from camlytics.train.models import StudentSpec, build_student, count_macs, size_student
from camlytics.train.quantize import quantize


def make_student(input_hw: tuple[int, int], channels: int, budget_macs: int) -> torch.nn.Sequential:
    """A student of the shipped family at `budget_macs`, with non-trivial BN statistics."""
    spec, _ = size_student(StudentSpec(input_hw=input_hw, in_channels=channels), budget_macs, 32 * 1024)
    torch.manual_seed(0)
    model = build_student(spec)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.bias.data.uniform_(-0.1, 0.3)
    return model.eval()


def median_time(fn, n: int, repeats: int = 7) -> float:
    """Median over `repeats` of the mean seconds per call of `fn` over `n` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def exe_time(exe: Path, pgm: Path, n: int, repeats: int = 5) -> float:
    """Median seconds per inference reported by the example program's --bench loop."""
    out = []
    for _ in range(repeats):
        text = subprocess.run([str(exe), "--bench", str(n), str(pgm)], capture_output=True, text=True, check=True).stdout
        out.append(float(re.search(r"time per inference: ([\d.]+) us", text).group(1)) * 1e-6)
    return float(np.median(out))


def callgrind_instructions(exe: Path, pgm: Path, n: int = 50) -> float | None:
    """Instructions per inference: callgrind's total for n+1 inferences minus that for 1; None when
    valgrind is missing or cannot run `exe` (e.g. SIGILL on instructions it does not know: AVX-512)."""
    if not shutil.which("valgrind"):
        return None
    totals = []
    for runs in (0, n):
        with tempfile.NamedTemporaryFile(suffix=".out") as log:
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={log.name}", str(exe),
                                   "--bench", str(runs), str(pgm)], capture_output=True, text=True)
            found = re.search(r"Collected : (\d+)", proc.stderr)
            if proc.returncode != 0 or not found:
                return None
            totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / n


def cpu_flags() -> set[str]:
    """This CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    found = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(found.group(1).split()) if found else set()


def native_instructions(src: Path, exe_native: Path, pgm: Path) -> tuple[float | None, str]:
    """(instructions per inference, label) of the best build valgrind can run on this CPU: the native one,
    else -march=x86-64-v3 (AVX2, which valgrind knows) when the CPU has AVX2."""
    count = callgrind_instructions(exe_native, pgm)
    if count is not None:
        return count, "-O3 -march=native"
    if {"avx2", "fma", "bmi2"} <= cpu_flags():
        exe_v3 = c_codegen.build_executable(src, src / "predict_v3", cflags=("-O3", "-march=x86-64-v3"))
        count = callgrind_instructions(exe_v3, pgm)
        if count is not None:
            return count, "-O3 -march=x86-64-v3 (valgrind cannot run this CPU's -march=native code)"
    return None, "-O3 -march=native (valgrind cannot run it here: n/a)"


def write_pnm(path: Path, image: np.ndarray) -> Path:
    h, w, c = image.shape
    path.write_bytes(f"P{5 if c == 1 else 6}\n{w} {h}\n255\n".encode() + image.tobytes())
    return path


def bench_one(name: str, input_hw: tuple[int, int], channels: int, budget: int, work: Path, n: int) -> dict:
    model = make_student(input_hw, channels, budget)
    h, w = input_hw
    rng = np.random.default_rng(0)
    calib = testmodels.random_images((h, w, channels), 64, rng)
    qm = quantize(model, calib, classes=["closed", "open"])
    onnx_path = export_onnx(model, work / f"{name}.onnx", (channels, h, w))
    src = work / name
    c_codegen.generate(qm.int8, src)
    exe = c_codegen.build_executable(src, src / "predict_O3", cflags=("-O3",))
    exe_native = c_codegen.build_executable(src, src / "predict_native", cflags=("-O3", "-march=native"))
    runtime = c_codegen.CRuntime(qm.int8, build_dir=src / "lib")
    image = calib[0]
    pgm = write_pnm(work / f"{name}.pnm", image)
    assert np.array_equal(runtime.forward(calib), qm.forward(calib)), "C runtime differs from the reference"

    session = onnx_session(onnx_path, threads=1)
    feed = {INPUT_NAME: (image.transpose(2, 0, 1)[None].astype(np.float32) / 255)}
    single = np.ascontiguousarray(image)
    rows = {
        "onnxruntime (1 thread, float)": lambda: median_time(lambda: session.run(None, feed), n),
        "C -O3 (x86-64 baseline SSE2), binary loop": lambda: exe_time(exe, pgm, n * 4),
        "C -O3 -march=native, binary loop": lambda: exe_time(exe_native, pgm, n * 4),
        "C -O3 -march=native via ctypes (CRuntime.forward)": lambda: median_time(lambda: runtime.forward(single), n),
        "numpy int8 reference": lambda: median_time(lambda: int8ref.forward(qm.int8, single), max(10, n // 20)),
    }
    results: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(3):  # interleave the runtimes so that load from other processes hits all alike
        for label, fn in rows.items():
            results[label].append(fn())
    times = {label: float(np.min(v)) for label, v in results.items()}
    native_count, native_label = native_instructions(src, exe_native, pgm)
    return {"name": name, "macs": count_macs(model, (channels, h, w)), "times": times,
            "instructions": callgrind_instructions(exe, pgm), "instructions_native": native_count,
            "native_label": native_label, "weights": sum(x.size for x in qm.int8.weights if x is not None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = 200 if args.quick else 1000
    configs = [("grey32-0.5M", (32, 32), 1, 500_000), ("grey32-0.1M", (32, 32), 1, 100_000),
               ("rgb48x32-0.5M", (32, 48), 3, 500_000)]
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_one(*cfg, Path(tmp), n) for cfg in configs]
    print("\n## C runtime vs onnxruntime (median time per inference, one image)\n")
    labels = list(results[0]["times"])
    print("| runtime | " + " | ".join(f"{r['name']} ({r['macs'] / 1e3:.0f} k MACs)" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for label in labels:
        cells = []
        for r in results:
            t = r["times"][label]
            ratio = t / r["times"]["onnxruntime (1 thread, float)"]
            cells.append(f"{t * 1e6:.1f} us ({ratio:.2f}x ORT)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    native_labels = sorted({r["native_label"] for r in results})
    for key, label in (("instructions", "-O3"), ("instructions_native", " / ".join(native_labels))):
        print(f"| C instructions per inference (callgrind, {label}) | "
              + " | ".join("n/a" if r[key] is None else f"{r[key] / 1e3:.0f} k ({r[key] / r['macs']:.2f}/MAC)"
                           for r in results) + " |")
    worst = max(r["times"]["C -O3 -march=native, binary loop"] / r["times"]["onnxruntime (1 thread, float)"] for r in results)
    print(f"\nGoal: C runtime <= 1.5x onnxruntime time: worst ratio {worst:.2f}x -> {'met' if worst <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
