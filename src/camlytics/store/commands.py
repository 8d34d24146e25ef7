"""CLI: `camlytics info DATASET` and `camlytics labels import|export`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` and `labels` sub-commands."""
    info = subparsers.add_parser(
        "info", help="show what a dataset holds", description="Counts per label, per sampler and per hour of day."
    )
    info.add_argument("dataset", metavar="DATASET", help="dataset directory")
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


def run_info(args: argparse.Namespace) -> int:
    """Print the dataset summary tables."""
    from rich.console import Console
    from rich.table import Table

    from camlytics.store import Dataset

    with Dataset.open(args.dataset) as ds:
        counts, classes, roi = ds.counts(), ds.classes, ds.roi
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
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import a label file."""
    from camlytics.store import Dataset
    from camlytics.store.labelfiles import import_labels

    with Dataset.open(args.dataset) as ds:
        result = import_labels(ds, args.file, annotator=args.annotator)
    print(f"labels imported: {result.changed} changed, {result.unchanged} already set")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export the labels."""
    from camlytics.store import Dataset
    from camlytics.store.labelfiles import export_labels

    with Dataset.open(args.dataset) as ds:
        n = export_labels(ds, args.format, args.out)
    print(f"exported {n} labelled images to {args.out} ({args.format})")
    return 0
