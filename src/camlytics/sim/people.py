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


def draw_person(canvas: np.ndarray, depth: np.ndarray, cam: Camera, x: float, z: float, walked: float,
                heading: tuple[float, float] | None, look: Look, colors: dict[str, np.ndarray]) -> bool:
    """Draw one person standing/walking at floor point (x, z); `colors` are lit linear colours per part.

    `heading` is the unit walking direction on the floor (None when standing still, facing the
    door). Seen from the side the legs and arms swing; seen from the front or back they do not,
    and from the back the head shows hair only. Pixels behind scene geometry (`depth`, distance
    per canvas pixel) stay hidden, so people behind the wall only show through the open doorway.
    Returns whether any pixel was drawn.
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
    # how much of a profile we see: 1 when walking across the view, 0 towards or away from the camera
    view = np.array([x - cam.pos[0], z - cam.pos[2]])
    view /= max(float(np.hypot(*view)), 1e-6)
    if heading is None:
        profile, towards = 0.0, False  # standing, facing the door (away from the camera)
        swing = 0.0
    else:
        profile = abs(heading[0] * view[1] - heading[1] * view[0])
        towards = heading[0] * view[0] + heading[1] * view[1] < 0
        swing = math.sin(2 * math.pi * walked / 1.4)  # one stride cycle per 1.4 m
    half = look.width / 2 * (1 - 0.4 * profile)
    hip, sh = 0.48 * h, 0.81 * h
    # legs taper from hip to ankle and swing from the hip
    k = np.clip((hip - s) / hip, 0, 1)
    leg_half = 0.055 + 0.03 * (1 - k)
    spread = 0.085 * (1 - profile)
    kick = profile * 0.24 * swing * k
    legs = (s >= 0) & (s < hip) & ((np.abs(w + spread + kick) < leg_half) | (np.abs(w - spread - kick) < leg_half))
    shoes = (s >= 0) & (s < 0.07) & (
        (np.abs(w + spread + kick) < 0.065 + 0.04 * profile) | (np.abs(w - spread - kick) < 0.065 + 0.04 * profile))
    # torso: hips, a slightly narrower waist, chest, rounded shoulders
    r = np.clip((s - hip) / (sh - hip), 0, 1)
    torso_half = np.interp(r, [0, 0.3, 0.75, 1.0], [0.16, 0.145, half - 0.03, half - 0.02]) * (1 - 0.25 * profile)
    round_top = np.sqrt(np.clip(1 - ((s - (sh - 0.09)) / 0.12) ** 2, 0, 1))
    torso_half = np.where(s > sh - 0.09, torso_half * (0.45 + 0.55 * round_top), torso_half)
    torso = (s >= hip - 0.06) & (s < sh + 0.03) & (np.abs(w) < torso_half)
    # arms hang at the sides (front view) or swing against the legs (side view)
    hand_s = 0.40 * h
    ka = np.clip((sh - s) / (sh - hand_s), 0, 1)
    arm_x = (half - 0.035) * (1 - profile)
    arm_kick = -profile * 0.2 * swing * ka
    arm_d = np.minimum(np.abs(w - arm_x - arm_kick), np.abs(w + arm_x - arm_kick))
    arms = (s > hand_s + 0.07) & (s < sh - 0.02) & (arm_d < 0.05)
    hands = (s > hand_s) & (s <= hand_s + 0.07) & (arm_d < 0.04)
    neck = (s >= sh - 0.02) & (s < sh + 0.08) & (np.abs(w) < 0.055)
    hc = h - 0.115
    head = ((w / 0.087) ** 2 + ((s - hc) / 0.115) ** 2) < 1
    hair = head & (((s > hc + 0.03) | (np.abs(w) > 0.072)) | (not towards and profile < 0.5))
    visible = dist < depth[y0c:y1c, x0c:x1c]
    # a cylinder-like shading across the body; light comes from above
    shade = (1.0 - 0.4 * np.clip(np.abs(w) / max(half, 0.1), 0, 1) ** 2) * (0.8 + 0.2 * np.clip(s / h, 0, 1))
    region = canvas[y0c:y1c, x0c:x1c]
    drawn = False
    for mask, part in ((legs, "bottom"), (shoes, "shoes"), (hands, "skin"), (arms | torso, "top"),
                       (neck | head, "skin"), (hair, "hair")):
        m = mask & visible
        if m.any():
            region[m] = colors[part][None, :] * shade[m][:, None]
            drawn = True
    return drawn
