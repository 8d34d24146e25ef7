"""Specification of the rendered scene: determinism, ground truth, door, people, light, IR, noise."""

from __future__ import annotations

import numpy as np
import pytest

from camlytics.errors import SourceError
from camlytics.frames import decode_jpeg
from camlytics.sim import OPEN_ANGLE, Scene

W, H = 320, 180
ORIGINAL = ("office", "warehouse", "home")  # the held-out installations have their own spec: test_installations.py


@pytest.fixture(scope="module")
def office() -> Scene:
    return Scene("office", seed=3, width=W, height=H)


@pytest.fixture(scope="module")
def scenes(office) -> dict[str, Scene]:
    return {"office": office, **{n: Scene(n, seed=3, width=W, height=H) for n in ORIGINAL if n != "office"}}


def quiet_time(scene: Scene, near: float, night: bool | None = None) -> float:
    """A time near `near` with the door closed and nobody in view."""
    for dt in np.arange(0, 3600, 7.0):
        for t in (near - dt, near + dt):
            tr = scene.truth(t)
            empty = tr["people"] == 0 and scene.timeline.walkers_at(t) == []
            if tr["state"] == "closed" and tr["angle"] == 0 and empty and (night is None or tr["night"] == night):
                return float(t)
    raise AssertionError("no quiet time found")


