"""The simulated camera view of a door: a procedurally rendered room with ground truth per frame.

`Scene(preset, seed, width, height)` precomputes the static room once (ray-cast geometry,
textures, one light map per light source, vignette) and renders frames as cheap weighted sums of
those maps plus the door (cached per quantised angle), people, shadows, auto-exposure, sensor
noise, IR night mode and camera shake. `render(t)` is a pure function of (preset, seed, size, t).
What is watched depends on the preset's `door_kind`: one hinged leaf, two leaves, a glass leaf (the
space behind shows through, the room is mirrored faintly in it), a roller curtain, or a car in a
parking bay; presets may add effects (rain, fog, headlights, focus hunting, a camera knocked aside).
"""

from __future__ import annotations

import math
import numbers
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from camlytics.constants import DAY
from camlytics.errors import SourceError
from camlytics.frames import Frame, encode_jpeg
from camlytics.sim import lighting
from camlytics.sim.geometry import Camera, Quad, intersect, raycast
from camlytics.sim.people import draw_person
from camlytics.sim.presets import PRESETS, Material, Preset
from camlytics.sim.textures import fbm, texture
from camlytics.sim.timeline import OPEN_ANGLE, Timeline

MARGIN = 3  # extra canvas pixels on each side, so camera shake never shows an edge
SHIFT_MAX = 5  # pixels (at 640 wide) a knocked camera moves at most; presets with "shift" get that much more margin
KEY = 0.20  # auto-exposure target: mean linear luminance of the exposed image
KEY_IR = 0.11  # in IR mode: exposed for the bright centre of the IR beam, the rest falls off
EXPOSURE_TAU = 2.0  # seconds the auto-exposure takes to follow a change in light
GRID = 0.5  # seconds between samples of the precomputed light/exposure curves
LUT_SCALE = 2048.0  # tone curve entries per unit of sqrt(exposure): covers exposures up to 4
SHOT_NOISE = 0.012  # photon noise: sd of exposure = sqrt(SHOT_NOISE^2 * gain * exposure)
READ_NOISE = 0.0012  # sensor read noise (sqrt-domain sd per unit of gain), dominant in the dark
ZONES = {"room": 0, "behind": 1, "door": 2}
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
POSTER = Material("poster", (0.5, 0.5, 0.5), roughness=0.02, ir=0.6)
MAX_HELD_ANGLE = 100.0  # degrees, for render's door_angle (a day's door opens to at most 92)
DOOR_CACHE = 24  # door leaf renders kept (each a few MB at 1280x720); a day mostly needs angle 0
SUN_POWER = 2.5  # direct sunlight, relative to the window's sky radiance
PENUMBRA = [(dx, 0.0, dz) for dx in (-0.3, -0.1, 0.1, 0.3) for dz in (-0.25, 0.25)]
METAL = np.array([0.45, 0.45, 0.46], np.float32)
DARK_GLASS = Material("paint", (0.025, 0.03, 0.035), roughness=0.01, ir=0.08, gloss=0.6)  # car windows
SHADOW = Material("paint", (0.0, 0.0, 0.0), roughness=0.0, ir=0.0)  # a car's contact shadow
GLASS_OPACITY = 0.16  # share of the light behind a glass pane that it blocks (tint, dirt)
GLASS_REFLECT = 0.10  # share of the room's light a glass pane mirrors back to the camera
SHADOW_OPACITY = 0.5
ROLLER_TOP = 0.96  # share of its height a roller curtain rises at most (the rest stays in the guides)
CAR_LEN, CAR_WID = 4.3, 1.8  # metres
CAR_NEAR, CAR_AWAY = 2.1, 5.0  # metres the car is out of its bay at the open threshold, and further at angle 0+
FOG_DIST = 9.0  # metres over which dense fog hides ~63 % of the scene
HEADLIGHT = 4.0  # irradiance of a passing car's headlights at the peak of the sweep


@dataclass
class _Layer:
    """Pixels (flat canvas indices) with per-light-source radiance: colour (K, n, 3) and grey (K+1, n).

    `cover` (n,) is the fraction of each pixel the layer covers (its radiance is premultiplied by
    it); None means whole pixels.
    """

    idx: np.ndarray
    dist: np.ndarray
    rgb: np.ndarray
    grey: np.ndarray
    cover: np.ndarray | None = None


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance of linear RGB along the last axis."""
    return (rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]).astype(np.float32)


def _soften(maps: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 blur along the two image axes of (K, H, W[, C]) maps, edges repeated."""
    out = maps.astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (1, 1)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        take = lambda a, b: padded.take(np.arange(a, a + n), axis=axis)  # noqa: E731
        out = 0.25 * take(0, n) + 0.5 * take(1, n) + 0.25 * take(2, n)
    return out.astype(np.float32)


