"""`camlytics improve`: one closed-loop round against a simulated camera running the sensor's app for real:
the spool pulled through the camera's reverse proxy, labels imported, a comparison model trained without the
held-out slice, redeployed when better; a round with nothing new keeps the deployed model."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from camlytics.cli import main
from camlytics.fleet.config import load_fleet
from camlytics.fleet.deploy import app_name, deploy_version, sensor_target, sensor_version, state_path
from camlytics.fleet.improve import Scores
from camlytics.store import Dataset
from camlytics.store.models import deployed


def test_a_better_model_must_win_on_the_slice_and_not_lose_on_the_check_set():
    assert Scores(10, old_slice=0.5, new_slice=0.8).better()
    assert not Scores(10, old_slice=0.8, new_slice=0.8).better()  # a tie keeps the old
    assert not Scores(10, old_slice=0.5, new_slice=0.4).better()
    assert not Scores(10, old_slice=0.5, new_slice=0.9, old_check=0.9, new_check=0.85).better()
    assert Scores(10, old_slice=0.5, new_slice=0.9, old_check=0.9, new_check=0.9).better()
    assert "new 0.900 vs deployed 0.500" in Scores(10, old_slice=0.5, new_slice=0.9).text()


def test_with_no_model_yet_the_round_trains_with_the_fleet_files_options(tmp_path):
    from camlytics.fleet.improve import fleet_sensor, train_config

    path = tmp_path / "fleet.toml"
    path.write_text('[[camera]]\nname = "lobby"\nurl = "http://127.0.0.1:8081"\n  [[camera.sensor]]\n'
                    '  name = "door"\n  train = { epochs = 4, input = "16x24", family = "linear", seed = 3 }\n')
    fleet = load_fleet(path)
    cfg = train_config({}, fleet_sensor(fleet, fleet.sensors()[0]).fallback)
    assert (cfg.epochs_student, cfg.input_wh, cfg.family, cfg.seed) == (4, (16, 24), "linear", 3)


def one_condition_dataset(path, preset: str, seed: int, per_class: int = 10) -> None:
    """A few labels from the middle of the day only: the model trained on them has seen one light."""
    from camlytics.sim.camera import shared_scene

    scene = shared_scene(preset, seed, 320, 180)
    rng = np.random.default_rng(seed)
    with Dataset.open(path, create=True) as ds:
        ds.set_roi(scene.door_roi)
        counts = {"open": 0, "closed": 0}
        candidates = [t for e in scene.timeline.events if 11 * 3600 < e.start < 15 * 3600
                      for t in np.arange(e.start, e.end, 5.0)] + rng.uniform(11 * 3600, 15 * 3600, 200).tolist()
        for t in candidates:
            state = scene.truth(t)["state"]
            if counts[state] >= per_class:
                continue
            frame = scene.frame(t)
            rid = ds.add_image(frame.jpeg, timestamp=t, source="sim", sampler="test", reason="truth", score=0.0)
            ds.set_label(rid, state, "simulator")
            counts[state] += 1


def spool_labels(url: str, app: str, auth, minimum: int, timeout: float) -> list[tuple[str, str]]:
    """Wait for `minimum` spooled frames; (name, true state) of each, from the simulator's clock and truth."""
    deadline = time.monotonic() + timeout
    while True:
        listing = httpx.get(f"{url}/local/{app}/spool", auth=auth, timeout=30)
        if listing.status_code == 200 and len(listing.json()) >= minimum:
            break
        assert time.monotonic() < deadline, f"the app spooled fewer than {minimum} frames in {timeout} s"
        time.sleep(2)
    clock = httpx.get(f"{url}/camlytics-sim/clock", timeout=30).json()
    now = time.time()
    out = []
    for item in listing.json():
        t = (clock["t"] - (now - item["time"]) * clock["speed"]) % 86400
        out.append((item["name"], httpx.get(f"{url}/camlytics-sim/truth", params={"t": t}, timeout=30).json()["state"]))
    return out


def predicted(model_dir, jpegs: list[bytes]) -> list[str]:
    """The model's class for each frame, as improve scores it (the int8 runtime, the model's own input)."""
    from camlytics.model.inputs import load_input
    from camlytics.model.predictor import load_predictor

    predictor = load_predictor(model_dir, "int8")
    x = np.stack([load_input(jpeg, predictor.spec, f"frame {i}") for i, jpeg in enumerate(jpegs)])
    return [predictor.classes[i] for i in predictor.probs(x).argmax(1)]


NIGHT_STAMP = 4_102_444_800_000  # unix ms of 2100-01-01: newer than any frame the app spools itself (wall clock)


