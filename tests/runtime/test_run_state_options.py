"""`camlytics run --min-confidence P --active-class NAME`: the settings reach the edge app (its start line
says what it uses), override the model's own, and a bad value is one error line before any app starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from camlytics.sim.camera import SimulatedCamera

CAMLYTICS = Path(sys.executable).parent / "camlytics"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Model files with classes closed/open: "plain" without a min_confidence, "floor" with 0.5 in its metadata."""
    from camlytics.export.testmodels import random_model

    out = tmp_path_factory.mktemp("models")
    plain, floor = random_model(0), random_model(0)
    floor.meta["min_confidence"] = 0.5
    paths = {"plain": out / "plain.cml", "floor": out / "floor.cml"}
    paths["plain"].write_bytes(plain.to_bytes())
    paths["floor"].write_bytes(floor.to_bytes())
    return paths


@pytest.fixture(scope="module")
def camera():
    with SimulatedCamera(preset="office", seed=0, start=12 * 3600.0, auth=("root", "secret"), prewarm=False) as cam:
        yield cam.url.replace("http://", "http://root@")


def run(model: Path, camera: str, *options: str, password: str = "secret") -> subprocess.CompletedProcess:
    """`camlytics run` under CPython for two frames."""
    env = {**os.environ, "CAMLYTICS_PASSWORD": password}
    return subprocess.run([str(CAMLYTICS), "run", str(model), "--camera", camera, "--runtime", "python",
                           "--max-frames", "2", *options], env=env, capture_output=True, text=True, timeout=120)


def start_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "started: " in line]
    assert len(lines) == 1, result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize("model, options, expected", [
    ("plain", [], "active open, min_confidence 0.00"),  # the app's defaults: open, never unknown
    ("plain", ["--min-confidence", "0.35", "--active-class", "closed"], "active closed, min_confidence 0.35"),
    ("floor", [], "active open, min_confidence 0.50"),  # the model's own floor
    ("floor", ["--min-confidence", "0"], "active open, min_confidence 0.00"),  # the option overrides the model
    ("floor", ["--active-class", "open", "--min-confidence", "0.8"], "active open, min_confidence 0.80"),
])
def test_the_options_reach_the_app_over_the_models_settings(models, camera, model, options, expected):
    assert expected in start_line(run(models[model], camera, *options))


@pytest.mark.parametrize("options, message", [
    (["--active-class", "door"], "--active-class must be one of the model's classes closed, open, got 'door'"),
    (["--active-class", "unknown"], "--active-class must be one of the model's classes closed, open, got 'unknown' "
                                    "(the unknown state drives nothing)"),
    (["--active-class", ""], "--active-class must name one of the model's classes, got ''"),
    (["--min-confidence", "1"], "--min-confidence must be a probability in [0, 1), got 1"),
    (["--min-confidence", "-0.1"], "--min-confidence must be a probability in [0, 1), got -0.1"),
    (["--min-confidence", "nan"], "--min-confidence must be a probability in [0, 1), got nan"),
])
def test_a_bad_value_is_one_error_line_and_no_app_starts(models, camera, options, message):
    result = run(models["plain"], camera, *options)
    assert result.returncode != 0
    assert result.stdout == ""  # the app never started: it would have printed its start line
    assert result.stderr == f"camlytics run: error: {message}\n"


def test_a_class_is_checked_against_the_model_before_the_camera_is_asked(models, camera):
    # a wrong password: had the camera been asked first, its 401 would be the error
    assert "401" in run(models["plain"], camera, password="wrong").stderr
    result = run(models["plain"], camera, "--active-class", "door", password="wrong")
    assert result.returncode != 0
    assert result.stderr == ("camlytics run: error: --active-class must be one of the model's classes closed, "
                             "open, got 'door'\n")


def test_the_app_reports_the_models_version_as_a_bundle_would(models, camera):
    import hashlib

    from camlytics.deploy.bundle import model_version
    from camlytics.runtime.launch import app_config

    data = models["plain"].read_bytes()
    cfg = app_config(models["plain"], camera)
    assert cfg["model_version"] == f"sha-{hashlib.sha256(data).hexdigest()[:8]}"
    assert cfg["model_version"] == model_version(models["plain"].parent, data)
