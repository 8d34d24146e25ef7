"""Pinhole camera and ray casting against rectangles (quads), vectorised over pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class Camera:
    """A pinhole camera on a canvas of (height, width) pixels; world x right, y up, z forward."""

    def __init__(self, pos, yaw: float, pitch: float, hfov: float, width: int, height: int, margin: int = 0):
        self.pos = np.asarray(pos, np.float64)
        self.width, self.height, self.margin = int(width), int(height), int(margin)
        self.cw, self.ch = self.width + 2 * self.margin, self.height + 2 * self.margin
        self.f = (self.width / 2) / math.tan(math.radians(hfov) / 2)
        self.cx, self.cy = self.cw / 2, self.ch / 2
        y, p = math.radians(yaw), math.radians(pitch)
        self.fwd = np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])
        self.right = np.array([math.cos(y), 0.0, -math.sin(y)])
        self.up = np.cross(self.fwd, self.right)

    def rays(self, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None, sub: int = 1) -> np.ndarray:
        """Unit ray directions for the canvas pixels [y0:y1, x0:x1]: (h*sub, w*sub, 3), sub x sub per pixel."""
        y1 = self.ch if y1 is None else y1
        x1 = self.cw if x1 is None else x1
        xs = (x0 + (np.arange((x1 - x0) * sub) + 0.5) / sub - self.cx) / self.f
        ys = -(y0 + (np.arange((y1 - y0) * sub) + 0.5) / sub - self.cy) / self.f
        d = (xs[None, :, None] * self.right + ys[:, None, None] * self.up + self.fwd).astype(np.float64)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canvas pixel coordinates (x, y) and forward depth of world points (N, 3)."""
        d = np.atleast_2d(pts) - self.pos
        z = dot3(d, self.fwd)
        zs = np.where(z > 1e-3, z, 1e-3)
        return self.cx + self.f * dot3(d, self.right) / zs, self.cy - self.f * dot3(d, self.up) / zs, z


@dataclass(frozen=True)
class Quad:
    """A one-sided rectangle: corner `o`, unit edges eu and ev with lengths su and sv, facing `n`."""

    o: tuple[float, float, float]
    eu: tuple[float, float, float]
    ev: tuple[float, float, float]
    su: float
    sv: float
    n: tuple[float, float, float]
    material: str  # key into the scene's material table
    zone: str = "room"  # "room" | "behind" | "door": which lights reach it

    @property
    def normal(self) -> np.ndarray:
        return np.asarray(self.n, float)

    def corners(self) -> np.ndarray:
        o, eu, ev = (np.asarray(a, float) for a in (self.o, self.eu, self.ev))
        return np.array([o, o + eu * self.su, o + ev * self.sv, o + eu * self.su + ev * self.sv])


def dot3(a: np.ndarray, v) -> np.ndarray:
    """Row-wise dot product of (N, 3) with a 3-vector (numpy's matmul is slow for such shapes)."""
    out = None
    for k in range(3):
        if v[k] != 0:
            term = a[:, k] * v[k]
            out = term if out is None else out + term
    return np.zeros(len(a), a.dtype) if out is None else out


def intersect(origin: np.ndarray, rays: np.ndarray, quad: Quad) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance along each ray to `quad` (inf where missed, or hitting its back) and the (u, v) there."""
    n = quad.normal
    rel0 = np.asarray(origin, float) - np.asarray(quad.o, float)
    denom = dot3(rays, n)
    facing = denom < -1e-9  # one-sided: only the front of a quad is seen
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(facing, -float(rel0 @ n) / np.where(facing, denom, -1.0), np.inf)
    eu, ev = np.asarray(quad.eu, float), np.asarray(quad.ev, float)
    tt = np.where(np.isfinite(t), t, 0.0)
    u = float(rel0 @ eu) + tt * dot3(rays, eu)
    v = float(rel0 @ ev) + tt * dot3(rays, ev)
    hit = facing & (t > 1e-6) & (u >= 0) & (u <= quad.su) & (v >= 0) & (v <= quad.sv)
    return np.where(hit, t, np.inf), u, v


def raycast(origin: np.ndarray, rays: np.ndarray, quads: list[Quad]):
    """Nearest quad per ray: (index (-1 = none), distance, u, v)."""
    shape = rays.shape[:-1]
    best = np.full(shape, np.inf)
    idx = np.full(shape, -1, np.int32)
    bu = np.zeros(shape)
    bv = np.zeros(shape)
    for i, q in enumerate(quads):
        t, u, v = intersect(origin, rays, q)
        closer = t < best
        best[closer] = t[closer]
        idx[closer] = i
        bu[closer] = u[closer]
        bv[closer] = v[closer]
    return idx, best, bu, bv
