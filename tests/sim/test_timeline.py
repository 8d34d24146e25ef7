"""Specification of the simulated day: door events, open fraction, people, daylight and lamps."""

from __future__ import annotations

import numpy as np
import pytest

from camlytics.sim import OPEN_ANGLE, PRESETS, Timeline


@pytest.fixture(scope="module")
def days() -> dict[tuple[str, int], Timeline]:
    # the original three; the held-out installations have their own spec (test_installations.py)
    return {(name, seed): Timeline(PRESETS[name], seed) for name in ("office", "warehouse", "home") for seed in (0, 1, 2)}


def test_same_preset_and_seed_give_the_same_day():
    a, b = Timeline(PRESETS["office"], 7), Timeline(PRESETS["office"], 7)
    assert a.events == b.events
    assert a.walkers == b.walkers
    assert a.sunrise == b.sunrise and a.cloud_cover == b.cloud_cover


def test_another_seed_gives_another_day():
    a, b = Timeline(PRESETS["office"], 1), Timeline(PRESETS["office"], 2)
    assert a.events != b.events
    assert a.sunrise != b.sunrise


def test_door_is_open_about_three_percent_of_the_day(days):
    for (name, seed), tl in days.items():
        assert 0.015 <= tl.open_fraction() <= 0.05, (name, seed, tl.open_fraction())


def test_open_fraction_matches_the_angle_curve(days):
    tl = days[("home", 1)]
    ts = np.arange(0.0, 86400.0, 0.25)
    sampled = float(np.mean(tl.angles(ts) > OPEN_ANGLE))
    assert sampled == pytest.approx(tl.open_fraction(), abs=0.001)


def test_open_periods_range_from_seconds_to_minutes(days):
    for (name, seed), tl in days.items():
        lengths = [b - a for a, b, _ in tl.open_intervals()]
        assert min(lengths) < 20, (name, seed)  # brief pass-throughs
        assert max(lengths) > 120, (name, seed)  # propped open
        kinds = {e.kind for e in tl.events}
        assert {"pass", "propped", "ajar"} <= kinds, (name, seed, kinds)


def test_events_do_not_overlap_and_stay_inside_the_day(days):
    for tl in days.values():
        for a, b in zip(tl.events, tl.events[1:]):
            assert a.end <= b.start
        assert tl.events[0].start > 0 and tl.events[-1].end < 86400


def test_angle_is_zero_between_events_and_peaks_at_the_event_angle(days):
    tl = days[("office", 0)]
    ev = max(tl.events, key=lambda e: e.end - e.start)
    assert tl.angle(ev.start - 1) == 0.0 and tl.angle(ev.end + 1) == 0.0
    assert tl.angle((ev.start + ev.end) / 2) == pytest.approx(ev.angle)
    ts = np.linspace(ev.start, ev.end, 500)
    assert tl.angles(ts).max() <= ev.angle + 1e-9


def test_some_doors_are_left_ajar_below_the_threshold():
    near = [e.angle for seed in range(6) for e in Timeline(PRESETS["office"], seed).events if e.kind == "ajar"]
    assert any(a <= OPEN_ANGLE for a in near) and any(a > OPEN_ANGLE for a in near)


def test_people_walk_through_the_door_and_stand_in_front_of_it(days):
    p = PRESETS["office"]
    tl = days[("office", 0)]
    kinds = {w.kind for w in tl.walkers}
    assert kinds == {"through", "walk_by", "stand"}
    through = [w for w in tl.walkers if w.kind == "through"]
    # someone walking through ends up on the other side of the wall than where they started
    assert all((w.zs[0] < p.depth) != (w.zs[-1] < p.depth) for w in through)
    # pass-throughs happen while the door is open
    for w in through[:20]:
        crossing = [t for t in np.linspace(w.start, w.end, 400) if abs(w.position(t)[1] - p.depth) < 0.1]
        assert crossing and max(tl.angle(t) for t in crossing) > OPEN_ANGLE


def test_daylight_follows_the_sun_and_clouds(days):
    tl = days[("warehouse", 2)]
    assert float(tl.daylight(2 * 3600)) == 0.0
    noon = (tl.sunrise + tl.sunset) / 2
    assert float(tl.daylight(noon)) > 0.15
    assert 0 < float(tl.clear_sky(tl.sunrise + 60)) < float(tl.clear_sky(noon))


def test_lamps_follow_the_preset_schedule(days):
    tl = days[("office", 0)]
    assert not tl.lights_on(3 * 3600) and tl.lights_on(12 * 3600)
    home = days[("home", 0)]
    assert not home.lights_on(3 * 3600) and home.lights_on(21 * 3600)


def test_old_presets_have_no_effects_and_each_effect_keeps_its_episodes_alone():
    from dataclasses import replace

    assert all(Timeline(PRESETS[n], 0).effects == {} for n in ("office", "warehouse", "home"))
    roller = PRESETS["roller"]
    full = Timeline(roller, 4)
    for effect in roller.effects:  # switching the others off moves nothing: one random stream per effect
        alone = Timeline(replace(roller, effects=(effect,)), 4)
        assert alone.effects == {effect: full.effects[effect]}
        assert alone.events == full.events and alone.walkers == full.walkers


def test_slow_doors_take_longer_to_open_and_the_rare_state_follows_the_angle():
    roller, office = Timeline(PRESETS["roller"], 1), Timeline(PRESETS["office"], 1)
    assert min(e.opening for e in roller.events) > 5 * min(e.opening for e in office.events) * 0.9
    ts = np.arange(0.0, 86400.0, 3.0)
    assert np.array_equal(office.rare(ts), office.angles(ts) > OPEN_ANGLE)
    assert office.state(ts[office.rare(ts)][0]) == "open" and office.state(0.0) == "closed"