def night_frames(preset: str, seed: int, count: int = 12) -> list[tuple[bytes, str]]:
    """(JPEG, true state) of IR night frames, closed and open in turn: a light the day-only model never saw."""
    from camlytics.sim.camera import shared_scene

    scene = shared_scene(preset, seed, 320, 180)
    out = []
    for i in range(count):
        frame = scene.frame((22 * 3600 + i * 1800) % 86400, door_angle=0.0 if i % 2 == 0 else 50.0 + 5 * (i % 7))
        assert frame.meta["truth"]["night"], frame.meta["truth"]
        out.append((frame.jpeg, frame.meta["truth"]["state"]))
    return out


def balanced(truth: list[str], guess: list[str]) -> float:
    """Mean per-class recall (what improve scores with)."""
    return float(np.mean([np.mean([g == c for t, g in zip(truth, guess) if t == c]) for c in sorted(set(truth))]))


def app_status(url: str, app: str, auth, version: str, timeout: float) -> dict:
    """The app's /status through the camera's reverse proxy, once it reports `version` (it restarts on deploy)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = httpx.get(f"{url}/local/{app}/status", auth=auth, timeout=30)
            status = reply.json() if reply.status_code == 200 else {"http": reply.status_code}
        except (httpx.HTTPError, ValueError) as exc:
            status = {"error": str(exc)}
        if (status.get("model") or {}).get("version") == version:
            return status
        assert time.monotonic() < deadline, f"the app did not report {version} in {timeout} s: {status}"
        time.sleep(1)


def spool_directory(url: str, app: str) -> Path:
    """Where this camera keeps the app's spool (its directory, as the simulator lists it, then localdata/spool)."""
    listing = httpx.get(f"{url}/camlytics-sim/apps", timeout=30).json()
    spool = Path(listing["apps"][app]["directory"]) / "localdata" / "spool"
    assert spool.is_dir(), listing
    return spool


def spool_frames(spool: Path, frames: list[tuple[bytes, str]], reason: str = "unknown") -> list[str]:
    """Put `frames` into the app's spool as the app writes them (temporary name, then rename); their names."""
    names = []
    for i, (jpeg, _) in enumerate(frames):
        name = f"{NIGHT_STAMP + i * 1000:013d}-{reason}.jpg"
        (spool / f"{name}.tmp").write_bytes(jpeg)
        os.rename(spool / f"{name}.tmp", spool / name)
        names.append(name)
    return names


