"""CLI: `camlytics info [DATASET] [--model DIR]`, `camlytics labels import|export`, `camlytics repair` and
`camlytics models DATASET`."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info`, `labels`, `repair` and `models` sub-commands."""
    info = subparsers.add_parser(
        "info", help="show what a dataset (or a trained model) holds",
        description="Counts per label, per sampler, per hour of day and per light condition (day, dim, night, "
        "ir: judged from each image, cached in the index). With --model: what a trained model is and what "
        "training advises. A damaged index is refused (see `camlytics repair`).",
    )
    info.add_argument("dataset", metavar="DATASET", nargs="?", help="dataset directory")
    info.add_argument("--model", metavar="MODEL_DIR", help="trained model directory (from `camlytics train`)")
    info.set_defaults(func=run_info)

    labels = subparsers.add_parser("labels", help="import or export labels", description="Import or export labels.")
    sub = labels.add_subparsers(dest="labels_command", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import",
        help="apply a label file to a dataset",
        description="Apply labels from a CSV file (filename,label; filename = original file name or store path) "
        'or the original annotation tool\'s JSON index ({"/abs/path/img.jpg": "open"}). All or nothing: '
        "unknown files or labels stop the import before anything is written.",
    )
    imp.add_argument("dataset", metavar="DATASET", help="dataset directory")
    imp.add_argument("file", metavar="FILE", help="CSV or JSON label file")
    imp.add_argument("--annotator", default="import", help="name recorded with the labels (default: import)")
    imp.add_argument("--classes", metavar="A,B,...", help="set the dataset's classes first (distinct names; "
                     "every class labels already use must stay)")
    imp.add_argument("--skip-unknown", action="store_true", help="skip and count labels that are not one of "
                     "the classes, instead of refusing the file")
    imp.set_defaults(func=run_import)
    exp = sub.add_parser(
        "export",
        help="write the labels for other tools",
        description="Write the labelled images as CSV (store path,label), JSON ({absolute path: label}) or an "
        "image folder (one sub-folder per class).",
    )
    exp.add_argument("dataset", metavar="DATASET", help="dataset directory")
    exp.add_argument("--format", choices=["csv", "json", "imagefolder"], default="csv", help="output format")
    exp.add_argument("--out", required=True, metavar="PATH", help="output file (csv/json) or folder (imagefolder)")
    exp.set_defaults(func=run_export)

    rep = subparsers.add_parser(
        "repair", help="rebuild a missing, empty or corrupt dataset index from the images",
        description="Check the dataset's index.sqlite; if it is missing, empty or corrupt, rebuild it from the "
        "content-addressed images (images/ab/<sha256>.jpg), taking each image's record, labels, classes and "
        "ROI from the newest readable backup in backups/, else the time from EXIF or the file. The damaged "
        "index is renamed aside (index.damaged-<UTC time>.sqlite), never deleted. Stop other camlytics "
        "commands on the dataset first. A sound index is left alone.",
    )
    rep.add_argument("dataset", metavar="DATASET", help="dataset directory")
    rep.set_defaults(func=run_repair)

    mod = subparsers.add_parser(
        "models", help="list the model versions trained on a dataset and where each runs",
        description="Every model `camlytics train` recorded in DATASET (DATASET/models/v<N>-<hash>/: model.cml, "
        "metrics.json, config.json, report.html), oldest first: when, what shipped, its cross-validated balanced "
        "accuracy, the labels per class it saw, and the cameras it is deployed on now. Deploy one with "
        "`camlytics deploy --dataset DATASET --model-version vN --camera URL`; go back with `camlytics rollback`.",
    )
    mod.add_argument("dataset", metavar="DATASET", help="dataset directory")
    mod.add_argument("--json", action="store_true", help="print the versions as JSON (one list) instead of a table")
    mod.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    """Print the dataset's model versions as a table or JSON."""
    import json

    from camlytics.store import Dataset
    from camlytics.store.models import deployments, list_models

    Dataset.open(args.dataset).close()  # a missing or damaged dataset is one clear line
    versions = list_models(args.dataset)
    where: dict[str, list[str]] = {}
    for camera, version in deployments(args.dataset).items():
        where.setdefault(version, []).append(camera)
    if args.json:
        print(json.dumps([{"version": v.version, "counter": v.counter, "sha256": v.sha256, "created": v.created,
                           "path": str(v.path), "summary": v.summary, "data": v.data,
                           "deployed": sorted(where.get(v.version, []))} for v in versions], indent=2))
        return 0
    _print_models(args.dataset, versions, where)
    return 0


