"""The edge app's per-frame cost, stage by stage, on every runtime, against a simulated Axis camera.

    .venv/bin/python bench/edge.py [--model MODEL_DIR] [--frames 60] [--slow-frames 8]

Each runtime runs the app's own frame path in its own process: fetch a 640x360 snapshot over HTTP
with Digest auth (`edge.http.Client`), decode the luma under the ROI (`edge.jpeg`), crop + area
resize (`edge.preprocess`), int8 inference (`edge.infer.Network`) -- for MicroPython with viper,
MicroPython without viper (the plain-Python kernels *and* a JPEG decoder/resizer with the viper
decorators turned off), CPython + numpy and CPython pure; plus Pillow + onnxruntime (float
`model.onnx`, one thread) on the same frames. Prints a markdown table (median ms per stage, ratios
to MicroPython viper, achieved MAC/s), checks every int8 runtime's logits against the host
reference `int8ref` on the same JPEGs, and measures MicroPython's heap: the run with viper uses
`-X heapsize=1M`, and the smallest heap that still runs the app's frame path is searched.

The camera serves a fixed cycle of pre-rendered frames, so "fetch" is the HTTP/auth/transfer cost
and not the simulator's rendering. Without --model a small door model is trained once (about a
minute or two) and cached under ~/.cache/camlytics/bench-edge/.
Issue goals: MicroPython viper inference >= 100 M MAC/s; snapshot -> model input <= 30 ms;
whole frame <= 50 ms; peak heap <= 1 MB.
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from camlytics.model import int8ref

ROOT = pathlib.Path(__file__).resolve().parents[1]
MICROPYTHON = pathlib.Path(sys.executable).parent / "micropython"
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "camlytics" / "bench-edge"
STAGES = ("fetch", "decode", "preprocess", "infer")
USER, PASSWORD = "root", "bench-pass"

# Runs under MicroPython and CPython alike: argv[1] = JSON settings. Prints one JSON line.
WORKER = r"""
import gc, json, sys, time
cfg = json.load(open(sys.argv[1]))
MPY = sys.implementation.name == "micropython"
if MPY:
    now, diff = time.ticks_us, time.ticks_diff
