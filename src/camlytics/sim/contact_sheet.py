"""Contact sheets of the scene presets: day/night x closed/open/person/ajar, picked from real timelines.

Usage: python -m camlytics.sim.contact_sheet [--out docs/images] [--presets office,home] [--width 640]
Each tile is a frame the timeline really produces (found by scanning the day every 10 s, trying
further seeds when a day lacks a case); its caption gives the seed, time and ground truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np

from camlytics.constants import DAY
from camlytics.sim.presets import PRESETS
from camlytics.sim.scene import Scene

COLUMNS: list[tuple[str, Callable[[dict], bool]]] = [
    ("closed", lambda tr: tr["state"] == "closed" and tr["angle"] == 0 and tr["people"] == 0),
    ("open", lambda tr: tr["state"] == "open" and tr["angle"] > 30 and tr["people"] == 0),
    ("person", lambda tr: tr["people"] > 0 and tr["occluded"]),
    ("ajar", lambda tr: 3 < tr["angle"] < 20),
]
ROWS: list[tuple[str, Callable[[dict], bool]]] = [
    ("day", lambda tr: not tr["night"] and tr["light_level"] == "day"),
    ("night", lambda tr: tr["night"]),
]


PREFERRED = {"day": 13 * 3600.0, "night": 1 * 3600.0}  # show the middle of the day / night when possible


def find_times(scene: Scene, step: float = 10.0) -> dict[tuple[str, str], float]:
    """For each (row, column) case, the matching time of the day nearest to the row's preferred hour."""
    found: dict[tuple[str, str], float] = {}
    for t in np.arange(1.0, DAY, step):
        tr = scene.truth(float(t))
        for r, rtest in ROWS:
            if not rtest(tr):
                continue
            for c, ctest in COLUMNS:
                best = found.get((r, c))
                far = lambda x: min(abs(x - PREFERRED[r]), DAY - abs(x - PREFERRED[r]))  # noqa: E731
                if ctest(tr) and (best is None or far(float(t)) < far(best)):
                    found[(r, c)] = float(t)
    return found


def caption(tr: dict, seed: int) -> str:
    hh, mm = divmod(int(tr["t"]) // 60, 60)
    return f"seed {seed} {hh:02d}:{mm:02d} {tr['state']} {tr['angle']:.0f}deg people={tr['people']}" + (
        " IR" if tr["night"] else "")


def contact_sheet(preset: str, width: int = 640, height: int = 360, tile: int = 400, seeds: int = 8) -> np.ndarray:
    """One RGB image: a row per light level, a column per door/people case."""
    from PIL import Image, ImageDraw

    th = tile * height // width
    sheet = Image.new("RGB", (tile * len(COLUMNS), (th + 16) * len(ROWS) + 20), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), f"{preset}: {PRESETS[preset].description}", fill=(230, 230, 230))
    missing = {(r, c) for r, _ in ROWS for c, _ in COLUMNS}
    for seed in range(seeds):
        if not missing:
            break
        scene = Scene(preset, seed=seed, width=width, height=height)
        for (r, c), t in find_times(scene).items():
            if (r, c) not in missing:
                continue
            missing.discard((r, c))
            x = [name for name, _ in COLUMNS].index(c) * tile
            y = 20 + [name for name, _ in ROWS].index(r) * (th + 16)
            img = Image.fromarray(scene.render(t)).resize((tile, th), Image.LANCZOS)
            sheet.paste(img, (x, y))
            draw.text((x + 4, y + th + 2), f"{r}/{c}: " + caption(scene.truth(t), seed), fill=(220, 220, 220))
    return np.asarray(sheet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/images/preset-<name>.png contact sheets.")
    parser.add_argument("--out", default="docs/images", help="output folder (default docs/images)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--width", type=int, default=640, help="render width (height = width * 9 / 16)")
    args = parser.parse_args(argv)
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.presets.split(","):
        if name not in PRESETS:
            parser.error(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        path = out / f"preset-{name}.png"
        Image.fromarray(contact_sheet(name, args.width, args.width * 9 // 16)).save(path, optimize=True)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
