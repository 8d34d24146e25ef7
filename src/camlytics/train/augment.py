"""Augmentation for a fixed camera: light, optics and compression vary; the geometry barely moves.

No flips: a door hinged on the left that swings inwards does not look like its mirror image, and
the model only ever sees this one installation. Operates on a batch of uint8 HWC images and
returns float NCHW in [0, 1] (pixel / 255), the student's input convention.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Probabilities and strengths of each augmentation (config only)."""

    brightness: float = 0.25     # additive, fraction of full scale
    contrast: float = 0.35       # multiplicative around the mean, +- fraction
    gamma: float = 0.35          # log-uniform in [1/(1+g), 1+g]
    noise: float = 0.04          # max std of Gaussian noise, fraction of full scale
    blur_p: float = 0.25         # probability of a 3x3 Gaussian blur
    jpeg_p: float = 0.25         # probability of a JPEG re-compression (quality 25..75)
    shift: float = 0.06          # max translation, fraction of the image size
    scale: float = 0.06          # max zoom in/out
    blob_p: float = 0.3          # probability of one occluding blob (a person, a bag, a reflection)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    squeeze = img.shape[2] == 1
    Image.fromarray(img[:, :, 0] if squeeze else img).save(buf, "JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return out[:, :, None] if squeeze else out


def augment_batch(images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Randomly perturbed copies of `images` (N, H, W, C uint8) as float N x C x H x W in [0, 1]."""
    n, h, w, c = images.shape
    images = images.copy()
    for i in np.flatnonzero(rng.random(n) < cfg.jpeg_p):
        images[i] = _jpeg_roundtrip(images[i], int(rng.integers(25, 76)))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0

    # Geometry: small shift and zoom (the camera is fixed; mounts settle, ROIs are drawn loosely).
    zoom = 1.0 + rng.uniform(-cfg.scale, cfg.scale, n)
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0] = zoom
    theta[:, 1, 1] = zoom
    theta[:, :, 2] = rng.uniform(-2 * cfg.shift, 2 * cfg.shift, (n, 2))  # grid units span [-1, 1]
    grid = F.affine_grid(torch.from_numpy(theta), [n, c, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Photometric: gamma, contrast, brightness (daylight, dusk, IR night mode, auto-exposure).
    gamma = np.exp(rng.uniform(-np.log1p(cfg.gamma), np.log1p(cfg.gamma), n))
    x = x.clamp(0, 1) ** torch.from_numpy(gamma).float().view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.from_numpy(1 + rng.uniform(-cfg.contrast, cfg.contrast, n)).float().view(n, 1, 1, 1)
    x = (x - mean) * contrast + mean
    x = x + torch.from_numpy(rng.uniform(-cfg.brightness, cfg.brightness, n)).float().view(n, 1, 1, 1)

    # Occluding blobs: an ellipse of a random grey level somewhere in the image.
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    for i in np.flatnonzero(rng.random(n) < cfg.blob_p):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.05, 0.2) * w
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        x[i, :, mask] = float(rng.uniform(0, 1))

    # Optics and sensor: blur, noise.
    blur = np.flatnonzero(rng.random(n) < cfg.blur_p)
    if len(blur):
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3).repeat(c, 1, 1, 1)
        idx = torch.from_numpy(blur)
        x[idx] = F.conv2d(F.pad(x[idx], (1, 1, 1, 1), mode="replicate"), kernel, groups=c)
    sigma = torch.from_numpy(rng.uniform(0, cfg.noise, n)).float().view(n, 1, 1, 1)
    x = x + sigma * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))

    # Back onto the 8-bit grid the int8 network sees.
    return torch.round(x.clamp(0, 1) * 255) / 255


def augmented_pool(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator, cfg: AugmentConfig,
                   batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """`size` augmented copies drawn class-balanced from (x, y), as uint8 (size, H, W, C) and labels.

    Every training stage draws from this one pool, so the teacher's soft targets are computed once
    per pooled image instead of once per step (distillation then costs no more than plain training).
    """
    classes = np.unique(y)
    per = -(-size // len(classes))
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=True) for c in classes])
    idx = rng.permutation(idx)[:size]
    out = np.empty((len(idx), *x.shape[1:]), np.uint8)
    for i in range(0, len(idx), batch):
        t = augment_batch(x[idx[i:i + batch]], rng, cfg)
        out[i:i + batch] = torch.round(t * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out, y[idx]
