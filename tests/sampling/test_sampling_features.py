"""Features the samplers compare: HOG ignores brightness but sees shapes; colour histograms see lighting."""

from __future__ import annotations

import numpy as np

from camlytics.frames import Frame
from camlytics.sampling.features import FrameView, color_histogram, hog_cells
from camlytics.sampling.novelty import color_vector, hog_vector


def stripes(vertical: bool, level: float = 1.0, size=(96, 160)) -> np.ndarray:
    """A grey image of stripes 8 px wide, scaled by `level`."""
    h, w = size
    axis = np.arange(w if vertical else h) // 8 % 2 * 150 + 50
    img = np.broadcast_to(axis[None, :] if vertical else axis[:, None], (h, w)).astype(np.float32)
    return img * level


def test_hog_is_brightness_invariant_but_sees_orientation():
    bright, dim = hog_cells(stripes(True)), hog_cells(stripes(True, 0.5))
    turned = hog_cells(stripes(False))
    assert bright.shape == (12, 20, 9)
    assert np.abs(bright - dim).max() < 0.08
    assert np.abs(bright - turned).mean() > 10 * np.abs(bright - dim).mean()


def test_hog_of_a_flat_image_is_near_zero():
    noise = np.random.default_rng(0).normal(100, 1.0, (64, 64)).astype(np.float32)
    assert np.linalg.norm(hog_cells(noise), axis=2).max() < 0.2  # sensor noise is not amplified to an edge


def test_colour_histograms_sum_to_one_each_and_move_with_lighting():
    rgb = np.random.default_rng(1).integers(0, 200, (90, 160, 3)).astype(np.float32)
    h = color_histogram(rgb)
    assert h.shape == (64 + 16,) and np.isclose(h[:64].sum(), 1) and np.isclose(h[64:].sum(), 1)
    day = Frame(rgb.astype(np.uint8), 0.0, "t")
    night = Frame((rgb * 0.3).astype(np.uint8), 0.0, "t")
    d_same = np.linalg.norm(color_vector(FrameView(day)) - color_vector(FrameView(day)))
    d_dark = np.linalg.norm(color_vector(FrameView(day)) - color_vector(FrameView(night)))
    assert d_same == 0 and 0.3 < d_dark <= 1.0


def test_frame_view_crops_the_roi_and_shrinks_the_frame():
    img = np.zeros((360, 640, 3), np.uint8)
    img[100:200, 300:400] = 255
    view = FrameView(Frame(img, 0.0, "t"), roi=(300, 100, 400, 200))
    assert view.small_rgb.shape == (90, 160, 3) and view.grey.shape == (90, 160)
    assert view.roi_grey.shape == (64, 64) and view.roi_grey.min() > 250
    assert hog_vector(view).shape == (8 * 8 * 9,)
    outside = FrameView(Frame(img, 0.0, "t"), roi=(700, 400, 800, 500))  # clipped away: whole frame
    assert outside.roi is None and outside.roi_grey.shape == (90, 160)


def test_look_vectors_match_within_noise_and_differ_when_the_region_or_the_light_changes():
    from camlytics.sampling.novelty import FeatureMemory, look_vector

    rng = np.random.default_rng(2)
    base = rng.integers(40, 200, (96, 160, 3)).astype(np.float32)
    roi = (40, 16, 104, 80)

    def look(img: np.ndarray) -> np.ndarray:
        return look_vector(FrameView(Frame(np.clip(img, 0, 255).astype(np.uint8), 0.0, "t"), roi=roi))

    noisy = base + rng.normal(0, 2, base.shape)
    changed = base.copy()
    changed[16:80, 40:104] = 20  # the door region turns dark and flat: its shapes change
    memory = FeatureMemory(8)
    for _ in range(3):
        memory.add(look(base))
    assert memory.count_within(look(noisy), 1.0) == 3  # sensor noise: the same look
    assert memory.count_within(look(changed), 1.0) == 0
    assert memory.count_within(look(base * 0.4), 1.0) == 0  # the same shapes in another light


def test_motion_share_in_a_box_counts_only_changes_inside_it():
    from camlytics.sampling.motion import MotionDetector

    img = np.random.default_rng(3).integers(80, 120, (96, 160, 3)).astype(np.uint8)
    moved = img.copy()
    moved[8:40, 16:48] = 250  # something bright appears in the top-left corner
    detector = MotionDetector()
    for t, frame in enumerate((img, img, moved)):
        detector.update(FrameView(Frame(frame, float(t), "t")))
    assert detector.share_in((0.0, 0.0, 0.35, 0.45)) > 0.3
    assert detector.share_in((0.5, 0.5, 1.0, 1.0)) == 0.0
