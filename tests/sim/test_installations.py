"""Specification of the held-out installations: roller, glass and double doors, IR night, parking bay, far door;
and of the scene effects (rain, fog, headlights, focus hunting, a knocked camera) any preset can opt into."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from camlytics.constants import DAY
from camlytics.sim import PRESETS, Scene
from camlytics.sim.presets import EFFECTS, HELD_OUT
from camlytics.sources.simsource import open_sim

W, H = 320, 180
SEED = 2


@pytest.fixture(scope="module")
def scenes() -> dict[str, Scene]:
    return {name: Scene(name, SEED, W, H) for name in HELD_OUT}


@pytest.fixture(scope="module")
def states(scenes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(times every 5 s, rare state at each) of each preset's day."""
    ts = np.arange(0.0, DAY, 5.0)
    return {name: (ts, scene.timeline.rare(ts)) for name, scene in scenes.items()}


def quiet(scene: Scene, near: float) -> float:
    """A time near `near` in the common state, nobody around, no effect under way but a camera move."""
    for dt in np.arange(0, 4 * 3600, 11.0):
        for t in (near + dt, near - dt):
            tr = scene.truth(t)
            if (tr["state"] == scene.preset.classes[0] and tr["angle"] == 0 and tr["people"] == 0
                    and not scene.timeline.walkers_at(t) and set(tr.get("effects", [])) <= {"shift"}):
                return float(t)
    raise AssertionError("no quiet time")


