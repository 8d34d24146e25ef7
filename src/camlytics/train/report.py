"""`report.html` for a person: training curves, confusion matrices, sample predictions, sizes and MACs."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

STAGE_ORDER = ("teacher", "student", "distilled", "pruned", "int8")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt
    return plt


def plot_curves(histories: list[dict[str, Any]], path: Path) -> None:
    """Training loss and validation balanced accuracy per epoch for every stage."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for h in histories:
        epochs = np.arange(1, len(h["train_loss"]) + 1)
        ax1.plot(epochs, h["train_loss"], label=h["name"])
        ax2.plot(epochs, 100 * np.asarray(h["val_balanced_accuracy"]), label=h["name"])
    ax1.set(title="training loss", xlabel="epoch")
    ax2.set(title="validation balanced accuracy (%)", xlabel="epoch")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(confusion: list[list[int]], classes: list[str], title: str, path: Path) -> None:
    """A confusion matrix (rows true, columns predicted) with counts in the cells."""
    plt = _pyplot()
    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 1.0 + 0.9 * len(classes)))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_samples(x: np.ndarray, y: np.ndarray, pred: np.ndarray, classes: list[str], path: Path, n: int = 24) -> None:
    """Validation inputs with true and predicted class: mistakes first (red titles), then every class in turn."""
    plt = _pyplot()
    right = [list(np.flatnonzero((pred == y) & (y == c))) for c in np.unique(y)]
    interleaved = [i for group in zip(*[r + [None] * (len(y) - len(r)) for r in right]) for i in group if i is not None]
    order = np.array(list(np.flatnonzero(pred != y)) + interleaved, np.int64)[:n]
    cols = 8
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        img = x[i]
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=255)
        ok = pred[i] == y[i]
        ax.set_title(f"{classes[pred[i]]}" + ("" if ok else f"\n(true {classes[y[i]]})"), fontsize=7,
                     color="black" if ok else "red")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _candidates_html(metrics: dict[str, Any]) -> str:
    """The candidate runs and the check set, when the run had them."""
    out = ""
    cands = metrics.get("candidates") or []
    if cands:
        rows = [[c["index"], c["seed"], f"{100 * c['check_balanced_accuracy']:.2f}%",
                 f"{100 * c['val_balanced_accuracy']:.2f}%", f"{c['seconds']:.0f}", "kept" if c["chosen"] else ""]
                for c in cands]
        out += ("<h2>Candidate runs (int8 balanced accuracy)</h2><p>One whole training run per seed; kept: the best "
                "on the check set (ties: its lower log loss).</p>"
                + _table(rows, ["candidate", "seed", "check set", "validation", "seconds", ""]))
    check = metrics.get("check")
    if check:
        per_class = [[c, f"{100 * v['precision']:.1f}%", f"{100 * v['recall']:.1f}%", v["support"]]
                     for c, v in check["int8"]["per_class"].items()]
        out += (f"<h2>Check set (int8)</h2><p>{html.escape(check['dataset'])}: {html.escape(str(check['counts']))}, "
                f"never trained on; balanced accuracy {100 * check['int8']['balanced_accuracy']:.2f}%.</p>"
                + _table(per_class, ["class", "precision", "recall", "support"]))
    return out


def write_report(out: Path, metrics: dict[str, Any], x_val: np.ndarray, y_val: np.ndarray,
                 float_logits: np.ndarray, int8_logits: np.ndarray) -> Path:
    """Write report.html and its PNGs into `out`; returns the HTML path."""
    classes = metrics["classes"]
    plot_curves(metrics["histories"], out / "curves.png")
    plot_confusion(metrics["float"]["confusion"], classes, "float student", out / "confusion_float.png")
    plot_confusion(metrics["int8"]["confusion"], classes, "int8", out / "confusion_int8.png")
    plot_samples(x_val, y_val, int8_logits.argmax(1), classes, out / "samples.png")
    stages = metrics["stages"]
    stage_rows = [[name, f"{100 * s['val_balanced_accuracy']:.2f}%", s.get("macs", ""),
                   s.get("weight_bytes", s.get("params", "")), f"{s.get('seconds', 0):.1f}"]
                  for name in STAGE_ORDER if (s := stages.get(name))]
    per_class = [[c, f"{100 * v['precision']:.1f}%", f"{100 * v['recall']:.1f}%", v["support"]]
                 for c, v in metrics["int8"]["per_class"].items()]
    inp = metrics["input"]
    css = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
           "th{background:#f3f3f3}img{max-width:100%}")
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>camlytics training report</title>
<style>{css}</style></head><body>
<h1>Training report</h1>
<p>Classes: {html.escape(", ".join(classes))}. Input {inp['width']}x{inp['height']} {html.escape(inp['color'])},
ROI {html.escape(str(inp['roi']))} of {inp['source_size'][0]}x{inp['source_size'][1]} frames.
Training images per class: {html.escape(str(metrics['counts']['train']))}; validation (held-out time blocks):
{html.escape(str(metrics['counts']['val']))}.</p>
<h2>Stages (validation balanced accuracy)</h2>
{_table(stage_rows, ["stage", "balanced accuracy", "MACs", "int8 weight bytes / params", "seconds"])}
<p>Final int8 model: {metrics['macs']} MACs, {metrics['weight_bytes']} bytes of weights and biases,
model file {metrics['model_file_bytes']} bytes (budget {metrics['budget']['macs']} MACs,
{metrics['budget']['weight_bytes']} bytes). int8 and float agree on {100 * metrics['int8_float_agreement']:.1f}%
of validation images; ONNX vs PyTorch max logit difference {metrics['onnx_max_abs_diff']:.2e}.
Training took {metrics['train_seconds']:.0f} s.</p>
{_candidates_html(metrics)}
<h2>Training curves</h2><img src="curves.png" alt="training curves">
<h2>int8 per class (validation)</h2>
{_table(per_class, ["class", "precision", "recall", "support"])}
<h2>Confusion matrices (validation)</h2>
<img src="confusion_float.png" alt="float confusion"> <img src="confusion_int8.png" alt="int8 confusion">
<h2>Sample predictions (int8, mistakes first)</h2><img src="samples.png" alt="sample predictions">
</body></html>
"""
    path = out / "report.html"
    path.write_text(body, encoding="utf-8")
    return path
