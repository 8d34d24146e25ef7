"""VapixCamera: snapshots over VAPIX with auth, retries, resolution negotiation and clear errors."""

from __future__ import annotations

import httpx
import pytest

from camlytics.errors import AuthError, SourceError
from camlytics.sim.camera import Response, SimulatedCamera
from camlytics.sources import open_source
from camlytics.sources.vapix import VapixCamera, nearest_resolution, parse_resolution_list

HTTP = httpx.Client(timeout=60)


def with_credentials(url: str, user: str, password: str) -> str:
    return url.replace("http://", f"http://{user}:{password}@")


def fail(cam, **params) -> None:
    assert HTTP.post(cam.url + "/camlytics-sim/fail", params=params).status_code == 200


def test_snapshots_carry_jpeg_bytes_time_and_simulator_truth(simcam):
    with open_source(simcam.url, count=2, resolution="320x180") as src:
        frames = list(src)
    assert isinstance(src, VapixCamera)
    assert len(frames) == 2 and src.skipped == 0
    for frame in frames:
        assert frame.size == (320, 180) and frame.jpeg[:2] == b"\xff\xd8"
        assert frame.meta["truth"]["state"] in ("open", "closed")
        assert 0 <= frame.meta["sim_time"] < 86400
    assert frames[0].timestamp <= frames[1].timestamp


def test_digest_auth_from_the_url_and_wrong_password():
    with SimulatedCamera(auth=("root", "p@ss:word")) as cam:
        url = with_credentials(cam.url, "root", "p%40ss%3Aword")  # URL-quoted user info is unquoted
        with open_source(url, count=1, resolution="320x180") as src:
            assert next(iter(src)).size == (320, 180)
        with pytest.raises(AuthError, match="HTTP 401"):
            with open_source(with_credentials(cam.url, "root", "wrong"), count=1) as src:
                next(iter(src))
        with pytest.raises(AuthError, match="no credentials"):
            next(iter(open_source(cam.url, count=1)))


def test_basic_auth_forced_or_negotiated_when_the_camera_offers_only_basic():
    with SimulatedCamera(auth=("root", "pass"), basic=True) as cam:
        with open_source(with_credentials(cam.url, "root", "pass"), auth="basic", count=1) as src:
            assert len(list(src)) == 1
            assert src.http.auth_mode == "basic"
    with SimulatedCamera(auth=("root", "pass"), basic="only") as cam:
        with open_source(with_credentials(cam.url, "root", "pass"), count=1) as src:
            assert len(list(src)) == 1
            assert src.http.auth_mode == "basic"  # "auto" answered the Basic-only challenge
        with pytest.raises(AuthError, match="HTTP 401"):
            next(iter(open_source(with_credentials(cam.url, "root", "nope"), count=1)))


def test_errors_name_the_camera_but_never_the_password():
    with SimulatedCamera(auth=("root", "topsecret")) as cam:
        with pytest.raises(AuthError) as info:
            next(iter(open_source(with_credentials(cam.url, "root", "topsecretX"), count=1)))
    assert cam.url in str(info.value) and "topsecret" not in str(info.value)


def test_connection_refused_is_retried_then_reported(free_port):
    src = open_source(f"http://127.0.0.1:{free_port}", retries=2, backoff=0.01, count=1)
    with pytest.raises(SourceError, match=r"connection refused.*3 attempts"):
        next(iter(src))


def test_5xx_is_retried_with_backoff(simcam):
    fail(simcam, status=503, count=2)
    with open_source(simcam.url, retries=3, backoff=0.01, count=1, resolution="320x180") as src:
        assert len(list(src)) == 1
    fail(simcam, status=500, count=5)
    with pytest.raises(SourceError, match="HTTP 500"):
        next(iter(open_source(simcam.url, retries=1, backoff=0.01, count=1)))


def test_404_and_403_are_clear_errors(simcam):
    with pytest.raises(SourceError, match="not found \\(HTTP 404\\)"):
        next(iter(open_source(simcam.url + "/axis-cgi/jpg/nothing.cgi", count=1)))
    simcam.add_route("GET", "/axis-cgi/jpg/forbidden.cgi", lambda cam, req: Response.text("no", 403))
    with pytest.raises(AuthError, match="HTTP 403"):
        next(iter(open_source(simcam.url + "/axis-cgi/jpg/forbidden.cgi", count=1)))


