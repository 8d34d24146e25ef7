"""Procedural surface textures evaluated at surface coordinates (metres), vectorised over pixels.

Each texture returns (albedo (N, 3), ir_reflectance (N,)) as float32 for N surface points given
their (u, v) coordinates on the surface and `fp`, the size of one pixel on that surface (metres),
used to anti-alias thin lines (grout, seams) instead of letting them shimmer into moire.
"""

from __future__ import annotations

import zlib

import numpy as np

from camlytics.sim.presets import Material

TABLE = 256


def _table(key: str) -> np.ndarray:
    """A fixed random lattice for value noise, the same for every run with the same key."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return rng.random((TABLE, TABLE), dtype=np.float32) * 2 - 1


def value_noise(u: np.ndarray, v: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Smooth lattice noise in [-1, 1] at (u, v) in lattice units."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0 = iu.astype(np.int64) & (TABLE - 1)
    j0 = iv.astype(np.int64) & (TABLE - 1)
    i1, j1 = (i0 + 1) & (TABLE - 1), (j0 + 1) & (TABLE - 1)
    a = table[i0, j0] + (table[i1, j0] - table[i0, j0]) * fu
    b = table[i0, j1] + (table[i1, j1] - table[i0, j1]) * fu
    return (a + (b - a) * fv).astype(np.float32)


def fbm(u: np.ndarray, v: np.ndarray, key: str, freq: float, octaves: int = 4) -> np.ndarray:
    """Fractal noise: octaves of value noise, roughly in [-1, 1]."""
    table = _table(key)
    out = np.zeros(np.shape(u), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        out += amp * value_noise(u * freq + 17.3 * k, v * freq - 9.1 * k, table)
        norm += amp
        amp *= 0.5
        freq *= 2.03
    return out / norm


def _hash01(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """A per-cell pseudo-random number in [0, 1) for integer cell coordinates."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ (salt * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / 65536.0


def _line_cover(d: np.ndarray, width: float, fp: np.ndarray) -> np.ndarray:
    """Coverage (0..1) of a pixel of size fp by a line of `width`, at distance d from its centre."""
    fp = np.maximum(fp, 1e-4)
    return np.clip((width / 2 - d) / fp + 0.5, 0, 1) * np.minimum(1.0, width / fp)


def _grid_distance(x: np.ndarray, size: float) -> np.ndarray:
    """Distance to the nearest multiple of `size`."""
    r = np.mod(x, size)
    return np.minimum(r, size - r)


def _mix(a, b, w) -> np.ndarray:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    w = np.asarray(w, np.float32)[..., None]
    return a + (b - a) * w


def _wood(u, v, key: str, ring_freq: float) -> np.ndarray:
    """Wood grain value in [0, 1] with fibres along v: warped rings plus fine streaks."""
    warp = fbm(u * 3.0, v * 0.7, key + "w", 1.0, 4)
    rings = 0.5 + 0.5 * np.sin((u * ring_freq + 5.0 * warp) * 2 * np.pi)
    streak = fbm(u * 90.0, v * 1.2, key + "s", 1.0, 2)
    figure = fbm(u * 6.0, v * 0.5, key + "g", 1.0, 2)  # broad light/dark zones across the boards
    return np.clip(0.55 * rings ** 4 + 0.3 * (0.5 + streak) + 0.25 * (0.5 + figure), 0, 1)