def _print_models(dataset: str, versions: list[Any], where: dict[str, list[str]]) -> None:
    import datetime

    from rich.console import Console
    from rich.table import Table

    if not versions:
        print(f"{dataset}: no model versions yet (`camlytics train {dataset} --out MODEL_DIR` records one)")
        return
    console = Console()
    table = Table(title=f"model versions of {dataset}")
    for name in ("version", "created (UTC)", "shipped", "CV bal. acc.", "labels per class", "deployed on"):
        table.add_column(name, justify="right" if name == "CV bal. acc." else "left")
    for v in versions:
        created = datetime.datetime.fromtimestamp(v.created, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
        s = v.summary
        cv = (f"{100 * s['cv_mean']:.2f}% +- {100 * (s.get('cv_std') or 0):.2f}"
              if isinstance(s.get("cv_mean"), (int, float)) else "-")
        counts = v.data.get("per_class") or s.get("counts") or {}
        labels = ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"
        if v.data.get("missing"):
            labels += f" ({v.data['missing']} not in this dataset)"
        table.add_row(v.version, created, str(s.get("shipped") or "-"), cv, labels,
                      ", ".join(sorted(where.get(v.version, []))) or "-")
    console.print(table)


def run_info(args: argparse.Namespace) -> int:
    """Print the dataset summary tables, the model summary, or both."""
    from camlytics.errors import CamlyticsError

    if args.dataset is None and args.model is None:
        raise CamlyticsError("give a DATASET, --model MODEL_DIR, or both")
    if args.dataset is not None:
        _print_dataset(args.dataset)
    if args.model is not None:
        _print_model(args.model)
    return 0


def _print_dataset(path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from camlytics.store import Dataset
    from camlytics.store.light import light_balance

    with Dataset.open(path) as ds:
        counts, classes, roi = ds.counts(), ds.classes, ds.roi
        balance = light_balance(ds)
    console = Console()
    console.print(
        f"[bold]{ds.root}[/]: {counts['total']} images, {counts['labelled']} labelled; "
        f"classes {', '.join(classes)}; roi {roi if roi else 'whole frame'}",
        soft_wrap=True,
    )
    total = max(counts["total"], 1)
    for title, key in (("label", "label"), ("sampler", "sampler")):
        table = Table(title=f"per {title}")
        table.add_column(title)
        table.add_column("images", justify="right")
        table.add_column("share", justify="right")
        for name, n in counts[key].items():
            table.add_row(str(name), str(n), f"{100 * n / total:.1f}%")
        console.print(table)
    table = Table(title="per hour of day (UTC)")
    table.add_column("hour")
    table.add_column("images", justify="right")
    table.add_column("")
    peak = max(counts["hour"].values()) or 1
    for hour, n in counts["hour"].items():
        table.add_row(f"{hour:02d}:00", str(n), "#" * round(30 * n / peak))
    console.print(table)
    console.print(_light_table(balance, classes))


def _light_table(balance: dict[str, dict[str, int]], classes: list[str]) -> Any:
    """Class balance per light condition: rows = conditions, columns = classes (+ unlabelled, all)."""
    from rich.table import Table

    columns = [*classes, *sorted({label for row in balance.values() for label in row} - set(classes))]
    table = Table(title="labels per light condition")
    table.add_column("light")
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("all", justify="right")
    for condition, row in balance.items():
        table.add_row(condition, *(str(row.get(name, 0)) for name in columns), str(sum(row.values())))
    return table


def model_summary(model_dir: str) -> list[str]:
    """Lines describing a trained model from its metrics.json: classes, input, size, MACs, CV score, advice."""
    from camlytics.metricsfile import read_metrics

    folder = pathlib.Path(model_dir).expanduser()
    metrics = read_metrics(folder)
    lines = [f"model {folder}"]
    if isinstance(metrics.get("classes"), list):
        lines.append(f"  classes: {', '.join(map(str, metrics['classes']))}")
    spec = metrics.get("input")
    if isinstance(spec, dict):
        colour = "rgb" if spec.get("color") == "rgb" else "grey"
        lines.append(f"  input: {spec.get('width')}x{spec.get('height')} {colour} from roi {spec.get('roi')} of "
                     f"{'x'.join(map(str, spec.get('source_size') or []))} frames")
    if isinstance(metrics.get("model_file_bytes"), int):
        lines.append(f"  size: {metrics['model_file_bytes']:,} bytes (model.cml)"
                     + (f", {metrics['weight_bytes']:,} bytes of int8 weights" if isinstance(metrics.get('weight_bytes'), int) else ""))
    if isinstance(metrics.get("macs"), int):
        lines.append(f"  MACs per frame: {metrics['macs']:,}")
    cv = _dig(metrics, "cv", "shipped", "mean")
    if isinstance(cv, (int, float)):
        spread = _dig(metrics, "cv", "shipped", "std")
        lines.append(f"  cross-validated balanced accuracy: {100 * cv:.2f}%"
                     + (f" (+/- {100 * spread:.2f})" if isinstance(spread, (int, float)) else ""))
    held_out = _dig(metrics, "int8", "balanced_accuracy")
    if isinstance(held_out, (int, float)):
        lines.append(f"  int8 balanced accuracy on the validation block: {100 * held_out:.2f}%")
    more = metrics.get("more_labels")
    if isinstance(more, dict) and isinstance(more.get("advice"), str):
        verdict = more.get("verdict")
        lines.append(f"  more labels? {verdict + ': ' if isinstance(verdict, str) else ''}{more['advice']}")
    return lines


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _print_model(model_dir: str) -> None:
    for line in model_summary(model_dir):
        print(line)


def run_import(args: argparse.Namespace) -> int:
    """Import a label file."""
    from camlytics.store import Dataset
    from camlytics.store.dataset import parse_classes
    from camlytics.store.labelfiles import import_labels

    classes = parse_classes(args.classes) if args.classes is not None else None
    with Dataset.open(args.dataset) as ds:
        result = import_labels(ds, args.file, annotator=args.annotator, classes=classes,
                               skip_unknown=args.skip_unknown)
    print(f"labels imported: {result.changed} changed, {result.unchanged} already set")
    if result.skipped:
        print(result.skipped_line())
    if result.classes is not None:
        print(f"classes now {', '.join(result.classes)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export the labels."""
    from camlytics.store import Dataset
    from camlytics.store.labelfiles import export_labels

    with Dataset.open(args.dataset) as ds:
        n = export_labels(ds, args.format, args.out)
    print(f"exported {n} labelled images to {args.out} ({args.format})")
    return 0


def run_repair(args: argparse.Namespace) -> int:
    """Rebuild a damaged index and say what was recovered, from where."""
    from camlytics.store.repair import repair

    result = repair(args.dataset)
    root = pathlib.Path(args.dataset)
    if result.problem is None:
        print(f"{root}: the index is sound; nothing to repair")
        return 0
    print(f"{root}: the index was {result.problem}; rebuilt it from {result.images} images")
    if result.backup is not None:
        new = result.images - result.from_backup
        print(f"  from backup {result.backup.name}: {result.from_backup} records, "
              f"classes {', '.join(result.classes)}, roi {tuple(result.roi) if result.roi else 'whole frame'}"
              + (f"; {new} images it did not know" if new else ""))
    else:
        print(f"  no readable backup in backups/: no labels recovered; classes {', '.join(result.classes)}, "
              "roi whole frame (set them again)")
    if result.time_from:
        print("  time of images no backup knows: "
              + ", ".join(f"{n} from {how}" for how, n in sorted(result.time_from.items())))
    for line in result.unreadable_backups:
        print(f"  skipped: {line}")
    if result.lost_records:
        print(f"  {result.lost_records} records of the backup ({result.lost_labels} labelled) have no image left")
    if result.bad_images:
        print(f"  {len(result.bad_images)} image files do not match their name (damaged) and were left out, e.g. "
              f"{result.bad_images[0].relative_to(root.expanduser().absolute())}")
    print(f"  labels recovered: {result.labels}")
    if result.kept_as is not None:
        print(f"  the damaged index is kept as {result.kept_as.name}")
    return 0