@pytest.mark.slow
def test_improve_redeploys_a_better_model_then_keeps_it(sim_fleet, tmp_path, capsys):
    """The app runs for real on the camera; the frames to label are night frames put into its spool (the newest,
    so the held-out slice is theirs), on which the day-only deployed model is wrong: the comparison model, trained
    with the older half of them, is better on the newer half and replaces it."""
    from camlytics.train.pipeline import TrainConfig, run_training

    sim = sim_fleet(1, speed=240)
    fleet = load_fleet(sim.path)
    spec = fleet.sensors()[0]
    camera = sim.cameras[0]
    one_condition_dataset(spec.dataset, camera.preset, camera.seed)
    run_training(spec.dataset, spec.model_dir, TrainConfig(family="linear", folds=2, seed=0))
    first = sensor_version(spec)
    # the night: the deployed model (seen through improve's int8 runtime) gets it wrong, the newer half included
    night = night_frames(camera.preset, camera.seed)
    states = [state for _, state in night]
    guesses = predicted(first.path, [jpeg for jpeg, _ in night])
    assert set(states) == {"closed", "open"} and set(states[6:]) == {"closed", "open"}, states
    deployed_on_slice = balanced(states[6:], guesses[6:])
    assert deployed_on_slice < 1.0, (states, guesses)
    target = sensor_target(fleet, spec)
    assert deploy_version(spec.dataset, first, target, state=state_path(fleet.root, spec.camera, spec.name),
                          interpreter="camera").outcome == "deployed"

    app = app_name(spec.camera, spec.name)
    auth = httpx.DigestAuth("root", "fleet-pass")
    app_status(camera.url, app, auth, first.version, timeout=120)  # running: its spool directory exists
    names = spool_frames(spool_directory(camera.url, app), night)
    labels = tmp_path / "labels.csv"  # the night frames only: what the app spooled itself stays unlabelled
    labels.write_text("".join(f"{name},{state}\n" for name, state in zip(names, states)))

    args = ["improve", spec.key, "--fleet", str(sim.path), "--labels", str(labels), "--interpreter", "camera"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert " new, 0 pulled before" in out and f"labels from {labels}: {len(names)} changed, 0 unchanged" in out, out
    assert f"{spec.key}: redeployed: v2-" in out and f"replaces {first.version}: slice of 6: new " in out, out
    assert f"vs deployed {deployed_on_slice:.3f}" in out, out
    now = deployed(spec.dataset, spec.camera)[-1][0]
    assert now.startswith("v2-")
    with Dataset.open(spec.dataset) as ds:
        pulled = [r for r in ds.records() if r.sampler == "spool"]
        assert sorted(r.original_name for r in ds.records(labelled=True) if r.sampler == "spool") == \
            [f"{app}/{name}" for name in names]
    assert len(pulled) >= len(names) and {r.reason for r in pulled} <= {"flip", "low_confidence", "unknown"}
    # the camera runs the new version: its app answers through the reverse proxy with it
    app_status(camera.url, app, auth, now, timeout=120)

    # again, with nothing newly labelled: the frames pulled before are skipped, the deployed model stays
    assert main(["improve", spec.key, "--fleet", str(sim.path), "--interpreter", "camera"]) == 0
    out = capsys.readouterr().out
    line = next((x for x in out.splitlines() if x.startswith(f"{spec.key}: spool of {app}: ")), "")
    skipped = re.search(r", (\d+) pulled before$", line)
    assert skipped and int(skipped.group(1)) >= len(names), out  # what the app spools meanwhile is new
    assert f"{spec.key}: kept: fewer than 2 labelled frames that {now} never saw" in out, out
    assert deployed(spec.dataset, spec.camera)[-1][0] == now


@pytest.mark.slow
def test_improve_keeps_the_deployed_model_when_the_new_labels_show_nothing_better(sim_fleet, tmp_path, capsys):
    """New frames are labelled, but the deployed model already gets them (and the check set) right: the model
    trained with them can at best tie, and a tie keeps the old one; the camera goes on running it."""
    from camlytics.sim.camera import shared_scene
    from camlytics.train.pipeline import TrainConfig, run_training

    sim = sim_fleet(1, speed=240, extra_sensor='check = "check/door"')
    fleet = load_fleet(sim.path)
    spec = fleet.sensors()[0]
    camera = sim.cameras[0]
    one_condition_dataset(spec.dataset, camera.preset, camera.seed)
    run_training(spec.dataset, spec.model_dir, TrainConfig(family="linear", folds=2, seed=0))
    first = sensor_version(spec)
    # the check set: frames from all day, labelled as the deployed model sees them (it scores 1.0 there)
    scene = shared_scene(camera.preset, camera.seed, 320, 180)
    check_jpegs = [scene.frame(t).jpeg for t in range(7 * 3600, 19 * 3600, 3600)]
    with Dataset.open(spec.check, create=True) as ds:
        ds.set_roi(scene.door_roi)
        for t, jpeg, label in zip(range(7 * 3600, 19 * 3600, 3600), check_jpegs, predicted(first.path, check_jpegs)):
            ds.set_label(ds.add_image(jpeg, timestamp=t, source="sim", sampler="test", reason="check", score=0.0),
                         label, "simulator")
    target = sensor_target(fleet, spec)
    target = dataclasses.replace(target, params={**target.params, "MinConfidence": "0.9", "FrameRate": "2"})
    assert deploy_version(spec.dataset, first, target, state=state_path(fleet.root, spec.camera, spec.name),
                          interpreter="camera").outcome == "deployed"

    # the spooled frames, labelled with what the deployed model says of them
    app = app_name(spec.camera, spec.name)
    auth = httpx.DigestAuth("root", "fleet-pass")
    names = [name for name, _ in spool_labels(camera.url, app, auth, minimum=6, timeout=180)]
    jpegs = [httpx.get(f"{camera.url}/local/{app}/spool/{name}", auth=auth, timeout=30).content for name in names]
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"{name},{label}\n" for name, label in zip(names, predicted(first.path, jpegs))))

    assert main(["improve", spec.key, "--fleet", str(sim.path), "--labels", str(labels), "--interpreter",
                 "camera"]) == 0
    out = capsys.readouterr().out
    assert f"labels from {labels}: {len(names)} changed" in out, out
    verdict = [line for line in out.splitlines() if line.startswith(f"{spec.key}: kept: ")]
    assert verdict and f"{first.version} stays: slice of " in verdict[0], out
    assert "vs deployed 1.000; check set: new " in verdict[0] and verdict[0].endswith("vs deployed 1.000"), out
    with Dataset.open(spec.dataset) as ds:
        assert sum(1 for r in ds.records(labelled=True) if r.sampler == "spool") == len(names)
    # the registry and the camera still say the first version
    assert [v for v, _ in deployed(spec.dataset, spec.camera)] == [first.version]
    status = httpx.get(f"{camera.url}/local/{app}/status", auth=auth, timeout=30).json()
    assert status["model"]["version"] == first.version, status
