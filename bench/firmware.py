"""Firmware benchmark: the camlytics MicroPython firmware per architecture, C module vs viper vs pure
Python vs the generated C runtime, on the same model and the same simulated camera frames.

    .venv/bin/python bench/firmware.py [--frames 12] [--budget-s 3] [--arch x86_64,armv7hf,aarch64] [--json OUT]

For each architecture (x86_64 natively, armv7hf and aarch64 under qemu-user) it builds or takes the
cached static firmware (`camlytics.firmware.build`, source from $CAMLYTICS_MICROPYTHON_SRC or the
vendored archive) and runs the edge app's per-frame path inside it, one interpreter process per
configuration timing every frame:
- decode: `jpeg.decode_luma_region` at the model's scale (only the blocks under the ROI);
- preprocess: crop + integer area resize to the model input (`preprocess.area_resize`);
- inference: `Network.run` (the int8 layers);
- whole frame: decode -> preprocess -> `Network.predict` -> `StateTracker.update` (what `app.step`
  does between fetching the snapshot and publishing);
with the kernels of the C module (`_camlytics`: jpeg.KERNELS = "c", backend "c"; the frozen package),
viper (the repository's source, whose kernels MicroPython compiles to machine code; armv7hf and x86_64
only: aarch64 has no native emitter) and pure Python (the frozen, viper-stripped package, KERNELS =
"pure", backend "pure"). The generated C runtime of the same model (`camlytics export --target c`) is
compiled with `-O2 -static` plus the flags the firmware gives the C module's kernels on that architecture
(NEON on armv7hf where the firmware enables it) by the cross gcc, and timed by a small harness on the
same input tensors. Every configuration's logits are checked against `int8ref` (numpy) first, and each
firmware tensor against `prepare()` and Pillow (`prepare_host`).

The model: a student of the shipped family at the default input (64x32 grey) and the default MAC and
weight budgets, ROI = the simulated door, fitted to the benchmark frames for a few seconds (it only has
to look trained: real weight and activation ranges, varied logits) and quantized with `train.quantize`.
Frames: the simulated office camera, 640x360 JPEGs (quality 85) from 05:00 to 21:00, the door at
angles from shut to wide open.

Timing: each frame is timed on its own; a configuration passes over all frames at least once, then
again until `--budget-s` is spent; per frame the best pass counts (a busy machine only slows runs
down), and the table gives the mean over frames of those bests. Times under qemu-user are emulated:
only the ratios inside one architecture mean much. Binary sizes are of the stripped static binaries.
Nothing here asserts a timing: the goals are printed as met / NOT met.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT.parent / "shared" / "vendor" / "micropython-1.28.0-with-mbedtls-3.6.2.tar.xz"
ARCHES = ("x86_64", "armv7hf", "aarch64")
CROSS_CC = {"x86_64": "gcc", "armv7hf": "arm-linux-gnueabihf-gcc", "aarch64": "aarch64-linux-gnu-gcc"}
SIZE_GOAL = 1_500_000  # bytes (1.5 MB)

# One interpreter process per configuration: argv = script frames.bin model.cml kernels backend budget_ms
MPY_SCRIPT = r"""
import binascii, gc, hashlib, json, struct, sys, time
from camlytics.edge import jpeg, preprocess
from camlytics.edge.infer import Network
from camlytics.edge.model import load_model
from camlytics.edge.tracker import StateTracker

frames_path, model_path, kernels, backend, budget_ms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
with open(frames_path, "rb") as f:
    blob = f.read()
frames, pos = [], 0
while pos < len(blob):
    n = struct.unpack_from("<I", blob, pos)[0]
    frames.append(blob[pos + 4:pos + 4 + n])
    pos += 4 + n
blob = None
jpeg.KERNELS = kernels  # which decode/resize kernels run: "c", "viper" or "pure"
model = load_model(model_path)
net = Network(model, backend)
assert net.backend == backend, (net.backend, backend)
w, h, _ = jpeg.info(frames[0])
plan = preprocess.make_plan(model, w, h)
tracker = StateTracker(model.classes)
ticks_us, diff = time.ticks_us, time.ticks_diff