def test_html_or_truncated_answer_as_first_frame_is_an_error(simcam):
    fail(simcam, kind="html", count=2)  # the first frame is asked for twice
    with pytest.raises(SourceError, match="expected a JPEG, got text/html"):
        next(iter(open_source(simcam.url, count=1)))
    fail(simcam, kind="truncated", count=2)
    with pytest.raises(SourceError, match="corrupt or truncated JPEG"):
        next(iter(open_source(simcam.url, count=1)))


def test_a_corrupt_frame_mid_stream_is_skipped_and_counted(simcam):
    fail(simcam, kind="corrupt", after=1, count=1)
    with open_source(simcam.url, count=3, resolution="320x180") as src:
        frames = list(src)
    assert len(frames) == 3 and src.skipped == 1


def test_resolution_is_negotiated_from_the_supported_list():
    with SimulatedCamera(auth=None, resolutions=["640x360", "320x180"]) as cam:
        with open_source(cam.url, count=1, resolution="1920x1080") as src:
            frame = next(iter(src))
    assert src.resolution == "640x360" and frame.size == (640, 360)
    assert parse_resolution_list("root.Properties.Image.Resolution=1920x1080,640x480\n") == [(1920, 1080), (640, 480)]
    assert nearest_resolution((800, 600), [(1920, 1080), (640, 480), (1024, 576)]) == (640, 480)
    assert nearest_resolution((1000, 560), [(1920, 1080), (640, 360), (1024, 576)]) == (1024, 576)


def test_interval_spaces_snapshots(simcam):
    with open_source(simcam.url, count=2, interval=0.3, resolution="320x180") as src:
        a, b = list(src)
    assert b.timestamp - a.timestamp >= 0.29


def test_a_slow_snapshot_does_not_make_the_next_one_come_at_once():
    # The first snapshot of a scene nobody rendered yet takes a while (the camera builds it: about 1 s at
    # 960x540 here, 0.15-0.2 s at 320x180, too close to the interval on a fast machine); the snapshot after
    # a late one is still `interval` later, not a burst to catch up.
    with SimulatedCamera(preset="home", seed=4321, auth=None, prewarm=False) as cam:
        with open_source(cam.url, count=3, interval=0.1, resolution="960x540") as src:
            times = [f.timestamp for f in src]
    assert times[1] - times[0] > 0.15  # the slow one
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.095


def test_a_burst_pace_makes_the_next_snapshots_come_sooner(simcam):
    # interval 2 s; after the first snapshot a sampler asks for a burst at 0.1 s, after the third it ends.
    times = []
    with open_source(simcam.url, count=5, interval=2.0, resolution="320x180") as src:
        for frame in src:
            times.append(frame.timestamp)
            if len(times) == 1:
                src.pace(0.1)
            elif len(times) == 3:
                src.pace(None)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.095 <= g < 1.0 for g in gaps[:2]), gaps  # the burst
    assert all(g >= 1.95 for g in gaps[2:]), gaps  # the camera's own interval again


def test_a_burst_pace_never_slows_a_camera_read_as_fast_as_it_serves(simcam):
    with open_source(simcam.url, count=3, resolution="320x180") as src:
        src.pace(5.0)
        times = [f.timestamp for f in src]
    assert times[-1] - times[0] < 2.0, times


@pytest.mark.parametrize("options, message", [
    ({"resolution": "big"}, "WIDTHxHEIGHT"),
    ({"compression": 101}, "compression"),
    ({"count": 0}, "count must be > 0"),
    ({"interval": "x"}, "interval must be a number"),
    ({"auth": "ntlm"}, "auth must be one of"),
    ({"timestamps": "t.csv"}, "does not take option"),
])
def test_bad_options_name_the_value(simcam, options, message):
    with pytest.raises(SourceError, match=message):
        open_source(simcam.url, **options)


def test_one_bad_first_frame_is_retried_once(simcam):
    fail(simcam, kind="corrupt", count=1)
    with open_source(simcam.url, count=2) as src:
        assert len(list(src)) == 2 and src.skipped == 1
    fail(simcam, kind="html", count=2)
    with pytest.raises(SourceError, match="2 bad frames in a row"):
        next(iter(open_source(simcam.url, count=1)))