def roi_diff(a: np.ndarray, b: np.ndarray, roi) -> tuple[float, float]:
    """Mean absolute difference inside and outside the ROI, on 4x4 block means (so sensor noise averages out)."""
    def blocks(img):
        g = img.astype(float).mean(axis=2)
        return g.reshape(H // 4, 4, W // 4, 4).mean(axis=(1, 3))

    d = np.abs(blocks(a) - blocks(b))
    x0, y0, x1, y1 = (v // 4 for v in roi)
    inside = np.zeros(d.shape, bool)
    inside[y0:y1 + 1, x0:x1 + 1] = True
    return float(d[inside].mean()), float(d[~inside].mean())


def test_render_gives_rgb_uint8_of_the_requested_size(office):
    img = office.render(12 * 3600)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert Scene("home", 0, 200, 120).render(100.0).shape == (120, 200, 3)


def test_render_is_a_pure_function_of_preset_seed_size_and_time(office):
    again = Scene("office", seed=3, width=W, height=H)
    times = [8 * 3600 + 1.5, 12 * 3600, 23 * 3600 + 10]
    first = [office.render(t) for t in times]
    for t, img in zip(reversed(times), reversed(first)):  # another call order, another instance
        assert np.array_equal(again.render(t), img)
        assert again.truth(t) == office.truth(t)


def test_another_seed_renders_another_day(office):
    other = Scene("office", seed=4, width=W, height=H)
    assert not np.array_equal(other.render(12 * 3600), office.render(12 * 3600))


def test_truth_state_follows_the_door_angle(office):
    tl = office.timeline
    times = [t for a, b, _ in tl.open_intervals()[:30] for t in (a - 0.5, (a + b) / 2, b + 0.5)]
    for t in times:
        tr = office.truth(t)
        assert tr["state"] == ("open" if tl.angle(t) > OPEN_ANGLE else "closed")
        assert tr["angle"] == pytest.approx(tl.angle(t), abs=0.01)
        assert tr["condition"].startswith(tr["state"] + "/")


def test_truth_has_every_field_of_the_contract(office):
    tr = office.truth(3600.0)
    assert set(tr) == {"t", "state", "angle", "people", "occluded", "light", "light_level", "night", "lights_on",
                       "condition"}
    assert tr["light_level"] in ("day", "twilight", "night") and 0 <= tr["light"] <= 1


def test_open_door_changes_the_image_inside_the_roi(scenes):
    for name, scene in scenes.items():
        ev = max(scene.timeline.events, key=lambda e: e.end - e.start)
        t_open = (ev.start + ev.end) / 2
        for dt in range(0, 600, 3):  # a moment of the open period without people
            if scene.truth(t_open + dt)["people"] == 0 and scene.truth(t_open + dt)["state"] == "open":
                t_open += dt
                break
        t_closed = quiet_time(scene, ev.start - 30)
        inside, outside = roi_diff(scene.render(t_open), scene.render(t_closed), scene.door_roi)
        assert inside > 6 and inside > 2.5 * outside, (name, inside, outside)


def test_a_held_door_is_rendered_and_labelled_at_its_angle(office):
    t = quiet_time(office, 12 * 3600)
    assert np.array_equal(office.render(t, door_angle=np.int64(0)), office.render(t))  # the day's door is closed then
    held = office.frame(t, door_angle=45.0)
    assert (held.meta["truth"]["angle"], held.meta["truth"]["state"]) == (45.0, "open")
    assert office.truth(t)["state"] == "closed"
    inside, outside = roi_diff(held.image, office.render(t), office.door_roi)
    assert inside > 6 and inside > 2.5 * outside
    ajar = office.truth(t, door_angle=OPEN_ANGLE)
    assert ajar["state"] == "closed" and office.truth(t, door_angle=OPEN_ANGLE + 0.5)["state"] == "open"
    for bad in (-1, 100.5, "ajar", float("nan"), True):
        with pytest.raises(SourceError, match="door angle"):
            office.frame(t, door_angle=bad)


def test_door_roi_is_inside_the_image_and_around_the_door(scenes):
    for scene in scenes.values():
        x0, y0, x1, y1 = scene.door_roi
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        assert (x1 - x0) * (y1 - y0) < 0.5 * W * H  # a region, not the whole image


def test_night_frames_are_grey_infrared_and_day_frames_are_colour(scenes):
    for name, scene in scenes.items():
        night = scene.render(quiet_time(scene, 2 * 3600, night=True))
        assert np.array_equal(night[..., 0], night[..., 1]) and np.array_equal(night[..., 1], night[..., 2]), name
        noon = (scene.timeline.sunrise + scene.timeline.sunset) / 2
        day = scene.render(quiet_time(scene, noon, night=False)).astype(int)
        assert np.abs(day[..., 0] - day[..., 2]).mean() > 2, name


def test_infrared_light_falls_off_towards_the_image_edges(office):
    img = office.render(quiet_time(office, 2 * 3600, night=True)).astype(float)[..., 0]
    centre = img[H // 3: 2 * H // 3, W // 3: 2 * W // 3].mean()
    corners = np.mean([img[:20, :20].mean(), img[:20, -20:].mean(), img[-20:, :20].mean(), img[-20:, -20:].mean()])
    assert centre > corners + 10


def test_presets_look_different(scenes):
    imgs = {n: s.render(quiet_time(s, 12 * 3600)).astype(float) for n, s in scenes.items()}
    names = sorted(imgs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(imgs[a] - imgs[b]).mean() > 15, (a, b)


def test_people_are_counted_and_sometimes_hide_the_door(scenes):
    for name, scene in scenes.items():
        stands = [w for w in scene.timeline.walkers if w.kind == "stand"]
        found = []
        for w in stands:
            t = (w.times[1] + w.times[2]) / 2
            tr = scene.truth(t)
            assert tr["people"] >= 1
            if tr["occluded"]:
                found.append(t)
        assert found, name
        colour = [t for t in found if not scene.truth(t)["night"]]  # in IR a person can match the door's grey
        t = (colour or found)[0]
        empty = quiet_time(scene, t, night=scene.truth(t)["night"])
        inside, outside = roi_diff(scene.render(t), scene.render(empty), scene.door_roi)
        assert inside > 3, (name, inside, outside)


def test_noise_rises_when_the_light_gets_low():
    office = Scene("office", seed=0, width=W, height=H)  # a day with a dim dusk before the IR light comes on
    day_t = quiet_time(office, 13 * 3600, night=False)
    colour_times = [t for t in np.arange(0, 86400, 60.0) if not office.truth(t)["night"]]
    dim_t = quiet_time(office, max(colour_times, key=office.exposure), night=False)
    assert office.exposure(dim_t) > 4 * office.exposure(day_t)

    def noise(img):  # high-pass energy on the flat wall right of the door
        g = img.astype(float).mean(axis=2)[int(H * 0.25):int(H * 0.45), int(W * 0.75):int(W * 0.95)]
        return float(np.abs(np.diff(g, axis=1)).mean())

    assert noise(office.render(dim_t)) > 1.5 * noise(office.render(day_t))


def test_auto_exposure_lags_behind_a_light_switch(office):
    tl = office.timeline
    ts = np.arange(3600.0, 86400.0, 1.0)
    on = tl.lights_on(ts)
    switches = ts[1:][on[1:] != on[:-1]]
    t = float(switches[0])
    # right after the switch the camera still uses the old exposure; seconds later it has adapted
    assert office.exposure(t + 0.5) != pytest.approx(office.exposure(t + 30), rel=0.05)
    assert office.exposure(t + 30) == pytest.approx(office.exposure(t + 60), rel=0.02)


def test_frame_carries_jpeg_and_truth(office):
    f = office.frame(12 * 3600.0, quality=70)
    assert f.source == "sim:office?seed=3" and f.timestamp == 12 * 3600.0
    assert f.meta["truth"] == office.truth(12 * 3600.0)
    decoded = decode_jpeg(f.jpeg)
    assert decoded.shape == (H, W, 3)
    assert 0 < np.abs(decoded.astype(int) - f.image.astype(int)).mean() < 6  # JPEG artefacts, same picture


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"preset": "garage"}, "garage"), ({"seed": -1}, "-1"), ({"width": 10}, "10"), ({"height": "x"}, "'x'")],
)
def test_bad_arguments_raise_a_source_error_naming_the_value(kwargs, needle):
    with pytest.raises(SourceError, match=needle):
        Scene(**kwargs)


def test_times_outside_the_day_are_rejected(office):
    for bad in (-1.0, 86400.0, "noon"):
        with pytest.raises(SourceError):
            office.render(bad)
    with pytest.raises(SourceError, match="quality"):
        office.frame(10.0, quality=0)


def test_camera_shakes_by_a_pixel_or_two(office):
    t0 = quiet_time(office, 12 * 3600)
    times = [t for t in np.arange(t0, t0 + 120, 3.0) if office.timeline.walkers_at(t) == []][:12]
    ref = office.render(times[0]).astype(float).mean(axis=2)
    shifts = []
    for t in times[1:]:
        img = office.render(t).astype(float).mean(axis=2)
        err = {(dx, dy): np.abs(np.roll(img, (dy, dx), axis=(0, 1))[8:-8, 8:-8] - ref[8:-8, 8:-8]).mean()
               for dx in range(-4, 5) for dy in range(-4, 5)}
        shifts.append(min(err, key=err.get))
    assert len(set(shifts)) > 1  # the view moves between frames...
    assert all(abs(dx) <= 4 and abs(dy) <= 4 for dx, dy in shifts)  # ...by at most 2 px each way from rest
