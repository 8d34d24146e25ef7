"""The linear baseline: fitted, quantized to one int8 layer, and the same numbers on every edge runtime."""

from __future__ import annotations

import numpy as np

from camlytics.train.data import input_for_roi
from camlytics.train.linear import fit_linear
from camlytics.train.quantize import quantize


def _two_classes(n: int = 80, h: int = 12, w: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class shows as a brighter left or right half (not separable by mean brightness)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    x = rng.normal(110, 30, (n, h, w, 1))
    x[y == 0, :, : w // 2] += 25
    x[y == 1, :, w // 2:] += 25
    return np.clip(x, 0, 255).astype(np.uint8), y


def test_linear_model_learns_and_is_deterministic() -> None:
    x, y = _two_classes()
    model = fit_linear(x[:60], y[:60], 2, 1e-3)
    again = fit_linear(x[:60], y[:60], 2, 1e-3)
    import torch
    from camlytics.model.student import to_tensor
    with torch.no_grad():
        pred = model(to_tensor(x[60:])).argmax(1).numpy()
        assert torch.equal(model[0].weight, again[0].weight)
    assert (pred == y[60:]).mean() >= 0.9


def test_strong_regularisation_shrinks_the_weights() -> None:
    x, y = _two_classes()
    weak, strong = fit_linear(x, y, 2, 1e-4), fit_linear(x, y, 2, 1.0)
    assert float(strong[0].weight.detach().abs().sum()) < 0.2 * float(weak[0].weight.detach().abs().sum())


def test_the_int8_linear_model_is_one_full_input_convolution() -> None:
    """One conv2d over the whole input (the shape tests/edge/test_infer_micropython.py's "linear" models run,
    bit for bit, in every edge runtime), separating the classes like its float model."""
    from camlytics.model import int8ref

    x, y = _two_classes(h=10, w=14)
    q = quantize(fit_linear(x, y, 2, 1e-3), x, classes=["left", "right"], name="linear")
    assert [layer["op"] for layer in q.meta["layers"]] == ["conv2d"]
    assert q.meta["layers"][0]["kernel"] == [10, 14] and q.meta["layers"][0]["out_shape"] == [1, 1, 2]
    assert (int8ref.forward(q, x).argmax(1) == y).mean() >= 0.9
    assert q.meta["macs"] == 10 * 14 * 2


def test_input_shape_follows_the_roi() -> None:
    assert input_for_roi(200, 100) == (64, 32)  # wide
    assert input_for_roi(100, 200) == (32, 64)  # tall
    assert input_for_roi(150, 150) == (48, 48)  # square
    assert input_for_roi(150, 140) == (48, 40)  # the real clip's harder ROI: nearly square, not squashed
    w, h = input_for_roi(55, 99)  # the narrow glass door of issue 25: tall, upscaled where needed
    assert h > w and w % 8 == 0 and h % 8 == 0
    w, h = input_for_roi(20, 400)  # extreme: clamped to 1:4
    assert h == 4 * w or abs(h / w - 4) < 0.6


def _edge_of_a_door(n: int, offset: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images 20x40 whose class is whether a dark vertical edge 3 pixels wide (a door's edge, downscaled) starts at
    column 10 + offset (open) or not."""
    y = (np.arange(n) % 2).astype(np.int64)
    x = rng.normal(150, 6, (n, 20, 40, 1))
    x[y == 1, :, 10 + offset:13 + offset] -= 90
    return np.clip(x, 0, 255).astype(np.uint8), y


def test_shifted_copies_move_each_image_in_eight_directions() -> None:
    from camlytics.train.linear import shifted_copies

    x = np.arange(2 * 10 * 20, dtype=np.uint8).reshape(2, 10, 20, 1)
    copies = shifted_copies(x)  # 6 % of 10 and 20 rounds to 1 pixel each way
    assert copies.shape == (18, 10, 20, 1) and np.array_equal(copies[:2], x)
    moved = {tuple(map(int, np.argwhere(c[..., 0] == x[0, 5, 10, 0])[0])) for c in copies[0::2]}
    assert moved == {(5 + dy, 10 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert shifted_copies(x, 0) is x


def test_a_camera_knocked_by_a_few_pixels_does_not_flip_the_linear_model() -> None:
    """Trained on the edge at one place, the model must still see it a few pixels off (the camera moved)."""
    import torch

    from camlytics.model.student import to_tensor

    rng = np.random.default_rng(0)
    x, y = _edge_of_a_door(80, 0, rng)
    moved, truth = _edge_of_a_door(80, 3, rng)  # every frame after the knock: 3 pixels to the right
    accuracy = {}
    for shift in (0.0, 0.06):
        with torch.no_grad():
            pred = fit_linear(x, y, 2, 1e-3, shift=shift)(to_tensor(moved)).argmax(1).numpy()
        accuracy[shift] = float((pred == truth).mean())
    assert accuracy[0.06] == 1.0 and accuracy[0.0] < 0.9, accuracy
