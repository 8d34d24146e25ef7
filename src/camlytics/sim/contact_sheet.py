"""Contact sheets of the scene presets: day/night x common/rare state/person/ajar, picked from real timelines.

Usage: python -m camlytics.sim.contact_sheet [--out docs/images] [--presets office,home] [--width 640] [--tile 400]
[--roi]
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

ROWS: list[tuple[str, Callable[[dict], bool]]] = [
    ("day", lambda tr: not tr["night"] and tr["light_level"] == "day"),
    ("night", lambda tr: tr["night"]),
]


def columns(preset: str) -> list[tuple[str, Callable[[dict], bool]]]:
    """The sheet's columns for a preset, named by its classes: common state, rare state, person, near the threshold."""
    common, rare = PRESETS[preset].classes
    hideable = PRESETS[preset].door_w < 2.0  # nobody hides a 3 m roller door: show any person there
    return [
        (common, lambda tr: tr["state"] == common and tr["angle"] == 0 and tr["people"] == 0),
        (rare, lambda tr: tr["state"] == rare and tr["angle"] > 30 and tr["people"] == 0),
        ("person", lambda tr: tr["people"] > 0 and (tr["occluded"] or not hideable)),
        ("ajar" if PRESETS[preset].spot is None else "nearby", lambda tr: 3 < tr["angle"] < 20),
    ]


def rows(preset: str) -> list[tuple[str, Callable[[dict], bool]]]:
    """Day and night rows; a camera held in IR all day shows its IR daytime in the day row."""
    if PRESETS[preset].ir_always:
        return [("day", lambda tr: tr["light_level"] == "day"), ("night", lambda tr: tr["light_level"] == "night")]
    return ROWS


PREFERRED = {"day": 13 * 3600.0, "night": 1 * 3600.0}  # show the middle of the day / night when possible


def find_times(scene: Scene, step: float = 10.0) -> dict[tuple[str, str], float]:
    """For each (row, column) case, the matching time of the day nearest to the row's preferred hour."""
    found: dict[tuple[str, str], float] = {}
    cols, row_tests = columns(scene.preset_name), rows(scene.preset_name)
    for t in np.arange(1.0, DAY, step):
        tr = scene.truth(float(t))
        for r, rtest in row_tests:
            if not rtest(tr):
                continue
            for c, ctest in cols:
                best = found.get((r, c))
                far = lambda x: min(abs(x - PREFERRED[r]), DAY - abs(x - PREFERRED[r]))  # noqa: E731
                if ctest(tr) and (best is None or far(float(t)) < far(best)):
                    found[(r, c)] = float(t)
    return found


def caption(tr: dict, seed: int) -> str:
    hh, mm = divmod(int(tr["t"]) // 60, 60)
    return f"seed {seed} {hh:02d}:{mm:02d} {tr['state']} {tr['angle']:.0f}deg people={tr['people']}" + (
        " IR" if tr["night"] else "")


def contact_sheet(preset: str, width: int = 640, height: int = 360, tile: int = 400, seeds: int = 8,
                  roi: bool = False) -> np.ndarray:
    """One RGB image: a row per light level, a column per state/people case (`roi`: outline the watched ROI)."""
    from PIL import Image, ImageDraw

    th = tile * height // width
    col_names, row_names = [c for c, _ in columns(preset)], [r for r, _ in rows(preset)]
    sheet = Image.new("RGB", (tile * len(col_names), (th + 16) * len(row_names) + 20), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), f"{preset}: {PRESETS[preset].description}", fill=(230, 230, 230))
    missing = {(r, c) for r in row_names for c in col_names}
    for seed in range(seeds):
        if not missing:
            break
        scene = Scene(preset, seed=seed, width=width, height=height)
        for (r, c), t in find_times(scene).items():
            if (r, c) not in missing:
                continue
            missing.discard((r, c))
            x = col_names.index(c) * tile
            y = 20 + row_names.index(r) * (th + 16)
            img = Image.fromarray(scene.render(t)).resize((tile, th), Image.LANCZOS)
            if roi:
                k = tile / width
                x0, y0, x1, y1 = scene.door_roi
                ImageDraw.Draw(img).rectangle((x0 * k, y0 * k, x1 * k - 1, y1 * k - 1), outline=(255, 60, 40))
            sheet.paste(img, (x, y))
            draw.text((x + 4, y + th + 2), f"{r}/{c}: " + caption(scene.truth(t), seed), fill=(220, 220, 220))
    return np.asarray(sheet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/images/preset-<name>.png contact sheets.")
    parser.add_argument("--out", default="docs/images", help="output folder (default docs/images)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--width", type=int, default=640, help="render width (height = width * 9 / 16)")
    parser.add_argument("--tile", type=int, default=400, help="tile width in the sheet (default 400)")
    parser.add_argument("--roi", action="store_true", help="outline the watched ROI on each tile")
    parser.add_argument("--palette", action="store_true", help="save with 256 colours (a third of the file size)")
    args = parser.parse_args(argv)
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.presets.split(","):
        if name not in PRESETS:
            parser.error(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        path = out / f"preset-{name}.png"
        sheet = contact_sheet(name, args.width, args.width * 9 // 16, tile=args.tile, roi=args.roi)
        image = Image.fromarray(sheet)
        (image.quantize(256) if args.palette else image).save(path, optimize=True)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
