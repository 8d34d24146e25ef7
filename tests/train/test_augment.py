"""Augmentation: deterministic per seed, on the 8-bit grid, and never mirrors the scene."""

from __future__ import annotations

import numpy as np
import torch

from camlytics.train.augment import AugmentConfig, augment_batch, augmented_pool


def _left_dark_images(n: int) -> np.ndarray:
    img = np.full((n, 24, 24, 1), 200, np.uint8)
    img[:, :, :12] = 30  # a dark left half: a mirror would put it on the right
    return img


def test_output_is_float_nchw_on_the_8_bit_grid() -> None:
    x = augment_batch(_left_dark_images(8), np.random.default_rng(0), AugmentConfig())
    assert x.shape == (8, 1, 24, 24) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.equal(torch.round(x * 255) / 255, x)


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    imgs = _left_dark_images(8)
    a = augment_batch(imgs, np.random.default_rng(5), AugmentConfig())
    b = augment_batch(imgs, np.random.default_rng(5), AugmentConfig())
    c = augment_batch(imgs, np.random.default_rng(6), AugmentConfig())
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_geometry_is_never_mirrored() -> None:
    cfg = AugmentConfig(blob_p=0.0, brightness=0.0, contrast=0.0, gamma=0.0)  # keep only what could move things
    x = augment_batch(_left_dark_images(64), np.random.default_rng(1), cfg)
    left, right = x[:, :, :, :8].mean(dim=(1, 2, 3)), x[:, :, :, 16:].mean(dim=(1, 2, 3))
    assert bool((left < right).all())


def test_pool_is_class_balanced_uint8() -> None:
    imgs = _left_dark_images(40)
    y = np.array([0] * 35 + [1] * 5)
    px, py = augmented_pool(imgs, y, 200, np.random.default_rng(0), AugmentConfig())
    assert px.shape == (200, 24, 24, 1) and px.dtype == np.uint8
    assert np.bincount(py).tolist() == [100, 100]