def stages(data):
    # the path of preprocess.prepare(), one stage at a time (checked against prepare() below)
    t0 = ticks_us()
    x, y, rw, rh, pixels = jpeg.decode_luma_region(data, plan.scale, plan.box)
    t1 = ticks_us()
    box = (plan.box[0] - x, plan.box[1] - y, plan.box[2] - x, plan.box[3] - y)
    tensor = preprocess.area_resize(pixels, rw, rh, plan.channels, box, plan.in_w, plan.in_h)
    t2 = ticks_us()
    net.run(tensor)
    t3 = ticks_us()
    return tensor, (diff(t1, t0), diff(t2, t1), diff(t3, t2))


def whole(data):
    # decode -> state, as app.step() does between fetching the snapshot and publishing
    t0 = ticks_us()
    tensor = preprocess.prepare(data, model)
    index, scores = net.predict(tensor)
    tracker.update(index, scores[index])
    return diff(ticks_us(), t0)


logits, digests, tensors_ok = [], [], True
for data in frames:
    tensor, _ = stages(data)
    tensors_ok = tensors_ok and bytes(tensor) == bytes(preprocess.prepare(data, model))
    digests.append(binascii.hexlify(hashlib.sha256(tensor).digest()).decode())
    logits.append(list(net.run(tensor)))
n = len(frames)
best = [[None] * n for _ in range(4)]  # decode, preprocess, inference, whole frame (us)
passes, start = 0, ticks_us()
while passes == 0 or diff(ticks_us(), start) < budget_ms * 1000:
    for i in range(n):
        _, t = stages(frames[i])
        t = t + (whole(frames[i]),)
        for k in range(4):
            if best[k][i] is None or t[k] < best[k][i]:
                best[k][i] = t[k]
    passes += 1
gc.collect()
print(json.dumps({"kernels": jpeg.KERNELS, "backend": net.backend, "logits": logits, "tensors_ok": tensors_ok,
                  "digests": digests,
                  "us": best, "passes": passes, "plan": [plan.scale, list(plan.box)]}))
"""

# Times the generated C runtime (camlytics_model.c) on consecutive uint8 input tensors: prints each
# tensor's logits, then the per-tensor best over passes (us), passing again until the budget is spent.
C_HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "camlytics_model.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s TENSORS.bin BUDGET_MS\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    long n = size / CML_INPUT_SIZE;
    uint8_t *x = malloc((size_t)size);
    double *best = malloc(sizeof(double) * (size_t)n);
    if (!x || !best || fread(x, 1, (size_t)size, f) != (size_t)size || n * CML_INPUT_SIZE != size) return 2;
    fclose(f);
    int8_t logits[CML_NUM_CLASSES];
    for (long i = 0; i < n; i++) {
        cml_predict(x + i * CML_INPUT_SIZE, logits);
        for (int k = 0; k < CML_NUM_CLASSES; k++) printf("%s%d", k ? " " : "", logits[k]);
        printf("\n");
        best[i] = 1e30;
    }
    double budget = atof(argv[2]) * 1e3, start = now_us();
    long passes = 0;
    volatile int sink = 0;
    do {
        for (long i = 0; i < n; i++) {
            double t0 = now_us();
            sink += cml_predict(x + i * CML_INPUT_SIZE, logits);
            double t = now_us() - t0;
            if (t < best[i]) best[i] = t;
        }
        passes++;
    } while (now_us() - start < budget);
    printf("us");
    for (long i = 0; i < n; i++) printf(" %.3f", best[i]);
    printf("\npasses %ld\n", passes);
    return 0;
}
"""

