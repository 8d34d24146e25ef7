"""The demo's report.html: sampled frames, label counts, training, held-out scores, the live timeline, sizes."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from camlytics.constants import DAY
from camlytics.train.report import _pyplot, _table, plot_confusion, plot_curves

OPEN_COLOUR, CLOSED_COLOUR = "#d62728", "#2ca02c"


def _hhmm(t: float) -> str:
    t = int(t) % int(DAY)
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}"


def _thumbnail(image: np.ndarray, size: tuple[int, int], border: str | None) -> np.ndarray:
    """An RGB thumbnail, with a coloured border when `border` is given."""
    from PIL import Image, ImageColor

    thumb = np.asarray(Image.fromarray(image).resize(size, Image.BOX)).copy()
    if border:
        thumb[:4], thumb[-4:], thumb[:, :4], thumb[:, -4:] = (ImageColor.getrgb(border),) * 4
    return thumb


def plot_mosaic(samples: dict[str, tuple[int, list[tuple[np.ndarray, dict]]]], path: Path, per_row: int = 8,
                thumb: tuple[int, int] = (200, 112)) -> None:
    """For each sampler (kept count, frames evenly spread over its kept set): a grid of thumbnails with the
    time and the ground truth; open doors framed in red."""
    plt = _pyplot()
    tw, th = thumb
    cap = 18  # pixels above each thumbnail for its caption
    heights = [max(1, -(-len(frames) // per_row)) * (th + cap) for _, frames in samples.values()]
    fig, axes = plt.subplots(len(samples), 1, figsize=(per_row * tw / 100, sum(heights) / 100 + 0.5 * len(samples)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (name, (kept, frames)), height in zip(axes[:, 0], samples.items(), heights):
        canvas = np.full((height, per_row * tw, 3), 255, np.uint8)
        for j, (image, truth) in enumerate(frames):
            is_open = truth.get("state") == "open"
            y, x = (j // per_row) * (th + cap) + cap, (j % per_row) * tw
            canvas[y:y + th, x + 2:x + tw - 2] = _thumbnail(image, (tw - 4, th), OPEN_COLOUR if is_open else None)
            tags = [truth.get("state", "?")] + (["night"] if truth.get("night") else []) + \
                   (["people"] if truth.get("people") else [])
            ax.text(x + tw / 2, y - 3, f"{_hhmm(truth.get('t', 0))} {' '.join(tags)}", ha="center", va="bottom",
                    fontsize=8, color=OPEN_COLOUR if is_open else "#333333",
                    fontweight="bold" if is_open else "normal")
        ax.imshow(canvas)
        ax.axis("off")
        n_open = sum(t.get("state") == "open" for _, t in frames)
        ax.set_title(f"{name} sampler: {kept} frames kept; {len(frames)} shown, evenly spread over the day "
                     f"({n_open} of them open)", fontsize=11, fontweight="bold", loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_label_counts(truths: dict[str, list[dict]], path: Path) -> None:
    """Kept frames per condition (state / light / people) for each sampler."""
    plt = _pyplot()
    conditions = sorted({t["condition"] for ts in truths.values() for t in ts},
                        key=lambda c: (not c.startswith("open"), c))
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / max(1, len(truths))
    x = np.arange(len(conditions))
    for k, (name, ts) in enumerate(truths.items()):
        counts = Counter(t["condition"] for t in ts)
        bars = ax.bar(x + (k - (len(truths) - 1) / 2) * width, [counts[c] for c in conditions], width, label=name)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, [c.replace("/", "\n") for c in conditions], fontsize=8)
    ax.set(ylabel="frames kept", title="what each sampler kept (ground truth: door / light / people)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_timeline(live: Any, truth_t: np.ndarray, truth_open: np.ndarray, day: dict[str, Any] | None,
                  path: Path) -> None:
    """Top: the held-out day, true open periods and the int8 model on the test frames. Bottom: the live
    window, true door state against the state the edge app published over MQTT."""
    plt = _pyplot()
    panels = 2 if day is not None else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.6 * panels + 0.4), squeeze=False)
    axes = axes[:, 0]
    if day is not None:
        ax = axes[0]
        for a, b in day["open_intervals"]:
            ax.axvspan(a / 3600, b / 3600, color=OPEN_COLOUR, alpha=0.25, lw=0)
        t = np.asarray(day["times"]) / 3600
        pred, true = np.asarray(day["predicted_open"]), np.asarray(day["true_open"])
        ok = pred == true
        ax.scatter(t[ok], pred[ok] + 0.02 * np.random.default_rng(0).standard_normal(ok.sum()), s=8,
                   color="#1f77b4", label="int8 model, right")
        ax.scatter(t[~ok], pred[~ok], s=28, marker="x", color="black", label="int8 model, wrong")
        ax.set(xlim=(0, 24), ylim=(-0.3, 1.3), xlabel="hour of the held-out day",
               title=f"held-out day: true open periods (shaded) and the int8 model on {len(t)} test frames")
        ax.set_yticks([0, 1], ["closed", "open"])
        ax.set_xticks(range(0, 25, 2))
        ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax = axes[-1]
    minutes = (truth_t - live.start) / 60
    ax.fill_between(minutes, 0, truth_open.astype(float), step="post", color=OPEN_COLOUR, alpha=0.25, lw=0,
                    label="true: door open")
    if live.events:
        ts = [(e.sim_t - live.start) / 60 for e in live.events]
        states = [1.0 if e.state == "open" else 0.0 for e in live.events]
        end = (live.end - live.start) / 60
        ax.step(ts + [end], states + states[-1:], where="post", color="#1f77b4", lw=2,
                label=f"edge app state over {live.transport}")
        ax.plot(ts, states, "o", color="#1f77b4", ms=5)
    ax.set(xlim=(0, (live.end - live.start) / 60), ylim=(-0.15, 1.3),
           xlabel=f"simulated minutes after {_hhmm(live.start)} (clock at {live.speed:g}x)",
           title="live: the app on the simulated camera, true door state vs the state it published")
    ax.set_yticks([0, 1], ["closed", "open"])
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _img(name: str, alt: str) -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


def write_report(out: Path, r: dict[str, Any]) -> Path:
    """Write report.html (and the PNGs named in `r["figures"]` must already exist in `out`)."""
    metrics = r["metrics"]
    css = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
           "th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:1px 4px}")
    collect_rows = [[name, s["kept"], s["open"], f"{100 * s['open'] / max(1, s['kept']):.1f}%", s["night"],
                     s["conditions"]] for name, s in r["samplers"].items()]
    eval_rows = [[h["runtime"], h["n"], f"{100 * h['balanced_accuracy']:.2f}%", f"{100 * h['recall_open']:.1f}%",
                  f"{100 * h['recall_closed']:.1f}%", f"{h['ms_preprocess']:.2f}", f"{h['ms_infer']:.2f}", h["note"]]
                 for h in r["heldout"]]
    live = r["live"]
    event_rows = [[e["time"], e["state"], e["true_change"], e["delay_s"], e["delay_ms"]] for e in live["events"]]
    size_rows = [[k, v] for k, v in r["sizes"].items()]
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>camlytics demo report</title>
<style>{css}</style></head><body>
<h1>camlytics demo</h1>
<p>Scene preset <b>{html.escape(r['preset'])}</b>; training day seed {r['seed']}, held-out day seed {r['test_seed']}.
Total time {r['seconds']:.0f} s. Everything below was measured in this run.</p>

<h2>1. Collecting a simulated day</h2>
<p>{r['frames_seen']} frames (one every {r['interval']:g} s of the day) were rendered once and offered to both
samplers, each with a budget of {r['budget']} frames. Ground truth from the simulator:</p>
{_table(collect_rows, ["sampler", "kept", "open", "open share", "night", "conditions covered"])}
<p>The day itself is {100 * r['day_open_fraction']:.1f}% open: a time-based sampler mostly keeps a closed door.</p>
{_img('labels.png', 'label counts')}
<h3>Frames kept (evenly spread over each sampler's set; open door framed in red)</h3>
{_img('mosaic.png', 'sampled frames, smart vs time-based')}

<h2>2. Labels</h2>
<p>The kept frames of the smart sampler were labelled from the simulator's ground truth, standing in for a person
running <code>camlytics annotate {html.escape(r['dataset'])}</code>: {html.escape(str(r['labels']))}.</p>

<h2>3. Training: linear baseline and CNN, cross-validated</h2>
<p>Shipped: <b>{html.escape(metrics['shipped'])}</b>. {html.escape(metrics['cv']['shipped']['why'])}.</p>
{_table([[k, c['family'], f"{100 * c['mean']:.2f}%", f"{100 * c['std']:.2f}", f"{c['log_loss']:.4f}"]
         for k, c in sorted(metrics['cv']['candidates'].items(), key=lambda kv: -kv[1]['mean'])],
        ["candidate", "family", f"{metrics['cv']['folds']}-fold CV int8 balanced accuracy", "spread", "log loss"])}
<p>More labels? {html.escape(metrics['more_labels']['advice'])}.</p>
{_img('curves.png', 'training curves')}
<p>Full training report: <a href="model/report.html">model/report.html</a>.</p>

<h2>4. Held-out day</h2>
<p>{r['heldout_n']} frames of another simulated day (seed {r['test_seed']}): every open period sampled evenly and
closed frames at random times of day and night. {html.escape(r['agreement'])}</p>
{_table(eval_rows, ["runtime", "frames", "balanced accuracy", "open recall", "closed recall",
                    "preprocess ms/frame", "infer ms/frame", "note"])}
{"".join(_img(name, alt) for name, alt in r['confusions'])}

<h2>5. Live on the simulated camera</h2>
<p>{html.escape(live['summary'])}</p>
{_img('timeline.png', 'timeline: true door state vs the state the edge app reported')}
{_table(event_rows, ["simulated time", "published state", "true change", "delay (simulated s)", "delay (wall ms)"])}
<p>{html.escape(live['stats'])}</p>

<h2>6. Sizes and latency</h2>
{_table(size_rows, ["what", "value"])}
</body></html>
"""
    path = out / "report.html"
    path.write_text(body, encoding="utf-8")
    return path


__all__ = ["plot_mosaic", "plot_label_counts", "plot_timeline", "plot_confusion", "plot_curves", "write_report"]
