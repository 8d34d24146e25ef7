"""Benchmark of `camlytics train` on simulated installations (issue 25): does the shipped model reach the goals on
held-out days, is it never below the linear baseline, and is cross-validation honest?

For each preset and training seed: collect `--budget` frames of `--days` simulated days from `--day` with the smart sampler
(a frame offered every `--interval` s, as a camera polled that often), label them from the simulator's truth, train
with the defaults (`camlytics train`: linear baseline and CNN cross-validated, the better one shipped), then score on
held-out days (`--test-days`: frames at random instants, `--test-rare` of the rare state and `--test-common` of the
other) the shipped int8 model, the linear baseline and the CNN, each trained on every label. Prints a markdown
table per preset, the cross-validation estimate beside the held-out result, the shipped model on the clear-cut held-out
frames whose class x light condition the labels covered (left out: a state in a light the collected days never showed,
such as an open door at night, which `camlytics train` names as a gap, and a door within 2 degrees of the simulator's
10-degree open/closed line, which looks the same either side of it), training wall time,
and with `--curve` the shipped recipe trained on 50 and 100 of the labels.

    .venv/bin/python bench/train.py                                   # every preset, training seed 0
    .venv/bin/python bench/train.py --presets office,parking --seeds 0,1,2 --curve
    .venv/bin/python bench/train.py --reuse --work /tmp/bench-train   # keep the collected datasets between runs
    .venv/bin/python bench/train.py --days 3 --interval 30            # three days collected, held-out days 4 and 5

The old presets (office, warehouse, home) are the ones the pipeline was developed on; the others (roller,
glassdoor, double, irnight, parking, corridor) were kept out of all tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DOOR_GOAL, OCCUPANCY_GOAL = 0.995, 0.98
AMBIGUOUS_DEG = 2.0  # a door this close to the simulator's open/closed line looks the same either side of it


def collect_day(path: Path, preset: str, seed: int, interval: float, budget: int, days: int = 1,
                predict=None) -> dict:
    """Run the smart sampler over simulated days (seeds seed, seed + 1, ...) into a dataset; label from truth.

    `predict` (a model's predictor): the sampler also keeps that model's flips and unsure frames first, as
    `camlytics collect --model MODEL_DIR` does. The dataset may hold earlier frames; they stay."""
    from camlytics.sampling import make_sampler
    from camlytics.sampling.collect import collect
    from camlytics.sim import Scene
    from camlytics.sources import open_source
    from camlytics.store import Dataset
    from camlytics.train.simdata import label_from_truth

    roi = tuple(Scene(preset, seed).door_roi)
    t0 = time.monotonic()
    from camlytics.sim import PRESETS

    with Dataset.open(path, create=True) as ds:
        ds.set_roi(roi)
        if ds.classes != list(PRESETS[preset].classes):
            ds.set_classes(list(PRESETS[preset].classes))
        sampler = make_sampler("smart", budget=budget, duration=86400.0 * days, roi=roi, predict=predict)
        stats = collect(lambda: open_source(f"sim:{preset}?seed={seed}&interval={interval:g}&days={days}"), ds, sampler,
                        live=False)
        labelled = label_from_truth(ds)
        counts = ds.counts()["label"]
    return {"seen": stats.seen, "kept": stats.kept, "labelled": labelled, "labels": counts,
            "seconds": time.monotonic() - t0}


def reuse_or_collect(ds: Path, reuse: bool, key: dict, collect) -> dict:
    """The collection in `ds`: an earlier run's with --reuse if it was finished with the same settings (`key`),
    else `collect()` afresh (a killed run's leftovers removed first); `reused` says which.

    The marker `<ds>.collected.json` holds the counts and `key`; it is written last and atomically, so a kill
    leaves it absent (collect again) or whole."""
    from camlytics.store.files import write_atomic

    done = ds.parent / f"{ds.name}.collected.json"
    col = json.loads(done.read_text()) if reuse and done.exists() else {}
    if col and all(col.get(k) == v for k, v in key.items()):
        return {**col, "seconds": 0.0, "reused": True}
    if ds.exists():  # not finished, made with other settings, or --reuse not given: start again
        why = "is not a finished collection with these settings" if reuse else "exists (no --reuse)"
        print(f"\n{ds} {why}; collecting it again", flush=True)
        shutil.rmtree(ds)
    col = collect()
    write_atomic(ds.parent, done.name, json.dumps({**{k: col[k] for k in ("seen", "kept", "labelled", "labels")},
                                                   **key}).encode())
    return {**col, "reused": False}


def subset_labels(src: Path, dst: Path, n: int, seed: int) -> dict:
    """Copy a dataset keeping only `n` labels (per-class proportional, at least 10 per class)."""
    from camlytics.store import Dataset

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    rng = np.random.default_rng(seed)
    with Dataset.open(dst) as ds:
        recs = ds.records(labelled=True)
        by_class: dict[str, list[int]] = {}
        for r in recs:
            by_class.setdefault(r.label, []).append(r.id)
        keep: set[int] = set()
        for label, ids in by_class.items():
            want = max(10, round(n * len(ids) / len(recs)))
            keep.update(int(i) for i in rng.choice(ids, min(want, len(ids)), replace=False))
        for r in recs:
            if r.id not in keep:
                ds.set_label(r.id, None, "bench")
        return ds.counts()["label"]


_DECODED: dict = {}


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the candidates' worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def test_frames(preset: str, seed: int, n_rare: int, n_common: int
                ) -> tuple[list[bytes], list[str], list[str], list[bool]]:
    """JPEGs, true states, light conditions (as `camlytics info` judges them) and whether a door stands within
    AMBIGUOUS_DEG of the open/closed line, for random instants of simulated day `seed` (both states)."""
    import io

    from PIL import Image

    from camlytics.frames import light_condition
    from camlytics.sim import PRESETS, Scene
    from camlytics.sim.timeline import OPEN_ANGLE
    from camlytics.train.simdata import state_times, truth_label

    scene = Scene(preset, seed)
    jpegs, labels, lights, near = [], [], [], []
    door = PRESETS[preset].classes[1] == "open"
    for t in state_times(scene, n_rare, n_common, np.random.default_rng(1000 + seed)):
        frame = scene.frame(float(t))
        jpegs.append(frame.jpeg)
        labels.append(truth_label(frame.meta))
        near.append(door and abs(frame.meta["truth"]["angle"] - OPEN_ANGLE) < AMBIGUOUS_DEG)
        with Image.open(io.BytesIO(frame.jpeg)) as im:
            im.draft("RGB", (64, 64))
            lights.append(light_condition(np.asarray(im.convert("RGB"))))
    return jpegs, labels, lights, near


def covered_score(qmodel, spec, jpegs: list[bytes], labels: list[str], lights: list[str], near: list[bool],
                  gaps: list[dict]) -> tuple[float | None, int]:
    """(balanced accuracy on the clear-cut frames whose class x light the training labels covered, frames left out:
    in a gap, or a door within AMBIGUOUS_DEG of the line)."""
    holes = {(g["class"], g["light"]) for g in gaps}
    keep = [i for i, key in enumerate(zip(labels, lights)) if key not in holes and not near[i]]
    if len({labels[i] for i in keep}) < 2:
        return None, len(labels) - len(keep)
    return score(qmodel, spec, [jpegs[i] for i in keep], [labels[i] for i in keep]), len(labels) - len(keep)


def score(qmodel, spec, jpegs: list[bytes], labels: list[str]) -> float:
    """int8 balanced accuracy of a model on frames, through the camera's preprocessing."""
    from camlytics.model import int8ref
    from camlytics.model.inputs import load_input
    from camlytics.train.metrics import balanced_accuracy

    classes = qmodel.classes
    x = np.stack([load_input(j, spec) for j in jpegs])
    y = np.array([classes.index(lab) for lab in labels])
    return balanced_accuracy(y, int8ref.forward(qmodel, x).argmax(1), len(classes))


def train_once(dataset: Path, out: Path, seed: int, threads: int) -> tuple[dict, dict, float, float]:
    """`camlytics train` with its defaults (and `seed`): (metrics, models, wall seconds, CPU seconds)."""
    from camlytics.train.pipeline import TrainConfig, run_training

    models: dict = {}
    w0, c0 = time.monotonic(), cpu_seconds()
    metrics = run_training(dataset, out, TrainConfig(seed=seed, threads=threads), console=None, models=models)
    return metrics, models, time.monotonic() - w0, cpu_seconds() - c0


def bench_preset(preset: str, work: Path, args: argparse.Namespace) -> list[dict]:
    """Collect once, then per training seed train and score on the held-out days; prints the preset's table."""
    from camlytics.sim import PRESETS

    ds = work / (f"{preset}-day{args.day}" + (f"x{args.days}" if args.days > 1 else ""))
    col = reuse_or_collect(ds, args.reuse, {"day": args.day, "days": args.days, "budget": args.budget,
                                            "interval": args.interval},
                           lambda: collect_day(ds, preset, args.day, args.interval, args.budget, days=args.days))
    common, rare = PRESETS[preset].classes
    days = {d: test_frames(preset, d, args.test_rare, args.test_common) for d in args.test_days}
    collected = f"day {args.day}" if args.days == 1 else f"days {args.day}-{args.day + args.days - 1}"
    print(f"\n### {preset} ({PRESETS[preset].description})\n\ncollected with the smart sampler on {collected}: "
          f"{col['kept']} frames (interval {args.interval:g} s){' (reused)' if col['reused'] else ''}; labels from "
          f"truth: {col['labels']}; held-out days {list(days)}: {args.test_rare} {rare} + {args.test_common} {common} "
          f"frames each\n", flush=True)
    print("| training seed | shipped | CV estimate (shipped) | " + " | ".join(f"day {d}: shipped / linear / CNN"
                                                                          for d in days)
          + " | " + " | ".join(f"day {d}: shipped on clear-cut covered (left out)" for d in days)
          + " | input | train wall s |")
    print("|---" * (2 * len(days) + 5) + "|")
    rows = []
    for seed in args.seeds:
        metrics, models, wall, cpu = train_once(ds, work / f"{ds.name}-model-{seed}", seed, args.threads)
        res = {"preset": preset, "seed": seed, "shipped": metrics["shipped"], "cv": metrics["cv"]["shipped"]["mean"],
               "cv_std": metrics["cv"]["shipped"]["std"], "wall_s": wall, "cpu_s": cpu, "days": {},
               "advice": metrics["more_labels"]["advice"], "labels": col["labels"],
               "input": f"{metrics['input']['width']}x{metrics['input']['height']}",
               "gaps": metrics["more_labels"].get("gaps", [])}
        for d, (jpegs, labels, lights, near) in days.items():
            covered, in_gap = covered_score(models["int8"], models["spec"], jpegs, labels, lights, near, res["gaps"])
            res["days"][d] = {"shipped": score(models["int8"], models["spec"], jpegs, labels),
                              "linear": score(models["linear_int8"], models["linear_spec"], jpegs, labels),
                              "cnn": score(models["cnn_int8"], models["cnn_spec"], jpegs, labels),
                              "covered": covered, "in_gap": in_gap}
        print(f"| {seed} | {res['shipped']} | {pct(res['cv'])} +- {100 * res['cv_std']:.2f} | " + " | ".join(
            f"{pct(v['shipped'])} / {pct(v['linear'])} / {pct(v['cnn'])}" for v in res["days"].values())
            + " | " + " | ".join(f"{'-' if v['covered'] is None else pct(v['covered'])} ({v['in_gap']})"
                                 for v in res["days"].values())
            + f" | {res['input']} | {wall:.0f} |", flush=True)
        rows.append(res)
    print(f"\nmore labels? (seed {args.seeds[0]}) {rows[0]['advice']}", flush=True)
    if args.curve:
        print("\n| labels | shipped | CV estimate | " + " | ".join(f"day {d}" for d in days) + " |\n"
              + "|---" * (len(days) + 3) + "|")
        for n in (50, 100):
            sub = work / f"{preset}-day{args.day}-{n}"
            counts = subset_labels(ds, sub, n, args.seeds[0])
            try:
                metrics, models, wall, _ = train_once(sub, work / f"{ds.name}-model-{n}", args.seeds[0], args.threads)
            except Exception as exc:  # e.g. too few labels of a class: reported, the bench goes on
                print(f"| {n} {counts} | error: {exc} | | |")
                continue
            accs = [score(models["int8"], models["spec"], *days[d][:2]) for d in days]
            rows[0].setdefault("curve", {})[n] = {"cv": metrics["cv"]["shipped"]["mean"], "days": accs}
            print(f"| {n} {counts} | {metrics['shipped']} | {pct(metrics['cv']['shipped']['mean'])} | "
                  + " | ".join(pct(a) for a in accs) + " |", flush=True)
        print(f"| all {col['labels']} | {rows[0]['shipped']} | {pct(rows[0]['cv'])} | "
              + " | ".join(pct(v["shipped"]) for v in rows[0]["days"].values()) + " |", flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    """The issue's goals over every preset, seed and day, and how honest the CV estimate was."""
    from camlytics.sim import PRESETS

    print("\n## Summary\n")
    print("| preset | kind | shipped: min over seeds and days | linear: min | shipped below linear (seed, day) | "
          "CV estimate - held-out (mean) | shipped on clear-cut covered frames: min | goal | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in dict.fromkeys(r["preset"] for r in rows):
        rs = [r for r in rows if r["preset"] == preset]
        kind = "occupancy" if PRESETS[preset].classes[1] == "occupied" else "door"
        goal = OCCUPANCY_GOAL if kind == "occupancy" else DOOR_GOAL
        shipped = [v["shipped"] for r in rs for v in r["days"].values()]
        linear = [v["linear"] for r in rs for v in r["days"].values()]
        below = [(r["seed"], d) for r in rs for d, v in r["days"].items() if v["shipped"] < v["linear"]]
        gap = float(np.mean([r["cv"] - np.mean([v["shipped"] for v in r["days"].values()]) for r in rs]))
        met = min(shipped) >= goal and not below
        covered = [v["covered"] for r in rs for v in r["days"].values() if v.get("covered") is not None]
        print(f"| {preset} | {kind} | {pct(min(shipped))} | {pct(min(linear))} | {below or 'never'} | "
              f"{100 * gap:+.2f} points | {pct(min(covered)) if covered else '-'} | {pct(goal)} | "
              f"{'yes' if met else 'no'} |")
    walls = [r["wall_s"] for r in rows]
    print(f"\ntraining wall time: median {np.median(walls):.0f} s, max {max(walls):.0f} s "
          f"({len(walls)} runs of {rows[0]['labels']}-sized datasets; goal <= 300 s on 2 cores)", flush=True)


def main() -> int:
    from camlytics.sim import PRESETS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated (default: all)")
    p.add_argument("--seeds", default="0", help="training seeds, comma-separated (default 0)")
    p.add_argument("--day", type=int, default=1, help="the simulated day collected for training (default 1)")
    p.add_argument("--days", type=int, default=1, help="simulated days the sampler runs over, from --day (default 1)")
    p.add_argument("--test-days", help="held-out simulated days (default: the two after the collected ones)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between frames offered to the sampler")
    p.add_argument("--budget", type=int, default=300, help="frames the smart sampler keeps (labels)")
    p.add_argument("--test-rare", type=int, default=150)
    p.add_argument("--test-common", type=int, default=450)
    p.add_argument("--curve", action="store_true", help="also train on 50 and 100 of the labels")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", help="working directory (default: a temporary one, removed)")
    p.add_argument("--reuse", action="store_true", help="reuse finished collections in --work")
    p.add_argument("--json", help="write every result as JSON here")
    args = p.parse_args()
    args.seeds = [int(v) for v in args.seeds.split(",")]
    first_test = args.day + args.days
    args.test_days = ([int(v) for v in args.test_days.split(",")] if args.test_days
                      else [first_test, first_test + 1])
    presets = [v for v in args.presets.split(",") if v]
    unknown = [v for v in presets if v not in PRESETS]
    if unknown:
        print(f"bench/train.py: error: unknown presets {unknown}; choose from {list(PRESETS)}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    try:
        for preset in presets:
            rows += bench_preset(preset, work, args)
        summary(rows)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
