"""Irradiance at surface points from the lights of a scene (lamps, window, camera IR), vectorised."""

from __future__ import annotations

import numpy as np

from camlytics.sim.geometry import dot3


def point_light(p: np.ndarray, n: np.ndarray, pos, power: float) -> np.ndarray:
    """Irradiance (N,) at points p (N, 3) with normals n from an isotropic point light."""
    l = np.asarray(pos, float) - p
    d2 = np.maximum(np.einsum("ij,ij->i", l, l), 0.05)
    cos = np.maximum(np.einsum("ij,ij->i", l, n), 0.0) / np.sqrt(d2)
    return power * cos / d2


def area_light(p: np.ndarray, n: np.ndarray, samples: np.ndarray, normal, radiance: float, area: float) -> np.ndarray:
    """Irradiance (N,) from a Lambertian rectangle given by sample points (M, 3) and its normal."""
    e = np.zeros(len(p))
    nw = np.asarray(normal, float)
    for s in samples:
        l = s - p
        d2 = np.maximum(np.einsum("ij,ij->i", l, l), 0.05)
        d = np.sqrt(d2)
        cos_s = np.maximum(np.einsum("ij,ij->i", l, n), 0.0) / d
        cos_w = np.maximum(-dot3(l, nw), 0.0) / d
        e += cos_s * cos_w / d2
    return radiance * area / len(samples) * e


def through_opening(p: np.ndarray, light, plane_z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Whether the segments from points p to the light cross the plane z = plane_z inside a rectangle."""
    light = np.asarray(light, float)
    dz = light[2] - p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (plane_z - p[:, 2]) / dz
    q = p + (light - p) * s[:, None]
    return (s > 0) & (s < 1) & (q[:, 0] > x0) & (q[:, 0] < x1) & (q[:, 1] > y0) & (q[:, 1] < y1)


def ir_light(p: np.ndarray, n: np.ndarray, cam_pos, cam_fwd, power: float, reach: float) -> np.ndarray:
    """Irradiance (N,) from the camera's IR illuminator: a beam around the optical axis that fades with distance."""
    l = np.asarray(cam_pos, float) - p
    d = np.maximum(np.linalg.norm(l, axis=1), 0.1)
    cos = np.maximum(np.einsum("ij,ij->i", l, n), 0.0) / d
    beam = np.clip(-dot3(l, np.asarray(cam_fwd, float)) / d, 0, 1) ** 10
    return power * cos * beam / (1.0 + (d / reach) ** 2)


def specular(p: np.ndarray, n: np.ndarray, view: np.ndarray, pos, power: float, shininess: float = 40.0) -> np.ndarray:
    """Normalised Blinn-Phong highlight (N,) of a point light seen along unit `view` (surface to camera)."""
    l = np.asarray(pos, float) - p
    d2 = np.maximum(np.einsum("ij,ij->i", l, l), 0.05)
    l = l / np.sqrt(d2)[:, None]
    h = l + view
    h /= np.maximum(np.linalg.norm(h, axis=1), 1e-9)[:, None]
    cos = np.maximum(np.einsum("ij,ij->i", l, n), 0.0)
    nh = np.maximum(np.einsum("ij,ij->i", h, n), 0.0)
    return power * cos / d2 * nh**shininess * (shininess + 8) / (8 * np.pi)