CONFIGS = (  # name, kernels, backend, MICROPYPATH (None: the frozen package), arches where it exists
    ("C module", "c", "c", ".frozen", ARCHES),
    ("viper", "viper", "viper", str(ROOT / "src"), ("x86_64", "armv7hf")),
    ("pure Python", "pure", "pure", ".frozen", ARCHES),
)
STAGES = ("decode", "preprocess", "inference", "whole frame")
RUNTIME = "generated C runtime"
DOOR_ANGLES = (0.0, 60.0, 5.0, 85.0, 20.0, 40.0)  # degrees; the simulator calls > 10 deg or so open
CLASSES = ["closed", "open"]


def micropython_source() -> str:
    from camlytics.firmware.build import SOURCE_ENV

    if os.environ.get(SOURCE_ENV):
        return os.environ[SOURCE_ENV]
    if VENDORED.is_file():
        return str(VENDORED)
    raise SystemExit(f"no MicroPython source: set ${SOURCE_ENV} or provide {VENDORED}")


def make_frames(n: int) -> tuple[list[bytes], list[str], tuple[int, int, int, int]]:
    """`n` simulated office frames (640x360 JPEG, quality 85) from 05:00 to 21:00 with the door at angles
    from shut to wide open (DOOR_ANGLES in turn), their door states and the door ROI."""
    from camlytics.sim.scene import Scene

    scene = Scene(preset="office", seed=0, width=640, height=360)
    times = np.linspace(5 * 3600, 21 * 3600, n)
    frames = [scene.frame(float(t), quality=85, door_angle=DOOR_ANGLES[i % len(DOOR_ANGLES)])
              for i, t in enumerate(times)]
    return [f.jpeg for f in frames], [f.meta["truth"]["state"] for f in frames], tuple(int(v) for v in scene.door_roi)


def make_model(frames: list[bytes], states: list[str], roi: tuple[int, int, int, int], work: Path):
    """A trained int8 model of the default architecture (the shipped student family at the default input and
    budgets), fitted to the frames for a few seconds, then quantized with activations calibrated on them:
    (Int8Model, its model.cml, the frames' input tensors, MACs per inference)."""
    import torch

    from camlytics.edge.preprocess import prepare_host
    from camlytics.model.modelfile import write_model
    from camlytics.model.student import to_tensor
    from camlytics.train.models import StudentSpec, build_student, count_macs, size_student
    from camlytics.train.data import input_for_roi
    from camlytics.train.pipeline import BUDGET_BYTES, BUDGET_MACS
    from camlytics.train.quantize import quantize

    in_w, in_h = input_for_roi(roi[2] - roi[0], roi[3] - roi[1])  # what `camlytics train` picks for this ROI
    preprocess = {"color": "gray", "roi": list(roi), "source_size": [640, 360], "resize": "area"}
    meta = {"input": {"width": in_w, "height": in_h, "channels": 1}, "preprocess": preprocess}
    spec, _ = size_student(StudentSpec(input_hw=(in_h, in_w), in_channels=1), BUDGET_MACS, BUDGET_BYTES)
    torch.manual_seed(0)
    student = build_student(spec)
    tensors = np.stack([prepare_host(f, meta) for f in frames])
    x, y = to_tensor(tensors), torch.tensor([CLASSES.index(s) for s in states])
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    student.train()
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(student(x), y)
        loss.backward()
        optimizer.step()
    student.eval()
    qm = quantize(student, tensors, classes=CLASSES, preprocess=preprocess)
    return qm.int8, write_model(qm.int8, work / "model.cml"), tensors, count_macs(student, (1, in_h, in_w))


def export_c(model_path: Path, work: Path) -> Path:
    """`camlytics export MODEL --target c --out DIR`: the generated C runtime's sources."""
    from camlytics.cli import main as cli

    out = work / "c-runtime"
    with contextlib.redirect_stdout(io.StringIO()) as said:  # its "wrote ..." lines
        rc = cli(["export", str(model_path), "--target", "c", "--out", str(out)])
    if rc != 0:
        raise SystemExit(f"camlytics export --target c failed:\n{said.getvalue()}")
    (out / "bench_main.c").write_text(C_HARNESS)
    return out


