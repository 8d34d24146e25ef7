"""`report.html` for a person: what shipped and why (cross-validation of every candidate), the learning curve and
whether more labels would help, out-of-fold confusion and sample predictions, training curves, sizes and MACs."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

STAGE_ORDER = ("teacher", "student", "distilled", "pruned", "pruned-distilled", "int8")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt
    return plt


def plot_curves(histories: list[dict[str, Any]], path: Path) -> None:
    """Training loss per epoch for every stage (and validation balanced accuracy where a stage had one)."""
    plt = _pyplot()
    with_val = [h for h in histories if h.get("val_balanced_accuracy")]
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(10 if with_val else 6, 3.6), squeeze=False)
    ax1 = axes[0][0]
    for h in histories:
        epochs = np.arange(1, len(h["train_loss"]) + 1)
        ax1.plot(epochs, h["train_loss"], label=h["name"])
    ax1.set(title="training loss" if histories else "training loss (the linear baseline has no epochs)", xlabel="epoch")
    if histories:
        ax1.legend(fontsize=8)
    if with_val:
        ax2 = axes[0][1]
        for h in with_val:
            ax2.plot(np.arange(1, len(h["val_balanced_accuracy"]) + 1), 100 * np.asarray(h["val_balanced_accuracy"]),
                     label=h["name"])
        ax2.set(title="validation balanced accuracy (%)", xlabel="epoch")
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


def plot_cv(candidates: dict[str, dict[str, Any]], shipped: str, path: Path) -> None:
    """Cross-validated int8 balanced accuracy of every candidate: mean, fold spread, and each fold."""
    plt = _pyplot()
    names = sorted(candidates, key=lambda n: candidates[n]["mean"])
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.2))
    for i, name in enumerate(names):
        c = candidates[name]
        ax.barh(i, 100 * c["mean"], xerr=100 * c["std"], color="#2a7" if name == shipped else "#9bc", capsize=3)
        ax.plot(100 * np.asarray(c["folds"]), [i] * len(c["folds"]), "k.", ms=4)
    lo = min(100 * min(min(c["folds"]) for c in candidates.values()), 99.0) - 1
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(xlim=(max(0, lo), 100.5), xlabel="cross-validated int8 balanced accuracy (%) - bar: mean, dots: folds",
           title=f"shipped: {shipped}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_learning_curve(curve: dict[str, Any], path: Path) -> None:
    """CV balanced accuracy against the number of training labels."""
    plt = _pyplot()
    pts = curve["points"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.errorbar([p["labels"] for p in pts], [100 * p["mean"] for p in pts], yerr=[100 * p["std"] for p in pts],
                marker="o", capsize=3)
    ax.set(xlabel="training labels per fold", ylabel="CV balanced accuracy (%)",
           title=f"learning curve ({curve['model']} baseline)")
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
        rows = [[c["index"], c["seed"], f"{100 * c['check_balanced_accuracy']:.2f}%"
                 if c["check_balanced_accuracy"] is not None else "-",
                 f"{100 * c['cv_balanced_accuracy']:.2f}%", f"{c['seconds']:.0f}", "kept" if c["chosen"] else ""]
                for c in cands]
        out += ("<h2>Candidate runs (int8 balanced accuracy)</h2><p>One whole training run per seed; kept: the best "
                "on the check set (ties: its lower log loss), or without one the best cross-validated.</p>"
                + _table(rows, ["candidate", "seed", "check set", "cross-validation", "seconds", ""]))
    check = metrics.get("check")
    if check:
        per_class = [[c, f"{100 * v['precision']:.1f}%", f"{100 * v['recall']:.1f}%", v["support"]]
                     for c, v in check["int8"]["per_class"].items()]
        out += (f"<h2>Check set (int8)</h2><p>{html.escape(check['dataset'])}: {html.escape(str(check['counts']))}, "
                f"never trained on; balanced accuracy {100 * check['int8']['balanced_accuracy']:.2f}%.</p>"
                + _table(per_class, ["class", "precision", "recall", "support"]))
    return out


def write_report(out: Path, metrics: dict[str, Any], x_oof: np.ndarray, y_oof: np.ndarray,
                 oof_pred: np.ndarray) -> Path:
    """Write report.html and its PNGs into `out` (out-of-fold inputs, labels and int8 predictions of the shipped
    recipe for the samples); returns the HTML path."""
    classes = metrics["classes"]
    cv = metrics["cv"]
    plot_cv(cv["candidates"], metrics["shipped"], out / "cv.png")
    plot_learning_curve(metrics["learning_curve"], out / "learning_curve.png")
    plot_curves(metrics["histories"], out / "curves.png")
    plot_confusion(metrics["int8"]["confusion"], classes, "int8, out of fold", out / "confusion_int8.png")
    plot_samples(x_oof, y_oof, oof_pred, classes, out / "samples.png")
    cand_rows = [[name, c["family"], f"{100 * c['mean']:.2f}%", f"{100 * c['std']:.2f}",
                  " ".join(f"{100 * v:.1f}" for v in c["folds"]), c["errors"], f"{c['log_loss']:.4f}",
                  "shipped" if name == metrics["shipped"] else ""]
                 for name, c in sorted(cv["candidates"].items(), key=lambda kv: -kv[1]["mean"])]
    stages = metrics["stages"]
    stage_rows = [[name, f"{100 * s['cv_balanced_accuracy']:.2f}%", f"{100 * s['cv_std']:.2f}", s.get("macs", ""),
                   s.get("weight_bytes", s.get("params", ""))]
                  for name in STAGE_ORDER if (s := stages.get(name))]
    per_class = [[c, f"{100 * v['precision']:.1f}%", f"{100 * v['recall']:.1f}%", v["support"]]
                 for c, v in metrics["int8"]["per_class"].items()]
    more = metrics["more_labels"]
    kinds = [[k, v] for k, v in sorted(more["errors_by_kind"].items(), key=lambda kv: -kv[1])]
    curve_rows = [[p["labels"], f"{100 * p['mean']:.2f}%", f"{100 * p['std']:.2f}"]
                  for p in metrics["learning_curve"]["points"]]
    inp = metrics["input"]
    css = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
           "th{background:#f3f3f3}img{max-width:100%}.verdict{font-size:1.1em;background:#f6f6e8;padding:.6em}")
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>camlytics training report</title>
<style>{css}</style></head><body>
<h1>Training report</h1>
<p>Classes: {html.escape(", ".join(classes))}; labels per class {html.escape(str(metrics['counts']))}.
Shipped model input {inp['width']}x{inp['height']} {html.escape(inp['color'])},
ROI {html.escape(str(inp['roi']))} of {inp['source_size'][0]}x{inp['source_size'][1]} frames.</p>
<h2>What shipped, and why</h2>
<p class="verdict"><b>{html.escape(metrics['shipped'])}</b> ({html.escape(metrics['family'])}):
{html.escape(cv['shipped']['why'])}.</p>
<p>Every candidate was scored by {cv['folds']}-fold time-block cross-validation (contiguous blocks of time, each class
split alike; fold sizes {html.escape(str(cv['fold_sizes']))}): trained on the other folds, its int8 model scored on
the held-out block. The shipped recipe was then trained on every label. The camera reports <i>unknown</i> below a
top-class probability of {metrics['min_confidence']:.2f}.</p>
<img src="cv.png" alt="cross-validation of every candidate">
{_table(cand_rows, ["candidate", "family", "CV mean", "spread", "folds (%)", "errors", "log loss", ""])}
<h2>Would more labels help?</h2>
<p class="verdict">{html.escape(more['advice'])}</p>
<img src="learning_curve.png" alt="learning curve">
{_table(curve_rows, ["training labels", "CV balanced accuracy", "spread"])}
{_table(kinds, ["out-of-fold errors: true class / light", "count"]) if kinds else ""}
<h2>CNN stages (float, cross-validated)</h2>
{_table(stage_rows, ["stage", "CV balanced accuracy", "spread", "MACs", "int8 weight bytes / params"])}
<p>Shipped int8 model: {metrics['macs']} MACs, {metrics['weight_bytes']} bytes of weights and biases,
model file {metrics['model_file_bytes']} bytes (budget {metrics['budget']['macs']} MACs,
{metrics['budget']['weight_bytes']} bytes). int8 and float agree on {100 * metrics['int8_float_agreement']:.1f}%
of the labelled images; ONNX vs PyTorch max logit difference {metrics['onnx_max_abs_diff']:.2e}.
Training took {metrics['train_seconds']:.0f} s.</p>
{_candidates_html(metrics)}
<h2>int8 per class (out of fold)</h2>
{_table(per_class, ["class", "precision", "recall", "support"])}
<img src="confusion_int8.png" alt="int8 confusion">
<h2>Sample predictions (int8, out of fold, mistakes first)</h2><img src="samples.png" alt="sample predictions">
<h2>Training curves (the CNN trained on every label)</h2><img src="curves.png" alt="training curves">
</body></html>
"""
    path = out / "report.html"
    path.write_text(body, encoding="utf-8")
    return path