else:
    now, diff = (lambda: time.perf_counter_ns() // 1000), (lambda a, b: a - b)
import binascii
from camlytics.edge import http, jpeg, preprocess
from camlytics.edge.model import load_model
from camlytics.edge.infer import Network, argmax
np = None
if not MPY:
    jpeg.USE_NUMPY = cfg["numpy"]
    if cfg["numpy"] or cfg["engine"] == "onnx":
        import numpy as np
model = load_model(cfg["model"])
meta = model.meta
if cfg.get("roi"):  # another ROI for the same network (the input size is unchanged)
    meta["preprocess"]["roi"] = cfg["roi"]
in_h, in_w, ch = model.input_shape
if cfg["engine"] == "onnx":
    from camlytics.model.onnx_export import onnx_session
    session = onnx_session(cfg["onnx"], threads=1)
    name = session.get_inputs()[0].name
    def infer(x):
        t = np.frombuffer(x, np.uint8).reshape(1, in_h, in_w, ch).transpose(0, 3, 1, 2).astype(np.float32) / 255
        return [float(v) for v in session.run(None, {name: t})[0][0]]
else:
    net = Network(model, cfg["backend"])
    def infer(x):
        return list(net.run(x))
client = http.Client(cfg["user"], cfg["password"], timeout=10.0)
url = cfg["url"] + "/axis-cgi/jpg/image.cgi?resolution=640x360&compression=30"
plan = None
gc.collect()
static = gc.mem_alloc() if MPY else 0
peak = static
times, checks = [], []
for i in range(cfg["warmup"] + cfg["frames"]):
    if cfg["probe"]:
        gc.collect()
    t0 = now()
    data = client.get(url).body
    t1 = now()
    if plan is None:
        w, h, _ = jpeg.info(data)
        plan = preprocess.make_plan(meta, w, h)
    if cfg["engine"] == "onnx":  # the host's way: Pillow (libjpeg-turbo) at the same reduced scale
        pixels = preprocess.decode_pillow(data, plan.scale, ch)
        x0, y0 = 0, 0
        t2 = now()
        x = preprocess.area_resize_numpy(pixels, plan.box, in_w, in_h).tobytes()
    else:
        if ch == 1:  # prepare() in two timed steps (checked equal to prepare() by the bit-exact logits)
            x0, y0, w, h, pixels = jpeg.decode_luma_region(data, plan.scale, plan.box)
        else:
            x0, y0 = 0, 0
            w, h, pixels = jpeg.decode_rgb(data, plan.scale)
        t2 = now()
        box = (plan.box[0] - x0, plan.box[1] - y0, plan.box[2] - x0, plan.box[3] - y0)
        if np is not None:
            x = preprocess.area_resize_numpy(np.frombuffer(pixels, np.uint8).reshape(h, w, ch), box, in_w, in_h).tobytes()
        else:
            x = preprocess.area_resize(pixels, w, h, ch, box, in_w, in_h)
    t3 = now()
    logits = infer(x)
    index = argmax(logits)
    t4 = now()
    if MPY:
        used = gc.mem_alloc()
        peak = used if used > peak else peak
    if i >= cfg["warmup"]:
        times.append([diff(t1, t0), diff(t2, t1), diff(t3, t2), diff(t4, t3)])
        if len(checks) < cfg["checks"]:
            checks.append([binascii.crc32(data) & 0xFFFFFFFF, index, logits])
    pixels = data = x = None
print(json.dumps({"times": times, "checks": checks, "static": static, "peak": peak,
                  "backend": cfg["engine"] if cfg["engine"] == "onnx" else net.backend}))
"""


def ensure_model(model_dir: pathlib.Path | None) -> pathlib.Path:
    """The model directory to benchmark: --model, else a small door model trained once and cached."""
    if model_dir is not None:
        if not (model_dir / "model.cml").is_file():
            sys.exit(f"{model_dir}: no model.cml")
        return model_dir
    import dataclasses
    import hashlib

    from camlytics.train.pipeline import TrainConfig, run_training

    # the tests' door_model recipe: few epochs, the default architecture search, input size and budgets
    cfg = TrainConfig(epochs_teacher=3, epochs_student=6, epochs_finetune=2, epochs_qat=1, seed=0)
    # the simulated dataset it trains on: preset, scene seed, frame size, open/closed counts, time step,
    # seed of the drawn times
    recipe = {"preset": "office", "seed": 0, "size": [640, 360], "open": 60, "closed": 60, "step": 2.0,
              "times_seed": 0}
    # Keyed by the recipe and every TrainConfig setting, so a changed default makes a new dataset and
    # model instead of reusing a stale one.
    key = hashlib.sha1(json.dumps([recipe, dataclasses.asdict(cfg)], sort_keys=True, default=str).encode()).hexdigest()[:12]
    model_dir = CACHE / f"model-{key}"
    if (model_dir / "model.cml").is_file():
        return model_dir
    from camlytics.sim import Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    print(f"training a small door model into {model_dir} (once) ...", flush=True)
    dataset = CACHE / f"dataset-{key}"
    if not dataset.exists():  # built beside and renamed: an interrupted build is never reused
        partial = dataset.with_name(dataset.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        scene = Scene(recipe["preset"], recipe["seed"], *recipe["size"])
        times = state_times(scene, recipe["open"], recipe["closed"], np.random.default_rng(recipe["times_seed"]),
                            step=recipe["step"])
        build_sim_dataset(partial, recipe["preset"], recipe["seed"], times, width=recipe["size"][0],
                          height=recipe["size"][1])
        partial.rename(dataset)
    run_training(dataset, model_dir, cfg)
    return model_dir


def ensure_onnx(model_dir: pathlib.Path, tmp: pathlib.Path) -> pathlib.Path:
    """model.onnx of the model directory, exported from student.pt when the directory lacks one."""
    path = model_dir / "model.onnx"
    if path.is_file():
        return path
    from camlytics.model.onnx_export import export_onnx
    from camlytics.model.student import load_student

    student, meta = load_student(model_dir / "student.pt")
    inp = meta["input"]
    chw = (1 if inp.get("color", "gray") == "gray" else 3, int(inp["height"]), int(inp["width"]))
    return export_onnx(student, tmp / "model.onnx", chw, classes=meta.get("classes"))


def start_camera(n_frames: int):
    """A SimulatedCamera (Digest auth) serving a fixed cycle of pre-rendered 640x360 frames."""
    from camlytics.sim.camera import SimulatedCamera

    class CycleCamera(SimulatedCamera):
        """Serves the same few frames over and over: fetch measures HTTP, not rendering."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.cycle: dict[tuple[str, int], list[tuple[bytes, float]]] = {}
            self.served = 0

        def snapshot(self, resolution, quality, t=None):
            frames = self.cycle.get((resolution, quality))
            if frames is None:
                # a day's sample, door events included (the model sees both states)
                scene = self.scene(640, 360)
                times = [e.start + 0.5 * (e.end - e.start) for e in scene.timeline.events[:n_frames // 2]]
                times += list(np.linspace(6 * 3600, 22 * 3600, n_frames - len(times)))
                frames = self.cycle[(resolution, quality)] = [super(CycleCamera, self).snapshot(resolution, quality, t)
                                                              for t in times]
            self.served += 1
            return frames[self.served % len(frames)]

    cam = CycleCamera(preset="office", seed=1, speed=1.0, auth=(USER, PASSWORD)).start()
    cam.snapshot("640x360", 70)  # render the cycle before anything is timed
    return cam


def without_viper(dst: pathlib.Path) -> pathlib.Path:
    """A copy of the edge package with every `@micropython.viper` line removed, as a MICROPYPATH root.

    MicroPython's compiler picks the viper emitter from the decorator's name at compile time, so
    the decorator cannot be switched off at run time: this copy makes every kernel plain bytecode.
    """
    src = ROOT / "src" / "camlytics"
    (dst / "camlytics" / "edge").mkdir(parents=True)
    (dst / "camlytics" / "__init__.py").write_text((src / "__init__.py").read_text())
    for path in (src / "edge").glob("*.py"):
        lines = [line for line in path.read_text().splitlines() if line.strip() != "@micropython.viper"]
        (dst / "camlytics" / "edge" / path.name).write_text("\n".join(lines) + "\n")
    return dst


def run_worker(cmd: list[str], settings: dict, tmp: pathlib.Path, env: dict) -> dict | None:
    """Run the worker script with `settings`; its JSON result, or None when it failed (e.g. out of heap)."""
    cfg = tmp / f"cfg-{time.monotonic_ns()}.json"
    cfg.write_text(json.dumps(settings))
    proc = subprocess.run(cmd + [str(tmp / "worker.py"), str(cfg)], env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        settings["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["exit %d" % proc.returncode]
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def held_out_day(model_dir: pathlib.Path, n: int, seed: int = 7) -> None:
    """Predictions of the edge runtimes against the host int8 reference on `n` frames of an unseen day."""
    from camlytics.model.predictor import load_predictor
    from camlytics.sim import Scene
    from camlytics.train.simdata import state_times

    scene = Scene("office", seed, 640, 360)
    n_open = min(n // 5, int(sum(e.end - e.start for e in scene.timeline.events) // 2))
    times = state_times(scene, n_open, n - n_open, np.random.default_rng(seed), step=2.0)
    t0 = time.perf_counter()
    frames = [scene.frame(float(t), quality=70) for t in times]
    print(f"\nheld-out day (office, seed {seed}): {n} frames ({n_open} open), rendered in "
          f"{time.perf_counter() - t0:.0f} s")
    int8 = load_predictor(model_dir, "int8")
    x = np.stack([int8.inputs(f) for f in frames])  # Pillow decode
    want = int8ref.forward(int8ref.as_model(model_dir / "model.cml"), x)
    truth = np.array([f.meta["truth"]["state"] == "open" for f in frames])
    open_index = int8.classes.index("open") if "open" in int8.classes else 1
    print(f"host int8 reference: accuracy {np.mean((want.argmax(1) == open_index) == truth):.3f} against the "
          f"simulator's truth")
    print("| runtime | input tensors differing | logits differing | predictions differing | seconds |")
    print("|---|---:|---:|---:|---:|")
    for runtime in ("edge", "micropython", "c"):
        predictor = load_predictor(model_dir, runtime)
        t0 = time.perf_counter()
        if runtime == "micropython":  # decode + preprocess + infer all inside one MicroPython process
            logits, xr = predictor.predict_jpegs([f.jpeg for f in frames])
        else:
            xr = np.stack([predictor.inputs(f) for f in frames])
            logits = predictor.logits(xr) if hasattr(predictor, "logits") else None
        if logits is None:  # the C runtime's predictor gives probabilities: get its logits directly
            from camlytics.export.c_codegen import CRuntime
            logits = CRuntime(model_dir).forward(xr)
        seconds = time.perf_counter() - t0
        diff_x = int(np.sum(np.any((xr != x).reshape(len(x), -1), axis=1)))
        diff_l = int(np.sum(np.any(logits != want, axis=1)))
        diff_p = int(np.sum(logits.argmax(1) != want.argmax(1)))
        print(f"| {runtime} | {diff_x} | {diff_l} | {diff_p} | {seconds:.1f} |")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=pathlib.Path, help="model directory (default: train a small one, cached)")
    parser.add_argument("--frames", type=int, default=60, help="timed frames for the fast runtimes")
    parser.add_argument("--slow-frames", type=int, default=8, help="timed frames for the runtimes without viper/numpy")
    parser.add_argument("--cycle", type=int, default=8, help="distinct frames the camera serves in turn")
    parser.add_argument("--day", type=int, default=500, help="frames of a held-out simulated day on which the "
                        "edge runtimes' predictions are compared with the host int8 reference (0: skip)")
    args = parser.parse_args()

    from camlytics.edge.model import load_model
    from camlytics.edge.preprocess import make_plan, prepare_host

    model_dir = ensure_model(args.model)
    model_file = model_dir / "model.cml"
    model = load_model(model_file)
    macs = model.macs
    cam = start_camera(args.cycle)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmpdir:
            tmp = pathlib.Path(tmpdir)
            onnx_path = ensure_onnx(model_dir, tmp)
            (tmp / "worker.py").write_text(WORKER)
            jpegs = {binascii.crc32(j) & 0xFFFFFFFF: j for j, _ in cam.cycle[("640x360", 70)]}
            plan = make_plan(model.meta, 640, 360)
            print(f"model {model_dir}: input {model.input_shape}, {len(model.layers)} layers, {macs} MACs, "
                  f"{model_file.stat().st_size} bytes; classes {model.classes}")
            print(f"camera: simulated Axis (Digest auth) cycling {len(jpegs)} pre-rendered 640x360 frames "
                  f"(compression 30, ~{np.mean([len(j) for j in jpegs.values()]) / 1024:.0f} KB); {plan!r}")
            mpy_env = dict(os.environ, MICROPYPATH=os.pathsep.join([".frozen", str(ROOT / "src")]))
            py_env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
            plain_env = dict(os.environ, MICROPYPATH=os.pathsep.join([".frozen", str(without_viper(tmp / "plain"))]))
            base = {"model": str(model_file), "onnx": str(onnx_path), "url": cam.url, "user": USER,
                    "password": PASSWORD, "warmup": 3, "checks": len(jpegs), "probe": False,
                    "engine": "edge", "numpy": False, "backend": "auto"}
            mpy = [str(MICROPYTHON), "-X", "heapsize=1M"]
            runs = [
                ("MicroPython, viper (heap 1 MB)", mpy, mpy_env, {"backend": "viper", "frames": args.frames}),
                ("MicroPython, viper, ROI = whole frame (1/8 decode)", mpy, mpy_env,
                 {"backend": "viper", "frames": args.frames, "roi": [0, 0, 640, 360]}),
                # not what runs on the camera: more heap than the 1 MB goal for the plain-bytecode decoder
                ("MicroPython, no viper (heap 4 MB)", [str(MICROPYTHON), "-X", "heapsize=4M"], plain_env,
                 {"backend": "pure", "frames": args.slow_frames, "warmup": 1}),
                ("CPython + numpy", [sys.executable], py_env, {"backend": "numpy", "numpy": True,
                                                               "frames": args.frames}),
                ("CPython, pure Python", [sys.executable], py_env, {"backend": "pure", "frames": args.slow_frames,
                                                                   "warmup": 1}),
                ("CPython, Pillow + onnxruntime float", [sys.executable], py_env,
                 {"engine": "onnx", "frames": args.frames}),
            ]
            results = []
            for name, cmd, env, extra in runs:
                print(f"running {name} ...", flush=True)
                settings = {**base, **extra}
                out = run_worker(cmd, settings, tmp, env)
                if out is None:
                    print(f"  FAILED: {settings['error']}")
                    continue
                results.append((name, settings, out))

            # Heap: the smallest MicroPython heap that still runs the frame path (5 frames, collected each)
            fits, too_small = None, None
            for kib in (1024, 896, 768, 640, 576, 512, 448, 384, 320, 256):
                probe = {**base, "backend": "viper", "frames": 5, "warmup": 1, "probe": True}
                out = run_worker([str(MICROPYTHON), "-X", f"heapsize={kib}K"], probe, tmp, mpy_env)
                if out is None:
                    too_small = (kib, probe["error"][0])
                    break
                fits = (kib, out)

            # Bit-exactness: every int8 runtime against int8ref on prepare_host (Pillow) of the same JPEG
            def reference(roi):
                meta = json.loads(json.dumps(model.meta))
                if roi:
                    meta["preprocess"]["roi"] = roi
                return {crc: int8ref.forward(int8ref.as_model(model_file), prepare_host(j, meta)).tolist()
                        for crc, j in jpegs.items()}
    finally:
        cam.stop()

    ref = next((out for name, _, out in results if name.startswith("MicroPython, viper")), None)
    ref_ms = [median([t[k] for t in ref["times"]]) / 1000 for k in range(4)] if ref else None
    print()
    print(f"Model: {macs:,} MACs, {model_file.stat().st_size:,} bytes (model.cml), input "
          f"{model.input_shape[1]}x{model.input_shape[0]}x{model.input_shape[2]}; median ms per frame over the timed "
          f"frames; ratio = time / MicroPython viper time.")
    print()
    print("| runtime | fetch | decode | preprocess | infer | total | total ratio | infer ratio | infer M MAC/s "
          "| frames | int8 logits = int8ref |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, settings, out in results:
        want = reference(settings.get("roi"))
        ms = [median([t[k] for t in out["times"]]) / 1000 for k in range(4)]
        total = median([sum(t) for t in out["times"]]) / 1000
        ref_total = median([sum(t) for t in ref["times"]]) / 1000 if ref else float("nan")
        if out["backend"] == "onnx":
            agree = sum(int(c[1] == int(np.argmax(want[c[0]]))) for c in out["checks"])
            exact = f"float; same class {agree}/{len(out['checks'])}"
        else:
            ok = all(c[2] == want[c[0]] for c in out["checks"])
            exact = f"{'yes' if ok else 'NO'} ({len(out['checks'])} frames)"
        print(f"| {name} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.2f} | {ms[3]:.3f} | {total:.2f} | "
              f"{total / ref_total:.2f}x | {ms[3] / ref_ms[3]:.2f}x | {macs / ms[3] / 1000:.0f} | "
              f"{len(out['times'])} | {exact} |")
    if ref:
        print()
        dec = ref_ms[1] + ref_ms[2]
        total = median([sum(t) for t in ref["times"]]) / 1000
        best_infer = min(t[3] for t in ref["times"]) / 1000
        print(f"MicroPython viper: snapshot -> model input {dec:.1f} ms (goal <= 30: {'met' if dec <= 30 else 'NOT met'}); "
              f"whole frame {total:.1f} ms (goal <= 50: {'met' if total <= 50 else 'NOT met'}); inference "
              f"{macs / ref_ms[3] / 1000:.0f} M MAC/s median, {macs / best_infer / 1000:.0f} best "
              f"(goal >= 100: {'met' if macs / ref_ms[3] / 1000 >= 100 else 'NOT met'})")
        print(f"MicroPython heap: the timed viper run above ran in a 1 MB heap (-X heapsize=1M); "
              f"live after start-up (code + model + buffers) {ref['static'] / 1024:.0f} KB.")
    if fits:
        kib, out = fits
        print(f"Smallest heap tried that runs the frame path: {kib} KB (-X heapsize={kib}K); with a collection "
              f"before each frame the heap in use peaked at {out['peak'] / 1024:.0f} KB (static {out['static'] / 1024:.0f} KB). "
              f"Peak heap goal <= 1 MB: met.")
        if too_small:
            print(f"With -X heapsize={too_small[0]}K it fails: {too_small[1]}")
    else:
        print(f"MicroPython did not run the frame path in a 1 MB heap: {too_small}")
    if args.day:
        held_out_day(model_dir, args.day)
    return 0


if __name__ == "__main__":
    sys.exit(main())