def block_diff(a: np.ndarray, b: np.ndarray, roi) -> tuple[float, float]:
    """Mean absolute difference of 4x4 block means inside and outside the ROI (sensor noise averages out)."""
    def blocks(img):
        g = img.astype(float).mean(axis=2)
        return g.reshape(H // 4, 4, W // 4, 4).mean(axis=(1, 3))

    d = np.abs(blocks(a) - blocks(b))
    x0, y0, x1, y1 = roi
    inside = np.zeros(d.shape, bool)
    inside[y0 // 4:(y1 + 3) // 4, x0 // 4:(x1 + 3) // 4] = True
    return float(d[inside].mean()), float(d[~inside].mean())


def test_the_held_out_presets_exist_with_two_states_each():
    assert set(HELD_OUT) <= set(PRESETS)
    kinds = {PRESETS[n].door_kind for n in HELD_OUT}
    assert {"roller", "glass", "double", "car", "hinged"} <= kinds
    assert PRESETS["parking"].classes == ("empty", "occupied")
    assert all(PRESETS[n].classes == ("closed", "open") for n in HELD_OUT if n != "parking")
    assert PRESETS["irnight"].ir_always and PRESETS["irnight"].motion_light > 0
    assert {e for n in HELD_OUT for e in PRESETS[n].effects} == set(EFFECTS)
    assert all(not PRESETS[n].effects for n in ("office", "warehouse", "home"))  # the old three stay as they were


def test_every_new_preset_renders_at_640x360_and_320x180_with_its_roi_inside(scenes):
    for name, scene in scenes.items():
        big = Scene(name, SEED, 640, 360)
        for sc, (w, h) in ((big, (640, 360)), (scene, (W, H))):
            img = sc.render(12 * 3600.0)
            assert img.shape == (h, w, 3) and img.dtype == np.uint8, name
            x0, y0, x1, y1 = sc.door_roi
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, sc.door_roi)
            assert (x1 - x0) * (y1 - y0) < 0.3 * w * h, name
        if name == "corridor":  # a door far away: a narrow, tall ROI
            x0, y0, x1, y1 = big.door_roi
            assert x1 - x0 <= 55 and y1 - y0 <= 99 and (y1 - y0) > 1.6 * (x1 - x0), big.door_roi


def test_both_states_occur_in_a_day_and_the_rare_one_is_rare(scenes, states):
    for name, scene in scenes.items():
        ts, rare = states[name]
        assert 0.01 < rare.mean() < 0.12, (name, rare.mean())
        common_name, rare_name = scene.preset.classes
        for t in ts[rare][:: max(rare.sum() // 5, 1)][:5]:
            assert scene.truth(t)["state"] == rare_name, (name, t)
        for t in ts[~rare][:: 4000][:5]:
            assert scene.truth(t)["state"] == common_name, (name, t)


def test_the_rare_state_changes_the_image_inside_the_roi(scenes):
    for name, scene in scenes.items():
        t = quiet(scene, 13 * 3600)
        rare, common = scene.render(t, door_angle=80.0), scene.render(t, door_angle=0.0)
        assert scene.truth(t, door_angle=80.0)["state"] == scene.preset.classes[1]
        inside, outside = block_diff(rare, common, scene.door_roi)
        assert inside > 3 and inside > 4 * outside, (name, inside, outside)  # glass: the subtlest change


def test_frames_are_a_pure_function_of_preset_seed_size_and_time(scenes):
    for name, scene in scenes.items():
        again = Scene(name, SEED, W, H)
        times = [3 * 3600 + 0.5, 12 * 3600.0, 20 * 3600 + 7.0]
        first = [scene.frame(t) for t in times]
        for t, f in zip(reversed(times), reversed(first)):
            g = again.frame(t)
            assert g.jpeg == f.jpeg and g.meta == f.meta, name


def test_glass_shows_the_space_behind_when_closed(scenes):
    glass = scenes["glassdoor"]
    solid = Scene(replace(PRESETS["glassdoor"], door_kind="hinged"), SEED, W, H)
    t = quiet(glass, 12 * 3600)
    x0, y0, x1, y1 = (int(v) - glass._margin for v in glass._door_box)
    pane = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))

    def change(scene):  # closed vs fully open, in the middle of the leaf
        return np.abs(scene.render(t, door_angle=0.0)[pane].astype(float) - scene.render(t, door_angle=90.0)[pane]).mean()

    assert change(glass) < 0.5 * change(solid)


def test_roller_door_rises_and_double_doors_open_both_leaves(scenes):
    roller = scenes["roller"]
    x0, y0, x1, y1 = (int(v) - roller._margin for v in roller._door_box)
    t = quiet(roller, 12 * 3600)
    half = roller.render(t, door_angle=45.0).astype(float)
    shut = roller.render(t, door_angle=0.0).astype(float)
    d = np.abs(half - shut).mean(axis=(1, 2))  # per image row: a raised curtain uncovers the bottom of the doorway
    mid = (y0 + y1) // 2
    assert d[mid + 2:y1 - 2].mean() > 3 * d[y0 + 2:mid - (y1 - y0) // 4].mean()
    double = scenes["double"]
    x0, y0, x1, y1 = (int(v) - double._margin for v in double._door_box)
    t = quiet(double, 12 * 3600)
    change = np.abs(double.render(t, door_angle=80.0).astype(float) - double.render(t, door_angle=0.0))
    opened = change[y0:y1].mean(axis=(0, 2))  # per image column, over the doorway's rows
    xm = (x0 + x1) // 2
    assert opened[x0 + 3:xm - 3].mean() > 5 and opened[xm + 3:x1 - 3].mean() > 5  # both leaves moved


def test_ir_night_stays_grey_and_its_lamp_follows_motion(scenes):
    scene = scenes["irnight"]
    tl = scene.timeline
    for t in (3 * 3600.0, 12 * 3600.0, 18 * 3600.0):
        img = scene.render(t)
        assert np.array_equal(img[..., 0], img[..., 1]) and scene.truth(t)["night"]
    walker = next(w for w in tl.walkers if w.kind == "walk_by" and not tl.lights_on(w.start - 200))
    assert tl.lights_on(walker.start + 3) and not tl.lights_on(walker.start - 1)
    ts = np.arange(0.0, DAY, 10.0)
    on = tl.lights_on(ts)
    assert 0.02 < on.mean() < 0.6  # off while nobody moves
    off_t = float(ts[1:][on[:-1] & ~on[1:]][0])
    before, after = scene.render(off_t - 30).astype(float), scene.render(off_t + 30).astype(float)
    assert before.mean() > after.mean() + 3 or scene.exposure(off_t - 30) < scene.exposure(off_t + 30)


def test_a_spot_is_occupied_by_a_parked_car_or_people_standing_in_it(scenes):
    scene = scenes["parking"]
    tl = scene.timeline
    stand = next(w for w in tl.walkers if w.kind == "stand" and tl.angle((w.times[1] + w.times[2]) / 2) == 0)
    t = (stand.times[1] + stand.times[2]) / 2
    tr = scene.truth(t)
    assert tr["state"] == "occupied" and tr["in_spot"] >= 1 and not tr["car"]
    parked = next(e for e in tl.events if e.kind == "propped")
    tr = scene.truth((parked.start + parked.end) / 2)
    assert tr["state"] == "occupied" and tr["car"]
    assert scene.truth(quiet(scene, 12 * 3600))["state"] == "empty"


def test_effects_change_pixels_only_while_under_way(scenes):
    checked = set()
    for name, scene in scenes.items():
        plain = Scene(replace(scene.preset, effects=()), SEED, W, H)
        t = quiet(scene, 11 * 3600)
        if scene.timeline.shift_at(t) == (0, 0):  # before the camera is knocked, nothing else going on
            assert np.array_equal(scene.render(t), plain.render(t)), name
        for effect in scene.preset.effects:
            episodes = scene.timeline.effects[effect]
            a, b, _ = episodes[len(episodes) // 2]
            mid = (a + b) / 2 if effect != "shift" else a + 60
            assert effect in scene.truth(mid)["effects"]
            diff = np.abs(scene.render(mid).astype(float) - plain.render(mid)).mean()
            assert diff > 1.0, (name, effect, diff)
            checked.add(effect)
    assert checked == set(EFFECTS)


def test_a_knocked_camera_moves_the_view_by_a_few_pixels(scenes):
    scene = scenes["corridor"]
    a = scene.timeline.effects["shift"][0][0]
    dx, dy = scene.timeline.shift_at(a + 1)
    assert scene.timeline.shift_at(a - 1) == (0, 0) and 2 <= max(abs(dx), abs(dy)) <= 5
    plain = Scene(replace(scene.preset, effects=(), shake_px=0.0), SEED, W, H)
    moved = Scene(replace(scene.preset, effects=("shift",), shake_px=0.0), SEED, W, H)
    img, ref = moved.render(a + 60).astype(float).mean(axis=2), plain.render(a + 60).astype(float).mean(axis=2)
    err = {(x, y): np.abs(np.roll(ref, (-y, -x), axis=(0, 1))[8:-8, 8:-8] - img[8:-8, 8:-8]).mean()
           for x in range(-4, 5) for y in range(-4, 5)}
    best = min(err, key=err.get)
    assert best != (0, 0) and best == tuple(int(np.sign(v)) * max(1, round(abs(v) / 2)) for v in (dx, dy))


def test_sim_sources_accept_the_new_presets():
    for name in HELD_OUT:
        frames = list(open_sim(f"sim:{name}?seed=1&start=43200&count=1&width=160&height=90"))
        assert len(frames) == 1 and frames[0].meta["truth"]["state"] in PRESETS[name].classes
