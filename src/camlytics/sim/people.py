"""Rasterise a walking person (legs, torso, arms, head) into a linear-light canvas with a depth test."""

from __future__ import annotations

import math

import numpy as np

from camlytics.sim.geometry import Camera
from camlytics.sim.timeline import Look

PARTS = ("top", "bottom", "skin", "hair", "shoes")


def person_box(cam: Camera, x: float, z: float, height: float) -> tuple[int, int, int, int, float] | None:
    """Canvas bounding box (x0, y0, x1, y1) and camera distance of a person standing at (x, z)."""
    pts = np.array([[x - 0.45, 0, z], [x + 0.45, 0, z], [x - 0.45, height + 0.05, z], [x + 0.45, height + 0.05, z]])
    px, py, depth = cam.project(pts)
    if np.any(depth < 0.3):
        return None
    x0, x1 = int(math.floor(px.min())), int(math.ceil(px.max()))
    y0, y1 = int(math.floor(py.min())), int(math.ceil(py.max()))
    dist = float(np.linalg.norm(np.array([x, height * 0.6, z]) - cam.pos))
    return x0, y0, x1, y1, dist


def draw_person(canvas: np.ndarray, depth: np.ndarray, cam: Camera, x: float, z: float, walked: float, moving: bool,
                look: Look, colors: dict[str, np.ndarray]) -> bool:
    """Draw one person standing/walking at floor point (x, z); `colors` are lit linear colours per part.

    Returns whether any pixel was drawn. Pixels behind scene geometry (`depth`, distance per
    canvas pixel) stay hidden, so people behind the wall only show through the open doorway.
    """
    h = look.height
    box = person_box(cam, x, z, h)
    if box is None:
        return False
    x0, y0, x1, y1, dist = box
    H, W = canvas.shape[:2]
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x0c >= x1c or y0c >= y1c:
        return False
    (fx, hx), (fy, hy), _ = cam.project(np.array([[x, 0.0, z], [x, h, z]]))
    ax, ay = hx - fx, hy - fy
    length = math.hypot(ax, ay)
    if length < 2:
        return False
    ux, uy = ax / length, ay / length
    ppm = length / h  # pixels per metre at the person
    gx, gy = np.meshgrid(np.arange(x0c, x1c) + 0.5 - fx, np.arange(y0c, y1c) + 0.5 - fy)
    s = (gx * ux + gy * uy) / ppm  # height above the floor (m)
    w = (gx * (-uy) + gy * ux) / ppm  # sideways offset (m)
    # walking: legs and arms swing with the distance walked (stride ~1.4 m per cycle)
    phase = 2 * math.pi * walked / 1.4
    swing = math.sin(phase) if moving else 0.0
    hip, sh = 0.50 * h, 0.81 * h
    half = look.width / 2
    leg_half = 0.075
    k = np.clip((hip - s) / hip, 0, 1)
    legs = (s < hip) & (s >= 0) & (
        (np.abs(w - (-0.09 - 0.16 * swing * k)) < leg_half) | (np.abs(w - (0.09 + 0.16 * swing * k)) < leg_half)
    )
    shoes = legs & (s < 0.07)
    t_rel = np.clip((s - hip) / (sh - hip), 0, 1)
    torso_half = 0.17 + (half - 0.05 - 0.17) * t_rel
    torso = (s >= hip - 0.05) & (s < sh) & (np.abs(w) < torso_half)
    shoulder = (s >= sh - 0.06) & (s < sh + 0.035) & (np.abs(w) < half - 0.05 * (s - sh + 0.06) / 0.095)
    arm_x = half - 0.02
    arm_s = (s > 0.44 * h + 0.04 * abs(swing)) & (s < sh)
    arms = arm_s & (np.abs(np.abs(w) - arm_x) < 0.055)
    hands = (s > 0.40 * h) & (s <= 0.44 * h + 0.04 * abs(swing)) & (np.abs(np.abs(w) - arm_x) < 0.045)
    neck = (s >= sh) & (s < sh + 0.07) & (np.abs(w) < 0.055)
    hc = h - 0.115
    head = ((w / 0.085) ** 2 + ((s - hc) / 0.115) ** 2) < 1
    hair = head & ((s > hc + 0.02) | (np.abs(w) > 0.07))
    visible = dist < depth[y0c:y1c, x0c:x1c]
    # a cylinder-like shading across the body; light comes from above
    shade = (1.0 - 0.35 * np.clip(np.abs(w) / max(half, 0.1), 0, 1) ** 2) * (0.85 + 0.15 * np.clip(s / h, 0, 1))
    region = canvas[y0c:y1c, x0c:x1c]
    drawn = False
    for mask, part in ((legs, "bottom"), (shoes, "shoes"), (torso | shoulder | arms, "top"), (hands | neck | head, "skin"),
                       (hair, "hair")):
        m = mask & visible
        if m.any():
            region[m] = colors[part][None, :] * shade[m][:, None]
            drawn = True
    return drawn
