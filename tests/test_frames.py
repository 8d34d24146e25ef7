"""`camlytics.frames.light_condition`: the light a frame was taken in, from the picture alone."""

from __future__ import annotations

import numpy as np
import pytest

from camlytics.frames import DIM_MAX_LUMA, NIGHT_MAX_LUMA, decode_jpeg, encode_jpeg, light_condition


def scene(brightness: float, colour: float = 1.0, size: tuple[int, int] = (90, 160)) -> np.ndarray:
    """A textured RGB picture of mean luma about `brightness`; colour=0 makes it grey."""
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.6, 1.4, size)[..., None]
    tint = 1 + colour * np.array([0.25, 0.0, -0.3])  # warm-ish: R up, B down
    return np.clip(brightness * grey * tint, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "image, expected",
    [
        (scene(140), "day"),
        (scene(60), "dim"),
        (scene(15), "night"),
        (scene(120, colour=0.0), "ir"),  # a camera in night mode sends a grey picture, bright or not
        (scene(60, colour=0.0), "ir"),
        (np.zeros((40, 60, 3), np.uint8), "night"),  # black: too dark to tell colour at all
        (np.full((40, 60), 200, np.uint8), "day"),  # (H, W) grey carries no colour: brightness only
        (np.full((40, 60), 20, np.uint8), "night"),
    ],
)
def test_light_condition_of_synthetic_pictures(image, expected):
    assert light_condition(image) == expected


def test_thresholds_are_ordered():
    assert 0 < NIGHT_MAX_LUMA < DIM_MAX_LUMA < 255


def test_survives_jpeg_and_large_frames():
    """JPEG rounding does not turn a grey picture into colour; a 1080p frame gives the same answer as a small one."""
    assert light_condition(decode_jpeg(encode_jpeg(scene(110, colour=0.0), quality=75))) == "ir"
    assert light_condition(decode_jpeg(encode_jpeg(scene(140), quality=75))) == "day"
    assert light_condition(scene(140, size=(1080, 1920))) == "day"


def test_simulated_day_and_ir_night():
    from camlytics.sources import open_source

    source = open_source("sim:office?interval=43200&width=160&height=90")  # 00:00 (IR) and 12:00 (day)
    try:
        got = {int(f.timestamp): (light_condition(f.image), f.meta["truth"]["night"]) for f in source}
    finally:
        source.close()
    assert got[0] == ("ir", True) and got[43200] == ("day", False)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4), np.uint8), [[1, 2]]]
)
def test_bad_images_are_refused_naming_what_came(bad):
    with pytest.raises(ValueError, match="light_condition needs"):
        light_condition(bad)
