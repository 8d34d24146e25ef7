"""Evaluate a model directory on any frame source against a CSV of ground-truth labels, or on a labelled dataset."""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np

from camlytics.errors import ModelError, SourceError
from camlytics.frames import Frame
from camlytics.model.predictor import Predictor
from camlytics.train.metrics import classification_report

MAX_LABEL_ROWS = 1_000_000


def read_labels_csv(path: str | Path) -> dict[str, str]:
    """`filename,label` rows (an optional header row is skipped) as {file name: label}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(f"labels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"labels file {path} cannot be read ({exc})") from None
    labels: dict[str, str] = {}
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise SourceError(f"labels file {path} line {n}: expected 'filename,label', got {','.join(row)!r}")
        name, label = row[0].strip(), row[1].strip()
        if n == 1 and (name.lower(), label.lower()) == ("filename", "label"):
            continue
        if n > MAX_LABEL_ROWS:
            raise SourceError(f"labels file {path}: more than {MAX_LABEL_ROWS} rows")
        labels[PurePosixPath(name.replace("\\", "/")).name] = label
    if not labels:
        raise SourceError(f"labels file {path} has no 'filename,label' rows")
    return labels


def frame_name(frame: Frame) -> str | None:
    """The file name a frame came from, as sources record it in `meta` (or in `source`)."""
    for key in ("filename", "name", "path", "original_name"):
        value = frame.meta.get(key)
        if value:
            return PurePosixPath(str(value).replace("\\", "/")).name
    if frame.source and "/" in frame.source and not frame.source.startswith(("http", "sim:")):
        return PurePosixPath(frame.source).name
    return None


def evaluate_arrays(predictor: Predictor, x: np.ndarray, labels: list[str], batch_size: int = 256) -> dict[str, Any]:
    """Metrics of `predictor` on preprocessed inputs with their true label names."""
    unknown = sorted(set(labels) - set(predictor.classes))
    if unknown:
        raise ModelError(f"labels {unknown} are not classes of the model {predictor.classes}")
    probs = np.concatenate([predictor.probs(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    index = {c: i for i, c in enumerate(predictor.classes)}
    y = np.array([index[label] for label in labels], np.int64)
    report = classification_report(y, probs.argmax(1), predictor.classes)
    report["runtime"] = predictor.runtime
    return report


def collect_labelled(predictor: Predictor, frames: Iterable[Frame], labels: dict[str, str] | None,
                     progress: Any = None) -> tuple[np.ndarray, list[str], int]:
    """Inputs and true labels of the frames that have a label; also the count of unlabelled frames.

    `labels` maps file names to labels; None takes each frame's ground truth (the simulator's `truth`)."""
    xs, ys, unlabelled = [], [], 0
    task = progress.add_task("evaluate", total=None, status="") if progress is not None else None
    for frame in frames:
        if labels is None:
            label = frame.meta.get("truth", {}).get("state")
        else:
            label = labels.get(frame_name(frame) or "")
        if label is None:
            unlabelled += 1
            continue
        xs.append(predictor.inputs(frame))
        ys.append(label)
        if task is not None:
            progress.advance(task)
    if not xs:
        if labels is None:
            raise SourceError(f"no frame of the source carries its ground truth ({unlabelled} frames)")
        raise SourceError(f"no frame of the source matches a file name of the labels file "
                          f"({unlabelled} frames, {len(labels)} labels)")
    return np.stack(xs), ys, unlabelled


def dataset_labelled(predictor: Predictor, path: str | Path, progress: Any = None) -> tuple[np.ndarray, list[str], int]:
    """Inputs and labels of a camlytics dataset's labelled records (its stored JPEGs, as training reads them)."""
    from camlytics.errors import CamlyticsError
    from camlytics.model.inputs import load_input
    from camlytics.store import Dataset

    try:
        ds = Dataset.open(path, create=False)
    except CamlyticsError as exc:
        raise SourceError(f"{exc}; without --labels, SOURCE must be a camlytics dataset") from None
    with ds:
        records = ds.records(labelled=True)
        if not records:
            raise SourceError(f"dataset {path} has no labelled images to evaluate on")
        unlabelled = len(ds.records(labelled=False))
        task = progress.add_task("evaluate", total=len(records), status="") if progress is not None else None
        xs = []
        for r in records:
            xs.append(load_input(ds.read_image(r), predictor.spec, f"record {r.id} ({r.path})"))
            if task is not None:
                progress.advance(task)
    return np.stack(xs), [r.label for r in records], unlabelled


def model_directory(model: str | Path) -> Path:
    """The model directory for MODEL_DIR, which may also name its model.cml file (as export/run/bundle accept)."""
    path = Path(model)
    if path.suffix == ".cml" and not path.is_dir():
        return path.parent
    if path.is_file():
        raise ModelError(f"{path} is a file, not a model directory (or its model.cml)")
    return path


def check_json_destination(path: str | Path) -> Path:
    """Check up front that --json OUT can be written (its directory exists, OUT is not a directory)."""
    path = Path(path)
    if path.is_dir():
        raise SourceError(f"--json {path} is a directory; give a file name such as {path / 'metrics.json'}")
    parent = path.parent
    if not parent.is_dir():
        raise SourceError(f"--json {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SourceError(f"--json {path}: cannot write there (permission denied)")
    return path


def write_json(path: str | Path, report: dict[str, Any]) -> None:
    """Write the metrics as JSON, whole or not at all (a temporary file renamed into place); SourceError (one
    line) if it cannot be written."""
    import json

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SourceError(f"--json {path}: cannot write there ({exc.strerror or exc})") from None


def evaluate_source(model_dir: str | Path, source: str, labels_csv: str | Path | None, runtime: str = "int8",
                    progress: Any = None) -> dict[str, Any]:
    """Run a model over a frame source and score it against `labels_csv`, over a dataset's labelled records, or
    over a `sim:` source against the simulator's ground truth."""
    from camlytics.model.predictor import load_predictor
    from camlytics.sources import open_source, source_kind

    model_dir = model_directory(model_dir)
    predictor = load_predictor(model_dir, runtime)
    if labels_csv is None and source_kind(source) == "sim":  # the simulator knows the truth of every frame
        with open_source(source) as frames:
            x, y, unlabelled = collect_labelled(predictor, frames, None, progress)
    elif labels_csv is None:
        x, y, unlabelled = dataset_labelled(predictor, source, progress)
    elif (Path(source) / "index.sqlite").is_file():
        raise SourceError(f"{source} is a camlytics dataset: leave out --labels, its own labels are used")
    else:
        labels = read_labels_csv(labels_csv)
        with open_source(source) as frames:
            x, y, unlabelled = collect_labelled(predictor, frames, labels, progress)
    report = evaluate_arrays(predictor, x, y)
    report["unlabelled_frames"] = unlabelled
    report["model_dir"] = str(model_dir)
    report["source"] = source
    return report