def run_checked(argv: list[str], **kw) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def c_runtime_flags(arch: str) -> list[str]:
    """-O2 plus the flags the firmware gives the C module's kernels on `arch` (e.g. NEON on armv7hf), so
    that both C codes are compiled alike."""
    from camlytics.firmware.build import ARCHES as BUILD_ARCHES

    return ["-O2", *getattr(BUILD_ARCHES[arch], "kernel_cflags", "").split()]


def bench_c_runtime(arch: str, src: Path, tensors: Path, budget_s: float, work: Path) -> dict:
    from camlytics.firmware.build import firmware_argv

    exe = work / f"c-runtime-{arch}"
    run_checked([CROSS_CC[arch], "-std=c99", *c_runtime_flags(arch), "-static", "-o", str(exe),
                 str(src / "bench_main.c"), str(src / "camlytics_model.c"), "-I", str(src), "-lm"])
    out = run_checked([*firmware_argv(arch, exe), str(tensors), str(int(budget_s * 1000))], timeout=600).splitlines()
    us = [float(v) for v in out[-2].split()[1:]]
    return {"logits": [[int(v) for v in line.split()] for line in out[:-2]], "us": us,
            "passes": int(out[-1].split()[1])}


def bench_firmware(arch: str, binary: Path, kernels: str, backend: str, path: str, frames_bin: Path,
                   model_path: Path, budget_s: float, work: Path) -> dict:
    from camlytics.firmware.build import firmware_argv

    script = work / "bench_frames.py"
    script.write_text(MPY_SCRIPT)
    env = {**os.environ, "MICROPYPATH": path}
    out = run_checked([*firmware_argv(arch, binary), str(script), str(frames_bin), str(model_path), kernels, backend,
                       str(int(budget_s * 1000))], env=env, cwd=work, timeout=900)
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="simulated frames (each timed on its own)")
    parser.add_argument("--budget-s", type=float, default=3.0,
                        help="seconds each configuration keeps timing after its first pass over the frames")
    parser.add_argument("--arch", default=",".join(ARCHES), help="comma-separated architectures")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    arches = [a.strip() for a in args.arch.split(",") if a.strip()]
    for a in arches:
        if a not in ARCHES:
            parser.error(f"unknown architecture {a!r} (choose from {', '.join(ARCHES)})")

    from camlytics.firmware.build import build_firmware
    from camlytics.model import int8ref

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-firmware-") as tmp:
        work = Path(tmp)
        frames, states, roi = make_frames(args.frames)
        int8, model_path, calib, macs = make_model(frames, states, roi, work)
        reference = int8ref.forward(int8, calib).astype(int).tolist()
        digests = [hashlib.sha256(x.tobytes()).hexdigest() for x in calib]  # Pillow's decode (prepare_host)
        frames_bin = work / "frames.bin"
        frames_bin.write_bytes(b"".join(struct.pack("<I", len(f)) + f for f in frames))
        tensors = work / "tensors.bin"
        tensors.write_bytes(calib.tobytes())
        c_src = export_c(model_path, work)
        print(f"model: default student {int8.input_shape[1]}x{int8.input_shape[0]} grey, {len(int8.layers)} layers, "
              f"~{macs / 1e3:.0f} k MACs; {len(frames)} frames of sim:office 640x360 q85 "
              f"({states.count('open')} open, {states.count('closed')} closed), door ROI {roi}")

        results: dict = {"frames": len(frames), "roi": roi, "macs": macs, "arches": {}}
        for arch in arches:
            t_arch = time.monotonic()
            fw = build_firmware(arch, micropython_source(), jobs=2)
            binary = fw.path
            entry = {"binary": str(binary), "size": binary.stat().st_size, "build_id": fw.info.get("build_id"),
                     "configs": {}}
            for name, kernels, backend, path, where in CONFIGS:
                if arch not in where:
                    continue
                r = bench_firmware(arch, binary, kernels, backend, path, frames_bin, model_path, args.budget_s, work)
                if r["kernels"] != kernels or r["backend"] != backend:
                    raise SystemExit(f"{arch} {name}: ran kernels {r['kernels']} / backend {r['backend']}")
                if not r["tensors_ok"]:
                    raise SystemExit(f"{arch} {name}: the stage-by-stage tensor differs from prepare()")
                if r["digests"] != digests:
                    raise SystemExit(f"{arch} {name}: input tensors differ from Pillow's (prepare_host)")
                if r["logits"] != reference:
                    raise SystemExit(f"{arch} {name}: logits differ from int8ref")
                ms = {stage: float(np.mean(r["us"][k])) / 1000 for k, stage in enumerate(STAGES)}
                entry["configs"][name] = {"ms": ms, "passes": r["passes"], "plan": r["plan"]}
            c = bench_c_runtime(arch, c_src, tensors, args.budget_s, work)
            if c["logits"] != reference:
                raise SystemExit(f"{arch} generated C runtime: logits differ from int8ref")
            entry["configs"][RUNTIME] = {"ms": {"inference": float(np.mean(c["us"])) / 1000}, "passes": c["passes"],
                                         "cflags": " ".join(c_runtime_flags(arch) + ["-static"])}
            entry["seconds"] = round(time.monotonic() - t_arch, 1)
            results["arches"][arch] = entry
            print(f"  {arch}: done in {entry['seconds']:.0f} s", flush=True)

    results["seconds"] = round(time.monotonic() - started, 1)

    print("\nall logits identical to int8ref (numpy) for every configuration; firmware tensors identical to Pillow's\n")
    print("| arch | configuration | decode ms | preprocess ms | inference ms | whole frame ms | inference / C module "
          "| whole frame / C module |")
    print("|---|---|---|---|---|---|---|---|")
    goals = []
    for arch, entry in results["arches"].items():
        base = entry["configs"]["C module"]["ms"]
        for name, cfg in entry["configs"].items():
            ms = cfg["ms"]
            cells = [f"{ms[s]:.2f}" if s in ms else "-" for s in STAGES]
            inf = f"{ms['inference'] / base['inference']:.2f}x"
            wh = f"{ms['whole frame'] / base['whole frame']:.1f}x" if "whole frame" in ms else "-"
            label = f"{name} ({cfg['cflags']})" if name == RUNTIME else name
            print(f"| {arch} | {label} | " + " | ".join(cells) + f" | {inf} | {wh} |")
        runtime = entry["configs"][RUNTIME]["ms"]["inference"]
        ratio = base["inference"] / runtime
        goals.append((f"{arch}: C module inference within 1.5x of the generated C runtime",
                      f"{base['inference']:.3f} / {runtime:.3f} ms = {ratio:.2f}x", ratio <= 1.5))
        if "viper" in entry["configs"]:
            speedup = entry["configs"]["viper"]["ms"]["inference"] / base["inference"]
            goals.append((f"{arch}: C module inference >= 3x faster than viper", f"{speedup:.1f}x", speedup >= 3))
        if arch == "aarch64":
            speedup = entry["configs"]["pure Python"]["ms"]["whole frame"] / base["whole frame"]
            goals.append(("aarch64: whole frame with the C module >= 20x faster than pure Python",
                          f"{speedup:.1f}x", speedup >= 20))
        goals.append((f"{arch}: stripped static binary <= 1.5 MB",
                      f"{entry['size']:,} bytes ({entry['size'] / 1e6:.2f} MB)", entry["size"] <= SIZE_GOAL))
    print("\n| goal | measured | |\n|---|---|---|")
    for what, measured, ok in goals:
        print(f"| {what} | {measured} | {'met' if ok else 'NOT met'} |")
    results["goals"] = [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals]
    print(f"\n{len(results['arches'])} architectures in {results['seconds']:.0f} s (times under qemu-user are emulated)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