def texture(mat: Material, u: np.ndarray, v: np.ndarray, fp: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (N, 3) and IR reflectance (N,) of `mat` at surface points (u, v)."""
    u = np.asarray(u, np.float32)
    v = np.asarray(v, np.float32)
    c1 = np.array(mat.color, np.float32)
    c2 = np.array(mat.color2, np.float32)
    blotch = 1.0 + mat.roughness * fbm(u, v, key + "b", 1.2, 4)
    fine = 1.0 + 0.025 * fbm(u, v, key + "f", 45.0, 2)
    shade = blotch * fine
    k = mat.kind
    if k == "paint":
        alb = c1[None, :] * shade[:, None]
    elif k == "carpet":
        s = mat.scale
        i, j = np.floor(u / s), np.floor(v / s)
        tile = 0.92 + 0.16 * _hash01(i, j, 1)
        # carpet tiles laid in alternating directions: fine ribs that change orientation per tile
        rib_u = np.sin(u * 2 * np.pi * 120) * ((i + j) % 2 == 0)
        rib_v = np.sin(v * 2 * np.pi * 120) * ((i + j) % 2 == 1)
        ribs = 0.5 + 0.5 * (rib_u + rib_v) * np.clip(0.004 / np.maximum(fp, 1e-4), 0, 1)
        speck = fbm(u, v, key + "s", 90.0, 1)
        alb = _mix(c1 * 1.0, c2, 0.35 * ribs + 0.5 * np.clip(speck, 0, 1)) * (tile * shade)[:, None]
        seam = _line_cover(np.minimum(_grid_distance(u, s), _grid_distance(v, s)), 0.004, fp)
        alb = alb * (1 - 0.35 * seam)[:, None]
    elif k == "tiles":
        s = mat.scale
        i, j = np.floor(u / s), np.floor(v / s)
        tile = 0.9 + 0.2 * _hash01(i, j, 2)
        grout = _line_cover(np.minimum(_grid_distance(u, s), _grid_distance(v, s)), 0.008, fp)
        alb = _mix(c1[None, :] * (tile * shade)[:, None], c2, grout)
    elif k == "planks":
        s = mat.scale
        row = np.floor(u / s)
        length = 1.4
        off = _hash01(row, row * 0, 3) * length
        col = np.floor((v + off) / length)
        tone = 0.8 + 0.4 * _hash01(row, col, 4)
        grain = _wood(u * 1.0 + row * 3.1, v + col * 7.7, key, 22.0)
        alb = _mix(c1, c2, grain) * (tone * shade)[:, None]
        seam = np.maximum(_line_cover(_grid_distance(u, s), 0.003, fp),
                          _line_cover(_grid_distance(v + off, length), 0.003, fp))
        alb = alb * (1 - 0.6 * seam)[:, None]
    elif k == "wood":
        grain = _wood(u, v, key, 1.0 / max(mat.scale, 1e-3) * 0.3)
        alb = _mix(c1, c2, grain) * shade[:, None]
    elif k == "concrete":
        stain = fbm(u, v, key + "st", 0.35, 3)
        speck = np.clip(fbm(u, v, key + "sp", 60.0, 1) * 3 - 2.0, 0, 1)
        alb = c1[None, :] * (shade * (1 + 0.12 * stain) * (1 - 0.3 * speck))[:, None]
        if c2.any():  # a painted floor marking along z
            stripe = np.clip(1 - np.abs(u + 2.6) / 0.06, 0, 1) > 0
            worn = np.clip(0.7 + 0.6 * fbm(u, v, key + "wn", 3.0, 3), 0, 1)
            alb = np.where(stripe[:, None], _mix(alb, c2, worn), alb)
    elif k == "blocks":
        s = mat.scale
        h = s / 2
        row = np.floor(v / h)
        uu = u + (row % 2) * s / 2
        col = np.floor(uu / s)
        tone = 0.9 + 0.2 * _hash01(row, col, 5)
        mortar = _line_cover(np.minimum(_grid_distance(uu, s), _grid_distance(v, h)), 0.012, fp)
        alb = _mix(c1[None, :] * (tone * shade)[:, None], c2, mortar)
    elif k == "metal":
        brushed = 1.0 + 0.02 * fbm(u * 200.0, v * 2.0, key + "br", 1.0, 2)
        alb = c1[None, :] * (shade * brushed)[:, None]
        kick = (v < mat.scale).astype(np.float32)  # a kick plate along the bottom
        plate = c2[None, :] * (0.9 + 0.2 * np.clip(fbm(u * 90, v * 3, key + "k", 1.0, 2), -1, 1))[:, None]
        alb = _mix(alb, plate, kick * 0.9)
    elif k == "panel":
        alb = c1[None, :] * shade[:, None]
        # two columns of recessed panels: thin shadowed and lit bevel lines around each
        bev = np.zeros_like(u)
        w_total = float(np.max(u)) if u.size else 0.8
        for x0, x1 in ((0.12, 0.5 * w_total - 0.05), (0.5 * w_total + 0.05, w_total - 0.12)):
            for y0, y1 in ((0.15, 0.9), (1.1, 1.85)):
                inside = (u > x0) & (u < x1) & (v > y0) & (v < y1)
                d = np.minimum(np.minimum(u - x0, x1 - u), np.minimum(v - y0, y1 - v))
                edge = inside & (d < 0.02)
                lit = (np.minimum(u - x0, v - y0) < np.minimum(x1 - u, y1 - v))
                bev = np.where(edge, np.where(lit, -1.0, 0.6), bev)
        alb = np.where((bev < 0)[:, None], c2 * shade[:, None], alb * (1 + 0.12 * np.clip(bev, 0, 1))[:, None])
    elif k == "slats":
        # a roller curtain: horizontal slats of height `scale`, each a shallow ridge (lit top, shadowed joint)
        s = mat.scale
        phase = np.mod(v, s) / s
        ridge = 0.85 + 0.25 * np.sin(phase * np.pi) ** 0.5
        joint = _line_cover(_grid_distance(v, s), 0.006, fp)
        dirt = 1.0 + 0.1 * fbm(u * 0.5, v * 2.0, key + "d", 1.0, 3)
        alb = c1[None, :] * (shade * ridge * dirt)[:, None]
        alb = _mix(alb, c2, 0.8 * joint)
        bar = (v < 0.09).astype(np.float32)  # the bottom bar and its rubber seal
        alb = _mix(alb, c2 * 0.6, bar)
    elif k == "bays":
        # concrete with painted parking-bay lines: every `scale` m across x inside `region`, and its front edge
        stain = fbm(u, v, key + "st", 0.35, 3)
        alb = c1[None, :] * (shade * (1 + 0.15 * stain))[:, None]
        if mat.region is not None:
            u0, u1, v0, v1 = mat.region
            inside = (u > u0 - 0.1) & (u < u1 + 0.1) & (v > v0) & (v < v1)
            side = _line_cover(_grid_distance(u - u0, mat.scale), 0.1, fp) * inside
            front = _line_cover(np.abs(v - v0), 0.1, fp) * ((u > u0) & (u < u1))
            worn = np.clip(0.75 + 0.5 * fbm(u, v, key + "wn", 4.0, 3), 0, 1)
            alb = _mix(alb, c2, np.maximum(side, front) * worn)
    elif k == "poster":
        # a notice board: sheets of paper with coloured headers and lines of "text" on a cork board
        i, j = np.floor((u - 0.03) / 0.3), np.floor((v - 0.03) / 0.27)
        fu, fv = np.mod(u - 0.03, 0.3), np.mod(v - 0.03, 0.27)
        sheet = (fu < 0.26) & (fv < 0.23) & (i >= 0) & (j >= 0) & (i < 2) & (j < 3)
        hue = np.stack([_hash01(i, j, 6), _hash01(i, j, 7), _hash01(i, j, 8)], -1)
        header = sheet & (fv > 0.18)
        line_end = 0.22 - 0.1 * _hash01(i, j + fv // 0.025, 9)
        text = sheet & (fv < 0.16) & (np.mod(fv, 0.025) < 0.008) & (fu > 0.02) & (fu < line_end)
        cork = np.array([0.42, 0.28, 0.15], np.float32)
        alb = np.where(sheet[:, None], np.float32(0.8), cork[None, :])
        alb = np.where(header[:, None], 0.1 + 0.6 * hue, alb)
        alb = np.where(text[:, None], np.float32(0.15), alb) * shade[:, None]
    else:
        raise ValueError(f"unknown material kind {k!r}")
    # the IR reflectance follows the visible pattern (grain, grout, stains) around the material's level
    lum = lambda c: c[..., 0] * 0.2126 + c[..., 1] * 0.7152 + c[..., 2] * 0.0722  # noqa: E731
    ir = mat.ir * np.clip(lum(alb) / max(float(lum(c1)), 1e-3), 0.2, 2.0) ** 0.5
    return np.clip(alb, 0, 1).astype(np.float32), ir.astype(np.float32)
