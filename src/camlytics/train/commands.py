"""`camlytics train` and `camlytics evaluate` (heavy imports stay inside the command functions)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camlytics import validate
from camlytics.errors import TrainingError
from camlytics.train import options


def parse_roi(text: str) -> validate.Roi:
    """'x0,y0,x1,y1' -> a Roi (argparse type)."""
    return validate.parse_roi(text, error=argparse.ArgumentTypeError)


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H), each 4..256 (argparse type)."""
    return options.parse_input(text, error=argparse.ArgumentTypeError)


def parse_classes(text: str) -> list[str]:
    """'closed,open' -> ['closed', 'open'] (at least two distinct names)."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected at least two distinct class names, got {text!r}")
    return names


def parse_epochs(text: str) -> dict[str, int]:
    """'N' (scales every stage) or 'teacher=N,student=N,finetune=N,qat=N' (argparse type)."""
    return options.parse_epochs(text, error=argparse.ArgumentTypeError)


def register(subparsers: Any) -> None:
    """Add `train` and `evaluate`."""
    p = subparsers.add_parser(
        "train", help="train the int8 student on a labelled dataset",
        description="Train on the labelled images of DATASET: a linear baseline (logistic regression on the ROI) "
                    "and a tiny CNN (trained, pruned to the MAC budget, quantized to int8, with QAT), each scored by "
                    "K-fold time-block cross-validation; the best by cross-validation ships, the simpler one on a "
                    "tie, trained on every label. Writes MODEL_DIR with model.cml (edge model), student.pt, "
                    "model.onnx, metrics.json, config.json and report.html (which model shipped and why, and "
                    "whether more labels would help).")
    p.add_argument("dataset", metavar="DATASET", help="dataset directory (camlytics collect / annotate)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write (replaced if it is one)")
    p.add_argument("--classes", type=parse_classes, help="class names in output order, e.g. closed,open "
                   "(default: the dataset's)")
    p.add_argument("--roi", type=parse_roi, help="x0,y0,x1,y1 in full-resolution pixels (default: the dataset's ROI, "
                   "else the whole frame)")
    p.add_argument("--input", type=parse_size, default=None, metavar="WxH",
                   help="the CNN's input size (default: about 2048 pixels shaped like the ROI: wide, tall or square; "
                   "a ROI smaller than that is upscaled)")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--gray", dest="color", action="store_const", const="gray", help="grey input only")
    colour.add_argument("--rgb", dest="color", action="store_const", const="rgb", help="colour input only (default: "
                        "the linear baseline tries both; the CNN takes colour only if colour cross-validated better)")
    p.add_argument("--budget-macs", type=int, default=500_000, metavar="N", help="MAC budget of the int8 model "
                   "(default 500000)")
    p.add_argument("--budget-bytes", type=int, default=32 * 1024, metavar="N", help="int8 weight + bias bytes budget "
                   "(default 32768)")
    p.add_argument("--teacher-weights", metavar="PATH", help="torchvision MobileNetV2 state dict "
                   "(mobilenet_v2-b0353104.pth) to start the teacher from ImageNet; default: a wide CNN from scratch")
    p.add_argument("--epochs", type=parse_epochs, metavar="N|stage=N,...", help="epochs: one number for the student "
                   "(other stages scaled), or teacher=N,student=N,finetune=N,qat=N")
    p.add_argument("--pool", type=int, default=0, metavar="N", help="augmented training images shared by all "
                   "stages (default: 30 per training image, 1024..8192)")
    p.add_argument("--family", choices=("auto", "linear", "cnn"), default="auto", help="what may ship: auto "
                   "(default: the better by cross-validation, the linear baseline on a tie), linear, or cnn; every "
                   "candidate is still cross-validated and reported (linear alone skips the CNN: seconds)")
    p.add_argument("--distill", action="store_true", help="also train a teacher and a student distilled from it "
                   "(cross-validation decides whether it ships; about twice the training time)")
    p.add_argument("--folds", type=int, default=0, metavar="K", help="cross-validation folds, 2-10 (default 0: 3-5 "
                   "from the number of labels of the rarest class)")
    p.add_argument("--min-confidence", type=float, default=None, metavar="P", help="below this top-class "
                   "probability the camera reports 'unknown' (default: the highest of 0.55..0.95 that costs at most "
                   "1%% of the right cross-validation answers; 0: never)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same data -> same model (default 0)")
    p.add_argument("--candidates", type=int, default=1, metavar="K", help="train K whole runs with seeds SEED.."
                   "SEED+K-1 (side by side, --jobs at a time; each as long as one run) and keep the best int8 model "
                   "on --check, or without it the best cross-validated (default 1)")
    p.add_argument("--check", metavar="CHECK_DATASET", help="a labelled dataset of other frames of this camera, never "
                   "trained on: picks among --candidates and is scored in the report. Best: the door held just either "
                   "side of the open/closed line at several times of day")
    p.add_argument("--jobs", type=int, default=0, metavar="N", help="runs (cross-validation folds, or candidates) "
                   "trained at once, each in its own process; the model does not depend on it (default 0: one per core)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1; 0: up to 2 cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-record", dest="record", action="store_false", help="do not record the model as the "
                   "dataset's next version (default: DATASET/models/v<N>-<hash>/ keeps model.cml, metrics.json, "
                   "config.json and report.html; see `camlytics models`)")
    p.set_defaults(func=train_command, color="auto")

    e = subparsers.add_parser(
        "evaluate", help="score a model directory on frames with ground-truth labels",
        description="Run MODEL_DIR over every frame of SOURCE (a folder of images, a video, a camera...) and compare "
                    "with the labels CSV (filename,label), over the labelled images of a camlytics dataset, or over "
                    "a sim: source against the simulator's ground truth: balanced accuracy, per-class "
                    "precision/recall, confusion.")
    e.add_argument("model_dir", metavar="MODEL_DIR")
    e.add_argument("source", metavar="SOURCE", help="frame source, e.g. a folder of JPEGs, or a camlytics dataset")
    e.add_argument("--labels", metavar="CSV", help="CSV with rows filename,label (not needed for a dataset: its "
                   "labels are used; nor for sim:, whose truth is)")
    e.add_argument("--json", metavar="OUT", help="also write the metrics as JSON to OUT")
    e.add_argument("--runtime", default="int8", help="float | int8 (default: the host reference of the edge) | edge | "
                   "micropython | c | firmware:armv7hf|aarch64|x86_64 (the camera runtimes; firmware: the camera's MicroPython "
                   "firmware, under qemu-user for ARM)")
    e.set_defaults(func=evaluate_command)


def _console(quiet: bool) -> Any:
    if quiet:
        return None
    from rich.console import Console
    return Console(stderr=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM (a service manager, `timeout`, `kill`) stops training as Ctrl-C does: candidate processes
    ended, no temporary directory left beside MODEL_DIR. Only in the main thread, where Python runs handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train_command(args: argparse.Namespace) -> int:
    """Run the training pipeline and print a summary."""
    from camlytics.train.pipeline import run_training

    cfg = options.train_config(vars(args))
    with _sigterm_as_interrupt():
        metrics = run_training(args.dataset, args.out, cfg, console=_console(args.quiet))
    cv = metrics["cv"]
    print(f"{cv['folds']}-fold time-block cross-validation, int8 balanced accuracy (mean +- spread over folds):")
    for name, s in sorted(cv["candidates"].items(), key=lambda kv: -kv[1]["mean"]):
        mark = "  <- shipped" if name == metrics["shipped"] else ""
        print(f"  {name:<22} {100 * s['mean']:6.2f}% +- {100 * s['std']:4.2f}  log loss {s['log_loss']:.4f}{mark}")
    print(f"why: {cv['shipped']['why']}")
    for c in metrics.get("candidates") or []:
        check = f"int8 check {100 * c['check_balanced_accuracy']:6.2f}%, " if c["check_balanced_accuracy"] is not None else ""
        by = "on the check set" if c["check_balanced_accuracy"] is not None else "by cross-validation"
        print(f"candidate {c['index']} (seed {c['seed']}): {check}CV {100 * c['cv_balanced_accuracy']:6.2f}%"
              + (f"  <- kept (best {by})" if c["chosen"] else ""))
    if "check" in metrics:
        print(f"check set: int8 balanced accuracy {100 * metrics['check']['int8']['balanced_accuracy']:.2f}% on "
              f"{metrics['check']['int8']['n']} images")
    print(f"int8 model: {metrics['macs']} MACs, {metrics['weight_bytes']} weight bytes, "
          f"{metrics['model_file_bytes']} file bytes; {metrics['train_seconds']:.0f} s")
    print(f"more labels? {metrics['more_labels']['advice']}")
    print(f"wrote {Path(args.out)}/ (report.html, model.cml, model.onnx, student.pt, metrics.json, config.json)")
    if args.record:
        _record(args.dataset, args.out)
    return 0


def _record(dataset: str, model_dir: str) -> None:
    """Record the model just written as the dataset's next version and say which."""
    from camlytics.errors import DatasetError
    from camlytics.store.models import record_model

    try:
        version = record_model(dataset, model_dir)
    except DatasetError as exc:
        raise DatasetError(f"the model is in {model_dir}/ but was not recorded in the dataset: {exc}") from None
    print(f"recorded as model version {version.version} of {dataset} (see `camlytics models {dataset}`)")


def evaluate_command(args: argparse.Namespace) -> int:
    """Evaluate and print (and optionally save) the metrics."""
    from camlytics.train.evaluate import check_json_destination, evaluate_source, write_json
    from camlytics.train.metrics import format_report

    if args.json:
        check_json_destination(args.json)  # before the (slow) evaluation, not after it
    report = evaluate_source(args.model_dir, args.source, args.labels, args.runtime, progress=None)
    print(format_report(report))
    if report.get("unlabelled_frames"):
        print(f"({report['unlabelled_frames']} frames had no label and were ignored)")
    if args.json:
        write_json(args.json, report)
    return 0