def _weighted_sum(stack: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_k w[k] * stack[k] (numpy's matmul is slow for so few rows, so add up in place)."""
    out = stack[0] * w[0]
    for k in range(1, len(w)):
        if w[k]:
            out += stack[k] * w[k]
    return out


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, material: str, zone: str) -> list[Quad]:
    """The five outward faces (no bottom) of an axis-aligned box."""
    X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    return [
        Quad((x0, y0, z0), X, Y, dx, dy, (0.0, 0.0, -1.0), material, zone),
        Quad((x0, y0, z1), X, Y, dx, dy, Z, material, zone),
        Quad((x0, y0, z0), Z, Y, dz, dy, (-1.0, 0.0, 0.0), material, zone),
        Quad((x1, y0, z0), Z, Y, dz, dy, X, material, zone),
        Quad((x0, y1, z0), X, Z, dx, dz, Y, material, zone),
    ]


def _tone_lut(size: int = 4096) -> np.ndarray:
    """Camera response indexed by sqrt(exposure) * LUT_SCALE -> sRGB-like uint8 with a soft shoulder."""
    x = ((np.arange(size, dtype=np.float64) + 0.5) / LUT_SCALE) ** 2
    white = 2.5
    y = x * (1 + x / white**2) / (1 + x)
    y = np.clip(y, 0, 1) ** (1 / 2.2)
    return np.round(y * 255).astype(np.uint8)


class Scene:
    """A fixed camera installation (`preset`) on one simulated day (`seed`), rendered at width x height."""

    def __init__(self, preset: str | Preset = "office", seed: int = 0, width: int = 640, height: int = 360) -> None:
        if not isinstance(preset, Preset) and preset not in PRESETS:
            raise SourceError(f"unknown scene preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
        if not (isinstance(seed, (int, np.integer)) and 0 <= int(seed) < 2**32):
            raise SourceError(f"scene seed must be an integer in [0, 2**32), got {seed!r}")
        for name, v, lo, hi in (("width", width, 64, 4096), ("height", height, 48, 4096)):
            if not (isinstance(v, (int, np.integer)) and lo <= int(v) <= hi):
                raise SourceError(f"scene {name} must be an integer in [{lo}, {hi}], got {v!r}")
        # a Preset itself (a variant of an installation, e.g. without its effects) lives the same day as its name
        self.preset: Preset = preset if isinstance(preset, Preset) else PRESETS[preset]
        self.preset_name = self.preset.name
        self.seed = int(seed)
        self.width, self.height = int(width), int(height)
        p = self.preset
        self._key = (self.seed, zlib.crc32(self.preset_name.encode()))
        self.timeline = Timeline(p, self.seed)
        self._margin = MARGIN + (self._scaled_px(SHIFT_MAX) if "shift" in p.effects else 0)
        # the view is framed for 16:9; other aspect ratios keep the horizontal field of view
        self.camera = Camera(p.cam_pos, p.cam_yaw, p.cam_pitch, p.cam_hfov, self.width, self.height, self._margin)
        self._materials = {
            "floor": p.floor, "walls": p.walls, "ceiling": p.ceiling, "frame": p.frame, "skirting": p.skirting,
            "behind_floor": p.behind_floor, "behind_walls": p.behind_walls, "poster": POSTER, "door": p.door,
            "door_glass": DARK_GLASS, "shadow": SHADOW,
        }
        self._fx_cache: dict[str, np.ndarray] = {}  # effect maps, built the first time an effect shows
        self._build_lights()
        self._vignette = self._make_vignette()
        self._build_static()
        self._door_cache: OrderedDict[float, _Layer] = OrderedDict()
        self._lock = threading.Lock()  # the simulated camera renders from several server threads
        self._lut = _tone_lut()
        self._build_curves()
        self._noise_bank = self._make_noise_bank()
        self.door_roi = self._door_roi()

    def _scaled_px(self, px: float) -> int:
        """`px` pixels at 640 wide, at this scene's width (at least 1): camera moves are angles."""
        return max(1, int(round(px * self.width / 640)))

    # ---- geometry -----------------------------------------------------------------------------

    def _room_quads(self) -> list[Quad]:
        p = self.preset
        w2, d, h, wt = p.width / 2, p.depth, p.height, p.wall_thickness
        x0, x1, dh = p.door_x, p.door_x + p.door_w, p.door_h
        fr, eps, sk = 0.075, 0.012, 0.09
        X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
        neg = lambda v: tuple(-c for c in v)  # noqa: E731
        zb0, zb1, bw = d + wt, d + wt + p.behind_depth, p.width + 12
        q = [
            Quad((-w2, 0, -1.5), X, Z, p.width, d + 1.5, Y, "floor"),
            Quad((-w2, h, -1.5), X, Z, p.width, d + 1.5, neg(Y), "ceiling"),
            Quad((-w2, 0, -1.5), Z, Y, d + 1.5, h, X, "walls"),
            Quad((w2, 0, -1.5), Z, Y, d + 1.5, h, neg(X), "walls"),
            Quad((-w2, 0, d), X, Y, x0 + w2, h, neg(Z), "walls"),
            Quad((x1, 0, d), X, Y, w2 - x1, h, neg(Z), "walls"),
            Quad((x0, dh, d), X, Y, p.door_w, h - dh, neg(Z), "walls"),
            # architrave around the doorway, standing slightly proud of the wall
            Quad((x0 - fr, 0, d - eps), X, Y, fr, dh + fr, neg(Z), "frame"),
            Quad((x1, 0, d - eps), X, Y, fr, dh + fr, neg(Z), "frame"),
            Quad((x0, dh, d - eps), X, Y, p.door_w, fr, neg(Z), "frame"),
            # the reveal: inside faces of the doorway through the wall thickness
            Quad((x0, 0, d), Z, Y, wt, dh, X, "frame", "door"),
            Quad((x1, 0, d), Z, Y, wt, dh, neg(X), "frame", "door"),
            Quad((x0, dh, d), X, Z, p.door_w, wt, neg(Y), "frame", "door"),
            # skirting boards
            Quad((-w2 + eps / 2, 0, -1.5), Z, Y, d + 1.5, sk, X, "skirting"),
            Quad((w2 - eps / 2, 0, -1.5), Z, Y, d + 1.5, sk, neg(X), "skirting"),
            Quad((-w2, 0, d - eps / 2), X, Y, x0 - fr + w2, sk, neg(Z), "skirting"),
            Quad((x1 + fr, 0, d - eps / 2), X, Y, w2 - x1 - fr, sk, neg(Z), "skirting"),
            # the space behind the door
            Quad((-w2 - 6, 0, zb0), X, Z, bw, p.behind_depth, Y, "behind_floor", "behind"),
            Quad((-w2 - 6, p.behind_height, zb0), X, Z, bw, p.behind_depth, neg(Y), "ceiling", "behind"),
            Quad((-w2 - 6, 0, zb1), X, Y, bw, p.behind_height, neg(Z), "behind_walls", "behind"),
            Quad((-w2 - 6, 0, zb0), Z, Y, p.behind_depth, p.behind_height, X, "behind_walls", "behind"),
            Quad((w2 + 6, 0, zb0), Z, Y, p.behind_depth, p.behind_height, neg(X), "behind_walls", "behind"),
            Quad((-w2 - 6, 0, zb1 - eps / 2), X, Y, bw, sk, neg(Z), "skirting", "behind"),
            Quad((x0 + 0.25 * p.door_w, 0.95, zb1 - eps), X, Y, 0.62, 0.85, neg(Z), "poster", "behind"),
        ]
        if p.door_kind == "roller":  # the box the curtain rolls into, above the doorway on the room side
            hx, hw, hy = x0 - 0.2, p.door_w + 0.4, dh + 0.05
            q.append(Quad((hx, hy, d - 0.45), X, Y, hw, 0.55, neg(Z), "frame"))
            q.append(Quad((hx, hy, d - 0.45), X, Z, hw, 0.45, neg(Y), "frame"))
        wz0, wz1 = p.window_z
        wy0, wy1 = p.window_y
        if p.window_side == "left":
            q.append(Quad((-w2 + eps, wy0, wz0), Z, Y, wz1 - wz0, wy1 - wy0, X, "window"))
        else:
            q.append(Quad((w2 - eps, wy0, wz0), Z, Y, wz1 - wz0, wy1 - wy0, neg(X), "window"))
        return q

    def _door_quads(self, angle: float) -> list[Quad]:
        """What is watched, at `angle`: the door leaf or leaves, the roller curtain, or the car."""
        p = self.preset
        if p.door_kind == "roller":
            return self._roller_quads(angle)
        if p.door_kind == "car":
            return self._car_quads(angle)
        if p.door_kind == "double":
            half = p.door_w / 2
            return self._leaf_quads(angle, p.door_x, 1.0, half) + self._leaf_quads(angle, p.door_x + p.door_w, -1.0,
                                                                                    half)
        s = 1.0 if p.hinge == "left" else -1.0  # direction from hinge to free edge when closed
        xh = p.door_x if p.hinge == "left" else p.door_x + p.door_w
        return self._leaf_quads(angle, xh, s, p.door_w)

    @property
    def _leaf_w(self) -> float:
        p = self.preset
        return p.door_w / 2 if p.door_kind == "double" else p.door_w

    def _roller_quads(self, angle: float) -> list[Quad]:
        """The roller curtain raised by angle/90 of its travel; its texture rises with it (origin at its bottom)."""
        p = self.preset
        y0 = min(angle / 90.0, 1.0) * ROLLER_TOP * p.door_h
        z = p.depth - 0.06
        return [Quad((p.door_x - 0.1, y0, z), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), p.door_w + 0.2, p.door_h + 0.05 - y0,
                     (0.0, 0.0, -1.0), "door", "door")]

    def _car_quads(self, angle: float) -> list[Quad]:
        """A car box backing into the bay: absent at 0, more than half in the bay past OPEN_ANGLE, parked at 90."""
        if angle <= 0:
            return []
        x0, x1, z0, z1 = self.preset.spot
        if angle >= OPEN_ANGLE:
            off = CAR_NEAR * (90.0 - min(angle, 90.0)) / (90.0 - OPEN_ANGLE)
        else:
            off = CAR_NEAR + (OPEN_ANGLE - angle) / OPEN_ANGLE * CAR_AWAY
        cx, cz = (x0 + x1) / 2, (z0 + z1) / 2 - off
        hl, hw = CAR_LEN / 2, CAR_WID / 2
        shadow = Quad((cx - hw - 0.15, 0.005, cz - hl - 0.15), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), CAR_WID + 0.3,
                      CAR_LEN + 0.3, (0.0, 1.0, 0.0), "shadow", "door")
        body = _box(cx - hw, cx + hw, 0.2, 0.9, cz - hl, cz + hl, "door", "door")
        cabin = _box(cx - hw + 0.12, cx + hw - 0.12, 0.9, 1.4, cz - hl + 1.1, cz + hl - 0.9, "door_glass", "door")
        return [shadow, *body, *cabin]

    def _leaf_quads(self, angle: float, xh: float, s: float, width: float) -> list[Quad]:
        """A door leaf (a thin box) of `width` hinged at x = xh, closing towards direction s, swung by `angle`."""
        p = self.preset
        sigma = 1.0 if p.swing == "out" else -1.0
        rho = math.radians(angle) * s * sigma
        th = p.door_thickness
        pivot_z = p.depth + p.wall_thickness if p.swing == "out" else p.depth
        direction = np.array([s * math.cos(math.radians(angle)), 0.0, sigma * math.sin(math.radians(angle))])
        n = np.array([math.sin(rho), 0.0, -math.cos(rho)])  # outward normal of the room-side face
        pivot = np.array([xh, 0.0, pivot_z])
        front = pivot + (th * n if p.swing == "out" else 0.0)
        back = front - th * n
        w, h = width - 0.006, p.door_h - 0.004
        up = np.array([0.0, 1.0, 0.0])
        t = lambda a: tuple(float(c) for c in a)  # noqa: E731
        return [
            Quad(t(front), t(direction), t(up), w, h, t(n), "door", "door"),
            Quad(t(back), t(direction), t(up), w, h, t(-n), "door", "door"),
            Quad(t(front + direction * w), t(-n), t(up), th, h, t(direction), "door_edge", "door"),
            Quad(t(front), t(-n), t(up), th, h, t(-direction), "door_edge", "door"),
            Quad(t(front + up * h), t(direction), t(-n), w, th, t(up), "door_edge", "door"),
        ]

    # ---- lights and shading -------------------------------------------------------------------

    def _build_lights(self) -> None:
        p = self.preset
        w2 = p.width / 2
        wz0, wz1 = p.window_z
        wy0, wy1 = p.window_y
        x = -w2 if p.window_side == "left" else w2
        self._win_normal = np.array([1.0 if p.window_side == "left" else -1.0, 0, 0])
        zz, yy = np.meshgrid(np.linspace(wz0, wz1, 5)[1:-1] if wz1 - wz0 < 2 else np.linspace(wz0, wz1, 6)[1:-1],
                             np.linspace(wy0, wy1, 4)[1:-1])
        self._win_samples = np.stack([np.full(zz.size, x), yy.ravel(), zz.ravel()], 1)
        self._win_area = (wz1 - wz0) * (wy1 - wy0)
        lamp_total = sum(np.array(lp.color) * lp.power for lp in p.lamps)
        behind_total = sum(np.array(lp.color) * lp.power for lp in p.behind_lamps)
        self._amb_day = p.ambient * p.daylight_power * self._win_area * 0.12
        self._amb_lamp = p.ambient * lamp_total * 0.25
        self._amb_behind = p.ambient * behind_total * 0.5
        self._doorway = (p.door_x, p.door_x + p.door_w, 0.0, p.door_h)

    def _through_doorway(self, pts: np.ndarray, light, grow: float = 0.0) -> np.ndarray:
        """Whether the segments from `pts` to `light` pass through the doorway (grown by `grow` m)."""
        p = self.preset
        x0, x1, y0, y1 = self._doorway
        x0, x1, y1 = x0 - grow, x1 + grow, y1 + grow
        return lighting.through_opening(pts, light, p.depth, x0, x1, y0, y1) & lighting.through_opening(
            pts, light, p.depth + p.wall_thickness, x0, x1, y0, y1)

    def _irradiance(self, pts: np.ndarray, normals: np.ndarray, zone: np.ndarray) -> dict[str, np.ndarray]:
        """Per light source irradiance at points: day (N,), lamp (N,3), behind (N,3), spill (N,3), ir (N,)."""
        p = self.preset
        n = len(pts)
        room, behind, door = zone == 0, zone == 1, zone == 2
        lit_by_room = room | door
        day = np.zeros(n)
        if lit_by_room.any():
            day[lit_by_room] = lighting.area_light(pts[lit_by_room], normals[lit_by_room], self._win_samples,
                                                   self._win_normal, p.daylight_power, self._win_area)
        day += np.where(behind, 0.7, 1.0) * self._amb_day  # the space behind has windows of its own
        lamp = np.zeros((n, 3))
        behind_rgb = np.zeros((n, 3))
        spill = np.zeros((n, 3))
        for lp in p.lamps:
            e = lighting.point_light(pts, normals, lp.pos, lp.power)
            if behind.any():  # room lamps reach the space behind only through the doorway
                e[behind] *= self._through_doorway(pts[behind], lp.pos)
            lamp += e[:, None] * np.array(lp.color)
        lamp += np.where(behind, 0.15, 1.0)[:, None] * self._amb_lamp
        for lp in p.behind_lamps:
            e = lighting.point_light(pts, normals, lp.pos, lp.power)
            behind_rgb += (e * (behind | door))[:, None] * np.array(lp.color)
            # the lamp is a fitting, not a point: sampling it gives the doorway's light a soft edge
            # (candidates first: points that see the lamp's centre through a slightly larger doorway)
            cand = np.flatnonzero(room & self._through_doorway(pts, lp.pos, grow=0.6))
            through = np.mean([self._through_doorway(pts[cand], np.add(lp.pos, off)) for off in PENUMBRA], axis=0)
            spill[cand] += (e[cand] * through)[:, None] * np.array(lp.color)
        behind_rgb += np.where(behind, 1.0, np.where(door, 0.3, 0.0))[:, None] * self._amb_behind
        ir = lighting.ir_light(pts, normals, self.camera.pos, self.camera.fwd, p.ir_power, p.ir_reach)
        ir += 0.01 * p.ir_power
        return {"day": day, "lamp": lamp, "behind": behind_rgb, "spill": spill, "ir": ir}

    def _highlights(self, pts, normals, zone, gloss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Specular highlights of the window, the room lamps and the lamps behind, on glossy points."""
        n = len(pts)
        day, lamp, behind = np.zeros(n), np.zeros((n, 3)), np.zeros((n, 3))
        shiny = np.flatnonzero(gloss > 0)
        if not len(shiny):
            return day, lamp, behind
        p, P, N, z = self.preset, pts[shiny], normals[shiny], zone[shiny]
        view = self.camera.pos - P
        view /= np.linalg.norm(view, axis=1)[:, None]
        in_room, in_behind = z != 1, z != 0
        per_sample = p.daylight_power * self._win_area / len(self._win_samples) * 1.4
        for s_pt in self._win_samples:  # a bright window reflects as a sheen on varnish or polish
            day[shiny] += in_room * lighting.specular(P, N, view, s_pt, per_sample, 25.0)
        for lp in p.lamps:
            lamp[shiny] += (in_room * lighting.specular(P, N, view, lp.pos, lp.power))[:, None] * np.array(lp.color)
        for lp in p.behind_lamps:
            behind[shiny] += (in_behind * lighting.specular(P, N, view, lp.pos, lp.power))[:, None] * np.array(lp.color)
        g = gloss[:, None]
        return day * gloss, lamp * g, behind * g

    def _shade(self, idx, dist, pts, normals, zone, albedo, ir_albedo, emission, gloss) -> tuple[_Layer, _Layer]:
        """Radiance layers for pixels `idx`: the main layer and the doorway spill light layer."""
        e = self._irradiance(pts, normals, zone)
        spec_day, spec_lamp, spec_behind = self._highlights(pts, normals, zone, gloss)
        vig = self._vignette[idx]
        dayc = np.array(self.preset.daylight_color)
        rgb = np.stack([
            (albedo * e["day"][:, None] + spec_day[:, None]) * dayc + emission,
            albedo * e["lamp"] + spec_lamp,
            albedo * e["behind"] + spec_behind,
        ]).astype(np.float32) * vig[None, :, None]
        ir = (ir_albedo * e["ir"]).astype(np.float32) * vig
        grey = np.concatenate([ir[None], _luma(rgb)], 0)
        main = _Layer(idx, dist.astype(np.float32), rgb, grey)
        spill_rgb = (albedo * e["spill"]).astype(np.float32) * vig[:, None]
        keep = spill_rgb.max(axis=1) > 1e-4
        spill = _Layer(idx[keep], dist[keep].astype(np.float32), spill_rgb[keep][None], _luma(spill_rgb[keep])[None])
        return main, spill

    def _surface(self, quads: list[Quad], qi: np.ndarray, dist: np.ndarray, u: np.ndarray, v: np.ndarray,
                 rays: np.ndarray):
        """World points, normals, zones, albedo, IR albedo and emission of ray hits on `quads`."""
        pts = self.camera.pos + rays * dist[:, None]
        normals = np.stack([q.normal for q in quads])[qi]
        zone = np.array([ZONES[q.zone] for q in quads], np.int8)[qi]
        cos = np.abs(np.einsum("ij,ij->i", rays, normals))
        fp = dist / self.camera.f / np.maximum(cos, 0.25)  # pixel footprint on the surface (m)
        albedo = np.zeros((len(qi), 3), np.float32)
        ir_alb = np.zeros(len(qi), np.float32)
        emission = np.zeros((len(qi), 3), np.float32)
        gloss = np.zeros(len(qi), np.float32)
        for key in sorted({q.material for q in quads}):
            sel = np.isin(qi, [i for i, q in enumerate(quads) if q.material == key])
            if not sel.any():
                continue
            P, n = pts[sel], normals[sel]
            if key in ("window", "poster", "door", "door_edge"):
                tu, tv = u[sel], v[sel]
            else:  # world coordinates, so textures run on across wall pieces
                tu = np.where(np.abs(n[:, 0]) > 0.5, P[:, 2], P[:, 0])
                tv = np.where(np.abs(n[:, 1]) > 0.5, P[:, 2], P[:, 1])
            if key == "window":
                a, ir, em = self._window_texture(tu, tv, quads[int(qi[sel][0])])
                emission[sel] = em
            elif key in ("door", "door_edge"):
                a, ir = self._door_texture(tu, tv, fp[sel], edge=key == "door_edge")
            else:
                a, ir = texture(self._materials[key], tu, tv, fp[sel], f"{self.preset_name}:{key}")
            albedo[sel], ir_alb[sel] = a, ir
            mat = self._materials.get("door" if key == "door_edge" else key)
            gloss[sel] = mat.gloss if mat is not None else 0.0
        return pts, normals, zone, albedo, ir_alb, emission, gloss

    @staticmethod
    def _window_bars(u, v, su: float, sv: float) -> np.ndarray:
        """Where the window's frame and glazing bars are, at window coordinates (u along, v up)."""
        bar = 0.05
        return (u < bar) | (u > su - bar) | (v < bar) | (v > sv - bar) | (np.abs(u - su / 2) < bar / 2) | (
            np.abs(v - sv * 0.62) < bar / 2)

    def _window_texture(self, u, v, quad: Quad):
        """Window: frame and glazing bars (lit surfaces) and the bright outdoors seen through the glass."""
        su, sv = quad.su, quad.sv
        frame = self._window_bars(u, v, su, sv)
        key = f"{self.preset_name}:outside"
        horizon = sv * (0.38 + 0.12 * fbm(u * 0.7, np.zeros_like(u), key, 2.0, 3))
        trees = 0.5 + 0.5 * fbm(u, v, key + "t", 6.0, 3)
        sky = np.stack([0.75 + 0.1 * v / sv, 0.85 + 0.08 * v / sv, 1.0 + 0 * v], 1)
        ground = np.stack([0.10 + 0.08 * trees, 0.16 + 0.14 * trees, 0.08 + 0.05 * trees], 1)
        outside = np.where((v < horizon)[:, None], ground, sky) * self.preset.daylight_power * 1.4
        albedo = np.where(frame[:, None], np.float32(0.8), np.float32(0.04)) * np.ones((1, 3), np.float32)
        emission = np.where(frame[:, None], 0.0, outside).astype(np.float32)
        ir = np.where(frame, 0.8, 0.05).astype(np.float32)
        return albedo, ir, emission

    def _door_texture(self, u, v, fp, edge: bool):
        """The door leaf's surface (preset material) with a handle and lock near the free edge."""
        mat = self.preset.door
        albedo, ir = texture(mat, u, v, fp, f"{self.preset_name}:door")
        if edge:
            return albedo * 0.8, ir
        kind = self.preset.door_kind
        if kind in ("roller", "car"):
            return albedo, ir
        if kind == "glass":  # the pane reflects a little and shows what is behind (see _door_layer)
            pane = self._glass_pane(u, v)
            albedo = np.where(pane[:, None], np.array([0.035, 0.04, 0.038], np.float32), albedo)
            ir = np.where(pane, np.float32(0.03), ir)
        w = self._leaf_w
        handle = ((u > w - 0.2) & (u < w - 0.05) & (np.abs(v - 1.02) < 0.018)) | (
            (u > w - 0.095) & (u < w - 0.055) & (v > 0.92) & (v < 1.12))
        albedo = np.where(handle[:, None], METAL, albedo)
        ir = np.where(handle, 0.6, ir)
        return albedo, ir

    def _glass_pane(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Where a glass leaf is glass (inside its aluminium stiles and rails), at leaf coordinates."""
        return (u > 0.09) & (u < self._leaf_w - 0.09) & (v > 0.22) & (v < self.preset.door_h - 0.1)

    def _opacity(self, quads: list[Quad], qi: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
        """Per ray hit, how much of the light behind it the watched object blocks; None when all of it."""
        kind = self.preset.door_kind
        of = lambda name: np.isin(qi, [i for i, q in enumerate(quads) if q.material == name])  # noqa: E731
        if kind == "glass":
            return np.where(of("door") & self._glass_pane(u, v), GLASS_OPACITY, 1.0)
        if kind == "car":
            return np.where(of("shadow"), SHADOW_OPACITY, 1.0)
        return None

    def _mirror(self, layer: _Layer, quads: list[Quad], qi: np.ndarray, pts: np.ndarray, glass: np.ndarray) -> None:
        """Add the room mirrored in glass: the static light maps where each reflected ray lands (in place).

        A plane mirror shows the room as seen from the camera mirrored in that plane: rays from the
        mirrored camera through the glass points, counted from the glass on.
        """
        cam = self.camera
        room = [q for q in self._quads if q.zone == "room"]
        n_pix = cam.ch * cam.cw
        rgb_maps, grey_maps = self._rgb.reshape(3, n_pix, 3), self._grey.reshape(4, n_pix)
        for i in np.unique(qi[glass]):
            sel = np.flatnonzero(glass & (qi == i))
            n, o = quads[i].normal, np.asarray(quads[i].o, float)
            mirrored = cam.pos - 2 * float((cam.pos - o) @ n) * n
            d = pts[sel] - mirrored
            start = np.linalg.norm(d, axis=1)
            d /= start[:, None]
            best = np.full(len(sel), np.inf)
            for q in room:
                t, _, _ = intersect(mirrored, d, q)
                best = np.where((t > start + 1e-3) & (t < best), t, best)
            hit = mirrored + d * np.where(np.isfinite(best), best, 0.0)[:, None]
            px, py, depth = cam.project(hit)
            ok = np.isfinite(best) & (depth > 0.2) & (px >= 0) & (px < cam.cw) & (py >= 0) & (py < cam.ch)
            flat = np.where(ok, py.astype(np.int64) * cam.cw + px.astype(np.int64), 0)
            k = np.float32(GLASS_REFLECT)
            layer.rgb[:, sel] += k * np.where(ok[None, :, None], rgb_maps[:, flat], rgb_maps.mean(axis=1)[:, None])
            layer.grey[:, sel] += k * np.where(ok[None], grey_maps[:, flat], grey_maps.mean(axis=1)[:, None])

    def _make_vignette(self) -> np.ndarray:
        cam = self.camera
        yy, xx = np.mgrid[0:cam.ch, 0:cam.cw]
        r2 = ((xx + 0.5 - cam.cx) ** 2 + (yy + 0.5 - cam.cy) ** 2) / (cam.width**2 / 4 + cam.height**2 / 4)
        return (1.0 - self.preset.vignette * r2 ** 1.2).astype(np.float32).ravel()

    def _build_static(self) -> None:
        """Ray-cast and shade the room (without the door) once: one radiance map per light source."""
        cam = self.camera
        quads = self._quads = self._room_quads()
        rays = cam.rays().reshape(-1, 3)
        qi, dist, u, v = raycast(cam.pos, rays, quads)
        if (qi < 0).any():  # should not happen: the room is closed around the camera
            dist = np.where(qi < 0, 1e3, dist)
            qi = np.maximum(qi, 0)
        idx = np.arange(len(qi))
        pts, normals, zone, albedo, ir_alb, emission, gloss = self._surface(quads, qi, dist, u, v, rays)
        main, self._spill = self._shade(idx, dist, pts, normals, zone, albedo, ir_alb, emission, gloss)
        # for the sun patch: pixels of each room surface, their points and vignetted albedo
        self._sun_quads = [(q.normal, np.flatnonzero((qi == i) & (zone == 0))) for i, q in enumerate(quads)
                           if q.zone == "room" and q.material != "window"]
        self._sun_pts = pts.astype(np.float32)
        self._sun_albedo = (albedo * self._vignette[:, None]).astype(np.float32)
        self._sun_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        n = cam.ch * cam.cw
        # one ray per pixel gives jagged edges; a lens is never that sharp: soften by ~0.7 px
        self._rgb = np.ascontiguousarray(_soften(main.rgb.reshape(3, cam.ch, cam.cw, 3)).reshape(3, n * 3))
        self._grey = np.ascontiguousarray(_soften(main.grey.reshape(4, cam.ch, cam.cw)).reshape(4, n))
        self._depth = dist.astype(np.float32).reshape(cam.ch, cam.cw)
        self._floor_xz = (pts[:, 0].astype(np.float32), pts[:, 2].astype(np.float32))
        floor_keys = {i for i, q in enumerate(quads) if q.material in ("floor", "behind_floor")}
        self._is_floor = np.isin(qi, list(floor_keys)).reshape(cam.ch, cam.cw)
        self._is_behind = (zone == 1).reshape(cam.ch, cam.cw)
        # image means of each light source's map (inner image only), for auto-exposure
        inner = np.zeros((cam.ch, cam.cw), bool)
        inner[self._margin:-self._margin, self._margin:-self._margin] = True
        inner &= ~self._is_behind  # behind the door is hidden most of the time
        g = self._grey.reshape(4, cam.ch, cam.cw)
        self._means = np.array([g[k][inner].mean() for k in range(4)])

    def _sun_patch(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Pixels lit by direct sun through the window (flat indices, radiance per unit of sun).

        Each room surface facing the sun is traced back along the sun's direction to the window
        (glazing bars cast their shadows). Recomputed once per simulated minute: the patch creeps a
        centimetre or two in that time.
        """
        minute = int(t // 60)
        cached = self._sun_cache  # one tuple, replaced whole: safe to read from several threads
        if cached is not None and cached[0] == minute:
            return cached[1], cached[2]
        p = self.preset
        el, az, _ = self.timeline.sun(minute * 60.0 + 30.0)
        out = -1.0 if p.window_side == "left" else 1.0  # the outside is beyond this side wall
        s = np.array([out * math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)])
        idx, rgb = [np.zeros(0, np.int64)], [np.zeros((0, 3), np.float32)]
        if el > 0.02 and abs(s[0]) > 0.05:
            wz0, wz1 = p.window_z
            wy0, wy1 = p.window_y
            wx = out * p.width / 2
            for normal, pix in self._sun_quads:
                facing = float(normal @ s)
                if facing <= 0.02 or not len(pix):
                    continue
                pts = self._sun_pts[pix]
                k = (wx - pts[:, 0]) / s[0]  # along the sun ray from the surface to the window plane
                qy, qz = pts[:, 1] + k * s[1], pts[:, 2] + k * s[2]
                lit = (k > 0) & (qy > wy0) & (qy < wy1) & (qz > wz0) & (qz < wz1)
                lit &= ~self._window_bars(qz - wz0, qy - wy0, wz1 - wz0, wy1 - wy0)
                idx.append(pix[lit])
                rgb.append(self._sun_albedo[pix[lit]] * np.float32(facing * SUN_POWER * p.daylight_power))
        result = (minute, np.concatenate(idx), np.concatenate(rgb))
        self._sun_cache = result
        return result[1], result[2]

    def _door_layer(self, angle: float) -> _Layer:
        """The door leaf at `angle` (quantised to 0.5 degrees), ray-cast over its bounding box; cached."""
        a = round(angle * 2) / 2
        with self._lock:
            hit = self._door_cache.get(a)
            if hit is not None:
                self._door_cache.move_to_end(a)
                return hit
        cam = self.camera
        quads = self._door_quads(a)
        layer = _Layer(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((3, 0, 3), np.float32),
                       np.zeros((4, 0), np.float32), np.zeros(0, np.float32))
        x0 = x1 = y0 = y1 = 0
        if quads:
            px, py, depth = cam.project(np.concatenate([q.corners() for q in quads]))
            x0, x1 = max(int(px.min()) - 1, 0), min(int(px.max()) + 2, cam.cw)
            y0, y1 = max(int(py.min()) - 1, 0), min(int(py.max()) + 2, cam.ch)
        if x0 < x1 and y0 < y1 and (depth > 0).any():
            # 2 x 2 rays per pixel: the leaf's edges are anti-aliased by how much of each pixel it covers
            sub = 2
            rays = cam.rays(y0, y1, x0, x1, sub=sub).reshape(-1, 3)
            qi, dist, u, v = raycast(cam.pos, rays, quads)
            yy, xx = np.meshgrid(y0 + np.arange((y1 - y0) * sub) // sub, x0 + np.arange((x1 - x0) * sub) // sub,
                                 indexing="ij")
            flat = (yy * cam.cw + xx).ravel()
            vis = (qi >= 0) & (dist < self._depth.ravel()[flat])
            if vis.any():
                qi, dist, u, v, rays, flat = qi[vis], dist[vis], u[vis], v[vis], rays[vis], flat[vis]
                pts, normals, zone, albedo, ir_alb, emission, gloss = self._surface(quads, qi, dist, u, v, rays)
                fine, _ = self._shade(flat, dist, pts, normals, zone, albedo, ir_alb, emission, gloss)
                opacity = self._opacity(quads, qi, u, v)
                if self.preset.door_kind == "glass":
                    self._mirror(fine, quads, qi, pts, opacity < 1)
                pix, inv = np.unique(flat, return_inverse=True)
                n_sub = float(sub * sub)

                def per_pixel(values: np.ndarray) -> np.ndarray:
                    return (np.bincount(inv, weights=values, minlength=len(pix)) / n_sub).astype(np.float32)

                count = np.bincount(inv, minlength=len(pix)).astype(np.float32)
                rgb = np.stack([np.stack([per_pixel(fine.rgb[k, :, c]) for c in range(3)], 1) for k in range(3)])
                grey = np.stack([per_pixel(fine.grey[k]) for k in range(4)])
                mean_dist = per_pixel(dist) * n_sub / count
                cover = count / n_sub if opacity is None else per_pixel(opacity)
                layer = _Layer(pix.astype(np.int32), mean_dist, rgb, grey, cover)
        with self._lock:
            self._door_cache[a] = layer
            if len(self._door_cache) > DOOR_CACHE:
                self._door_cache.popitem(last=False)
        return layer

    # ---- light, exposure and IR curves over the day --------------------------------------------

    def _build_curves(self) -> None:
        tl = self.timeline
        ts = np.arange(0.0, DAY + GRID, GRID)
        day = tl.daylight(ts)
        lamp = tl.lights_on(ts).astype(float)
        behind = tl.behind_light_on(ts).astype(float)
        opening = self._openness(tl.angles(ts))
        m_ir, m_d, m_l, m_b = self._means
        # per pixel of the canvas at the standard margin: a wider one (for "shift") leaves the exposure as it was
        spill_mean = float(self._spill.grey.sum()) / ((self.width + 2 * MARGIN) * (self.height + 2 * MARGIN))
        vis = day * m_d + lamp * m_l + behind * (opening * spill_mean)
        self._m_day = m_d
        gain_max = KEY / (0.025 * m_d)
        # IR mode with hysteresis: on below the darkest usable light, off again at twice that
        on, off = vis < KEY / gain_max, vis > 2 * KEY / gain_max
        events = np.where(on, 1, np.where(off, 0, -1))
        last = np.maximum.accumulate(np.where(events >= 0, np.arange(len(ts)), -1))
        ir = np.where(last >= 0, events[np.maximum(last, 0)] == 1, vis[0] < 1.5 * KEY / gain_max)
        if self.preset.ir_always:
            ir = np.ones(len(ts), bool)
        seen = np.where(ir, m_ir + 0.3 * vis, vis)
        target = np.log(np.where(ir, KEY_IR, KEY) / np.maximum(seen, KEY / gain_max))
        # first-order lag of the exposure (in stops) behind the light: the camera adapts over seconds;
        # an exponential kernel truncated where it has decayed below 1e-4, the start padded
        decay = math.exp(-GRID / EXPOSURE_TAU)
        k = int(math.ceil(math.log(1e-4) / math.log(decay)))
        kernel = (1 - decay) * decay ** np.arange(k)
        kernel /= kernel.sum()
        lagged = np.convolve(np.concatenate([np.full(k - 1, target[0]), target]), kernel, mode="valid")
        self._curve_t = ts
        self._ir = ir
        self._log_gain = lagged
        self._visible = vis

    # ---- per-frame state and truth -------------------------------------------------------------

    def _check_t(self, t: float) -> float:
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise SourceError(f"scene time must be a number of seconds, got {t!r}") from None
        if not (0.0 <= t < DAY):
            raise SourceError(f"scene time must be in [0, 86400) seconds since midnight, got {t!r}")
        return t

    def _openness(self, angle):
        """How much of the light behind reaches the room through the doorway (0..1), for an angle or an array."""
        kind = self.preset.door_kind
        if kind == "roller":
            return np.minimum(np.asarray(angle, float) / 90.0, 1.0) * ROLLER_TOP
        if kind == "car":  # the doorway is an open passage; the car is elsewhere
            return np.ones_like(np.asarray(angle, float)) if isinstance(angle, np.ndarray) else 1.0
        opened = 1.0 - (np.cos(np.radians(angle)) if isinstance(angle, np.ndarray) else math.cos(math.radians(angle)))
        return (1.0 - GLASS_OPACITY) + GLASS_OPACITY * opened if kind == "glass" else opened

    def _is_night(self, t: float) -> bool:
        return bool(self._ir[int(round(t / GRID))])

    def _people_in_view(self, t: float, angle: float) -> tuple[int, bool]:
        """(number of people visible, whether one stands in front of the door hiding part of it).

        A person counts when any of a few points on their body projects into the image in front of
        the room and the door leaf (the same depth test the renderer uses).
        """
        cam, p = self.camera, self.preset
        dx0, dy0, dx1, dy1 = self._door_box
        door = self._door_layer(angle)
        count, occluded = 0, False
        for wk in self.timeline.walkers_at(t):
            x, z, _, _ = wk.position(t)
            h = wk.look.height
            pts = np.array([[x + ox, y, z] for ox in (-0.15, 0.0, 0.15) for y in (0.25, 0.8, 1.3, h - 0.12)])
            px, py, fwd = cam.project(pts)
            m = self._margin
            inside = (fwd > 0.2) & (px >= m) & (px < cam.cw - m) & (py >= m) & (py < cam.ch - m)
            if not inside.any():
                continue
            flat = py[inside].astype(int) * cam.cw + px[inside].astype(int)
            depth = self._depth.ravel()[flat]
            if len(door.idx):
                j = np.clip(np.searchsorted(door.idx, flat), 0, len(door.idx) - 1)
                hides = door.idx[j] == flat
                if p.door_kind == "glass":  # people are seen through the panes
                    hides &= door.cover[j] >= 0.5
                depth = np.where(hides, np.minimum(depth, door.dist[j]), depth)
            dist = np.linalg.norm(pts[inside] - cam.pos, axis=1)
            if not (dist < depth).any():
                continue
            count += 1
            if z < p.depth:  # in the room: does the body (not its arm-swing box) hide much of the door?
                half = wk.look.width / 2
                body = np.array([[x - half, 0, z], [x + half, 0, z], [x - half, h, z], [x + half, h, z]])
                bx, by, _ = cam.project(body)
                ox = max(0.0, min(bx.max(), dx1) - max(bx.min(), dx0))
                oy = max(0.0, min(by.max(), dy1) - max(by.min(), dy0))
                occluded |= bool(ox * oy > 0.15 * (dx1 - dx0) * (dy1 - dy0))
        return count, occluded

    def exposure(self, t: float) -> float:
        """The auto-exposure gain at t (higher = darker scene, more noise), lagging the light."""
        t = self._check_t(t)
        return math.exp(float(np.interp(t, self._curve_t, self._log_gain)))

    def _door_angle(self, t: float, held: float | None) -> float:
        """The day's door angle at t, or `held` (degrees, 0..MAX_HELD_ANGLE) when the door is held there."""
        if held is None:
            return self.timeline.angle(t)
        if isinstance(held, bool) or not isinstance(held, numbers.Real) or not 0 <= held <= MAX_HELD_ANGLE:
            raise SourceError(f"door angle must be a number of degrees in [0, {MAX_HELD_ANGLE}], got {held!r}")
        return float(held)

    def truth(self, t: float, door_angle: float | None = None) -> dict:
        """Ground truth at time t: door state and angle, people, light level, IR mode (`door_angle`: as `render`)."""
        t = self._check_t(t)
        tl = self.timeline
        angle = self._door_angle(t, door_angle)
        p = self.preset
        rare = angle > OPEN_ANGLE
        extra: dict = {}
        if p.spot is not None:  # occupancy: a car in the bay, or people standing in it
            in_spot = int(tl.in_spot(t))
            extra = {"car": rare, "in_spot": in_spot}
            rare = rare or in_spot > 0
        if p.effects:
            extra["effects"] = [name for name in p.effects if tl.effect_at(name, t) is not None]
        state = p.classes[int(rare)]
        people, occluded = self._people_in_view(t, angle)
        i = int(round(t / GRID))
        light = float(np.clip(self._visible[i] / self._m_day, 0, 1))
        sky = float(tl.clear_sky(t))
        level = "day" if sky > 0.03 else "twilight" if sky > 0.0005 else "night"
        return {
            "t": t, "state": state, "angle": round(angle, 2), "people": people, "occluded": occluded,
            "light": round(light, 4), "light_level": level, "night": self._is_night(t),
            "lights_on": bool(tl.lights_on(t)),
            "condition": f"{state}/{level}/{'people' if people else 'empty'}", **extra,
        }

    # ---- rendering -----------------------------------------------------------------------------

    def _make_noise_bank(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat Gaussian noise banks (colour, grey), sliced at a random offset per frame.

        Luma noise plus weaker independent chroma noise, slightly blurred like a demosaiced sensor's.
        Flat banks make each frame's slice one contiguous block: as cheap as noise can be.
        """
        rng = np.random.default_rng([*self._key, 0xB4])
        h, w = self.height + 8, self.width
        bank = rng.standard_normal((h, w, 4)).astype(np.float32)
        bank = (bank + 0.5 * np.roll(bank, 1, 1) + 0.3 * np.roll(bank, 1, 0)) / np.float32(1.16)
        rgb = bank[:, :, :1] + np.float32(0.35) * bank[:, :, 1:]
        return np.ascontiguousarray(rgb).ravel(), np.ascontiguousarray(bank[:, :, 0]).ravel()

    def render(self, t: float, door_angle: float | None = None) -> np.ndarray:
        """The camera image (RGB uint8, height x width x 3) at t seconds after simulated midnight.

        `door_angle` holds the door at that angle instead of the day's (what an installer does to
        photograph the door propped either side of its threshold in the light of that moment); the
        auto-exposure still follows the day's own door, which at small angles lets through little light.
        """
        t = self._check_t(t)
        tl, cam, p = self.timeline, self.camera, self.preset
        angle = self._door_angle(t, door_angle)
        rng = np.random.default_rng([*self._key, int(round(t * 1000))])
        night = self._is_night(t)
        wd = float(tl.daylight(t))
        wl = float(tl.lights_on(t))
        wb = float(tl.behind_light_on(t))
        if night:
            w = np.array([1.0, 0.3 * wd, 0.3 * wl, 0.3 * wb], np.float32)
            flat = _weighted_sum(self._grey, w)[:, None]
            spill_w = 0.3 * wb
        else:
            w = np.array([wd, wl, wb], np.float32)
            flat = _weighted_sum(self._rgb, w).reshape(-1, 3)
            spill_w = wb
        c = flat.shape[1]
        open_f = self._openness(angle)
        if open_f > 0 and spill_w > 0 and len(self._spill.idx):
            sp = self._spill.grey[0][:, None] if night else self._spill.rgb[0]
            flat[self._spill.idx] += (spill_w * open_f) * sp
        if not night:
            el, _, direct = tl.sun(t)
            if direct > 0:
                sun_idx, sun_rgb = self._sun_patch(t)
                if len(sun_idx):
                    flat[sun_idx] += np.float32(direct) * sun_rgb * np.array(p.daylight_color, np.float32)
        canvas = flat.reshape(cam.ch, cam.cw, c)
        if p.effects:
            self._headlights(canvas, t, night)
        walkers = [(wk, *wk.position(t)) for wk in tl.walkers_at(t)]
        weights = w
        for wk, x, z, _, _ in walkers:
            self._draw_shadow(canvas, x, z, wk.look.height, night, weights)
        door = self._door_layer(angle)
        if len(door.idx):
            behind_leaf = flat[door.idx] * (1.0 - door.cover)[:, None]
            leaf = _weighted_sum(door.grey, w)[:, None] if night else _weighted_sum(door.rgb, w)
            flat[door.idx] = behind_leaf + leaf
        if walkers:
            depth = self._depth.copy()
            solid = door.cover >= 0.5
            depth.ravel()[door.idx[solid]] = door.dist[solid]
            far_first = sorted(walkers, key=lambda r: -math.hypot(r[1] - cam.pos[0], r[2] - cam.pos[2]))
            for wk, x, z, walked, heading in far_first:
                colors = self._person_colors(wk.look, x, z, night, w, open_f * spill_w)
                draw_person(canvas, depth, cam, x, z, walked, heading, wk.look, colors)
        # camera shake: the sensor window moves by a pixel or two
        dx, dy = np.clip(np.round(rng.normal(0, p.shake_px * 0.6, 2)), -MARGIN + 1, MARGIN - 1).astype(int)
        m = self._margin
        if p.effects:  # a knocked camera stays moved: the view (not the ROI) shifts by a few pixels
            sx, sy = (int(np.sign(v)) * self._scaled_px(abs(v)) for v in tl.shift_at(t))
            dx, dy = dx + sx, dy + sy
        img = canvas[m + dy: m + dy + self.height, m + dx: m + dx + self.width]
        gain = self.exposure(t)
        if p.effects:
            img, gain = self._weather_and_focus(img, t, gain, m + dx, m + dy)
        # Sensor noise, added in the square-root domain where photon (shot) noise has the same size
        # at every brightness; read noise grows with the gain. The tone curve is indexed by sqrt(x).
        gn = min(gain * self._m_day / KEY, 60.0)
        sigma = math.sqrt(SHOT_NOISE**2 * gn / 4 + (READ_NOISE * gn) ** 2)
        n = self.height * self.width * c
        bank = self._noise_bank[0] if c == 3 else self._noise_bank[1]
        off = int(rng.integers(0, len(bank) - n))
        noise = bank[off: off + n].reshape(self.height, self.width, c)
        root_gain = math.sqrt(gain)
        s = np.sqrt(img)
        s += noise * np.float32(sigma / root_gain)
        s *= np.float32(root_gain * LUT_SCALE)
        idx = np.clip(s, 0, len(self._lut) - 1, out=s).astype(np.uint16)
        out = np.take(self._lut, idx)
        if c == 1:
            out = np.repeat(out, 3, axis=2)  # IR mode: the same grey in every channel
        return out

    # ---- scene effects (presets opt in) -------------------------------------------------------------

    def _headlights(self, canvas: np.ndarray, t: float, night: bool) -> None:
        """A passing car's headlights: a bright band sweeping across the scene (in place, on the canvas)."""
        ep = self.timeline.effect_at("headlights", t)
        if ep is None:
            return
        cam = self.camera
        a, b, strength = ep
        u = (t - a) / (b - a)
        xc, sd = (-0.2 + 1.4 * u) * cam.cw, 0.12 * cam.cw
        x0, x1 = max(int(xc - 3 * sd), 0), min(int(xc + 3 * sd) + 1, cam.cw)
        if x0 >= x1:
            return
        across = np.exp(-(((np.arange(x0, x1) - xc) / sd) ** 2)).astype(np.float32)
        down = np.linspace(0.3, 1.0, cam.ch, dtype=np.float32)  # the beams come from low: the floor catches most
        beam = np.float32(HEADLIGHT * strength) * down[:, None] * across[None, :]
        albedo = self._sun_albedo.reshape(cam.ch, cam.cw, 3)[:, x0:x1]
        if night:
            canvas[:, x0:x1, 0] += beam * _luma(albedo)
        else:
            canvas[:, x0:x1] += beam[..., None] * albedo * np.array([1.0, 0.95, 0.8], np.float32)

    def _rain_bank(self) -> np.ndarray:
        """Rain streaks (2 * height x width, 0..1): thin slanted lines, scrolled down frame by frame."""
        bank = self._fx_cache.get("rain")
        if bank is None:
            rng = np.random.default_rng([*self._key, 0xA1])
            h2, w = 2 * self.height, self.width
            n = h2 * w // 90
            length = rng.integers(4, 14, n) * max(self.height / 360, 0.5)
            k = np.arange(16)[None, :] / 15.0 * length[:, None]
            ys = (rng.integers(0, h2, n)[:, None] + k).astype(np.int64) % h2
            xs = (rng.integers(0, w, n)[:, None] + 0.18 * k).astype(np.int64) % w
            bank = np.zeros((h2, w), np.float32)
            np.maximum.at(bank, (ys, xs), np.repeat(rng.uniform(0.3, 1.0, n)[:, None], 16, axis=1).astype(np.float32))
            bank = self._fx_cache["rain"] = bank
        return bank

    def _weather_and_focus(self, img: np.ndarray, t: float, gain: float, x0: int, y0: int) -> tuple[np.ndarray, float]:
        """Fog, rain and focus/exposure hunting on the cropped image (linear light); returns it and the gain."""
        tl = self.timeline
        h, w, c = img.shape
        fog = tl.effect_at("fog", t)
        if fog is not None:
            veil = self._fx_cache.get("fog")
            if veil is None:
                veil = self._fx_cache["fog"] = (1.0 - np.exp(-self._depth / FOG_DIST)).astype(np.float32)
            f = (np.float32(fog[2]) * veil[y0:y0 + h, x0:x0 + w])[..., None]
            img = img * (1 - f) + f * (img.mean(axis=(0, 1)) * np.float32(1.2))
        rain = tl.effect_at("rain", t)
        if rain is not None:
            bank = self._rain_bank()
            off = int(t * 37.0 * self.height) % self.height  # drops fall ~37 frame heights a second
            level = np.float32(rain[2] * 0.5) * (img.mean() + np.float32(0.01))
            img = img * np.float32(1 - 0.15 * rain[2]) + level * bank[off:off + h, :w, None]
        focus = tl.effect_at("focus", t)
        if focus is not None:
            a, b, strength = focus
            hump = math.sin(math.pi * (t - a) / (b - a))
            for _ in range(int(round(4 * strength * hump))):  # out of focus: a wider blur the further it hunts
                img = _soften(img[None])[0]
            gain *= 2.0 ** (1.2 * strength * hump * math.sin(2 * math.pi * (t - a) / 1.3))
        return img, gain

    def _point_light_mix(self, pos: np.ndarray, normal: np.ndarray, night: bool, w: np.ndarray, spill_w: float):
        """Lit colour multiplier (3,) for a small object at `pos` facing `normal` (people)."""
        zone = np.array([1 if pos[2] > self.preset.depth else 0], np.int8)
        e = self._irradiance(pos[None], normal[None], zone)
        dayc = np.array(self.preset.daylight_color)
        if night:
            return e["ir"][0], w[1] * e["day"][0] + w[2] * e["lamp"][0].mean() + w[3] * e["behind"][0].mean()
        rgb = w[0] * e["day"][0] * dayc + w[1] * e["lamp"][0] + w[2] * e["behind"][0] + spill_w * e["spill"][0]
        return rgb, 0.0

    def _person_colors(self, look, x: float, z: float, night: bool, w: np.ndarray, spill_w: float) -> dict:
        cam = self.camera
        pos = np.array([x, look.height * 0.6, z])
        to_cam = cam.pos - pos
        to_cam[1] = 0
        normal = to_cam / max(np.linalg.norm(to_cam), 1e-6)
        light, extra = self._point_light_mix(pos, normal, night, w, spill_w)
        px, py, _ = cam.project(pos[None])
        iy = int(np.clip(py[0], 0, cam.ch - 1))
        ix = int(np.clip(px[0], 0, cam.cw - 1))
        vig = self._vignette[iy * cam.cw + ix]
        colors = {}
        irs = {"top": look.ir_top, "bottom": look.ir_bottom, "skin": 0.55, "hair": 0.25, "shoes": 0.1}
        base = {"top": look.top, "bottom": look.bottom, "skin": look.skin, "hair": look.hair,
                "shoes": (0.03, 0.03, 0.03)}
        for part, col in base.items():
            if night:
                v = irs[part] * light + float(np.dot(col, LUMA)) * extra
                colors[part] = np.array([v], np.float32) * vig
            else:
                colors[part] = (np.array(col) * light * vig).astype(np.float32)
        return colors

    def _draw_shadow(self, canvas: np.ndarray, x: float, z: float, height: float, night: bool, w: np.ndarray) -> None:
        """Darken the floor around a person's feet, and away from the strongest lamp."""
        cam, p = self.camera, self.preset
        reach = 1.6
        pts = np.array([[x - reach, 0, z - reach], [x + reach, 0, z - reach], [x - reach, 0, z + reach],
                        [x + reach, 0, z + reach]])
        px, py, depth = cam.project(pts)
        if (depth <= 0.2).any():
            return
        x0, x1 = max(int(px.min()), 0), min(int(px.max()) + 1, cam.cw)
        y0, y1 = max(int(py.min()), 0), min(int(py.max()) + 1, cam.ch)
        if x0 >= x1 or y0 >= y1:
            return
        fx = self._floor_xz[0].reshape(cam.ch, cam.cw)[y0:y1, x0:x1]
        fz = self._floor_xz[1].reshape(cam.ch, cam.cw)[y0:y1, x0:x1]
        floor = self._is_floor[y0:y1, x0:x1]
        ddx, ddz = fx - x, fz - z
        contact = np.exp(-(ddx**2 + ddz**2) / (2 * 0.22**2)) * 0.55
        # a longer, fainter shadow cast by the nearest lamp (or the camera's IR light at night)
        lamps = [lp.pos for lp in p.lamps] if (w[1] > 0 and not night) else [tuple(cam.pos)]
        lx, ly, lz = min(lamps, key=lambda q: (q[0] - x) ** 2 + (q[2] - z) ** 2)
        away = np.array([x - lx, z - lz])
        dist = float(np.linalg.norm(away))
        if dist > 0.05:
            away /= dist
            length = min(3.0, height * dist / max(ly - height, 0.3))
            along = np.clip(ddx * away[0] + ddz * away[1], 0, length)
            perp = np.abs(ddx * away[1] - ddz * away[0])
            cast = np.exp(-(perp**2) / (2 * 0.14**2)) * (along > 0) * (1 - along / length) * 0.35
            contact = np.maximum(contact, cast)
        region = canvas[y0:y1, x0:x1]
        region *= (1.0 - contact * floor)[..., None].astype(np.float32)

    def frame(self, t: float, quality: int = 85, door_angle: float | None = None) -> Frame:
        """A Frame with the rendered image, its JPEG encoding and the ground truth in meta (`door_angle`: as
        `render`)."""
        if not (isinstance(quality, (int, np.integer)) and 1 <= quality <= 100):
            raise SourceError(f"JPEG quality must be an integer in [1, 100], got {quality!r}")
        image = self.render(t, door_angle)
        jpeg = encode_jpeg(image, int(quality))
        return Frame(image=image, timestamp=float(t), source=f"sim:{self.preset_name}?seed={self.seed}", jpeg=jpeg,
                     meta={"truth": self.truth(t, door_angle)})

    # ---- region of interest --------------------------------------------------------------------

    def _door_roi(self) -> tuple[int, int, int, int]:
        """Image box around the door frame and every position of the swinging leaf, padded a little."""
        cam, p = self.camera, self.preset
        if p.spot is not None:  # occupancy: the bay up to a car's roof
            x0, x1, z0, z1 = p.spot
            box = np.array([[x, y, z] for x in (x0, x1) for y in (0.0, 1.5) for z in (z0, z1)])
            px, py, _ = cam.project(box)
            self._door_box = (px.min(), py.min(), px.max(), py.max())
            px, py = px - self._margin, py - self._margin
        else:
            xa, xb, top = p.door_x - 0.08, p.door_x + p.door_w + 0.08, p.door_h + 0.08
            pts = [np.array([[xa, 0, p.depth], [xb, 0, p.depth], [xa, top, p.depth], [xb, top, p.depth]])]
            for a in range(0, 91, 10):
                pts.extend(q.corners() for q in self._door_quads(a))
            px, py, depth = cam.project(np.concatenate(pts))
            px, py = px[depth > 0] - self._margin, py[depth > 0] - self._margin
            fronts = [q for q in self._door_quads(0) if q.material == "door"][::2]  # each leaf's room-side face
            closed = np.concatenate([q.corners() for q in fronts])
            cx, cy, _ = cam.project(closed)
            self._door_box = (cx.min(), cy.min(), cx.max(), cy.max())
        pad_x, pad_y = 0.04 * (px.max() - px.min()), 0.04 * (py.max() - py.min())
        x0 = int(np.clip(math.floor(px.min() - pad_x), 0, self.width - 1))
        y0 = int(np.clip(math.floor(py.min() - pad_y), 0, self.height - 1))
        x1 = int(np.clip(math.ceil(px.max() + pad_x), x0 + 1, self.width))
        y1 = int(np.clip(math.ceil(py.max() + pad_y), y0 + 1, self.height))
        return x0, y0, x1, y1
