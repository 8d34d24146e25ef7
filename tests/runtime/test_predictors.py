"""Evaluation runtimes "edge", "micropython" and "c": the camera's own code scores exactly like the
host int8 reference, bit for bit, from the same JPEGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from camlytics.errors import ModelError, SourceError
from camlytics.export.c_codegen import CRuntime
from camlytics.model import int8ref
from camlytics.model.predictor import load_predictor
from camlytics.runtime.micropython import host_interpreter, run_edge_batch
from camlytics.runtime.predictors import MicroPythonPredictor
from camlytics.train.evaluate import evaluate_source

CAMLYTICS = Path(sys.executable).parent / "camlytics"


@pytest.fixture(scope="module")
def held_out_frames():
    """JPEG frames of a simulated day the model never saw: door open, closed by day and at night."""
    from camlytics.sim.camera import shared_scene

    scene = shared_scene("office", 7, 640, 360)
    opened = [e.start + 0.6 * (e.end - e.start) for e in scene.timeline.events[:4]]
    times = opened + [3 * 3600.0, 9 * 3600.0 + 11, 13 * 3600.0 + 7, 17 * 3600.0 + 3, 21 * 3600.0, 23.5 * 3600.0]
    return [scene.frame(t) for t in times]


def test_every_runtime_gives_the_int8_reference_logits_bit_for_bit(door_model, held_out_frames):
    int8 = load_predictor(door_model, "int8")
    x = np.stack([int8.inputs(f) for f in held_out_frames])  # Pillow decode (prepare_host)
    want = int8ref.forward(int8ref.as_model(door_model / "model.cml"), x)
    states = {f.meta["truth"]["state"] for f in held_out_frames}
    assert states == {"open", "closed"}

    edge = load_predictor(door_model, "edge")
    x_edge = np.stack([edge.inputs(f) for f in held_out_frames])  # the edge's own JPEG decoder
    np.testing.assert_array_equal(x_edge, x)
    np.testing.assert_array_equal(edge.logits(x_edge), want)

    mpy = load_predictor(door_model, "micropython")
    logits, x_mpy = mpy.predict_jpegs([f.jpeg for f in held_out_frames])  # decode + infer in MicroPython
    np.testing.assert_array_equal(x_mpy, x)
    np.testing.assert_array_equal(logits, want)

    np.testing.assert_array_equal(CRuntime(door_model).forward(x), want)

    classes = want.argmax(1)
    for runtime in ("edge", "micropython", "c"):
        predictor = load_predictor(door_model, runtime)
        probs = predictor.probs(np.stack([predictor.inputs(f) for f in held_out_frames]))
        np.testing.assert_array_equal(probs.argmax(1), classes, err_msg=runtime)
        np.testing.assert_allclose(probs, int8.probs(x), rtol=0, atol=1e-12, err_msg=runtime)


def test_micropython_probs_run_the_remembered_jpegs_and_plain_tensors(door_model, held_out_frames):
    mpy = load_predictor(door_model, "micropython")
    assert isinstance(mpy, MicroPythonPredictor)
    x = np.stack([mpy.inputs(f) for f in held_out_frames[:3]])
    tensor_only = np.random.default_rng(0).integers(0, 256, size=(2,) + x.shape[1:], dtype=np.uint8)
    batch = np.concatenate([x, tensor_only])
    want = int8ref.forward(int8ref.as_model(door_model / "model.cml"), batch)
    np.testing.assert_array_equal(mpy.logits(batch), want)


def labelled_folder(frames, tmp_path: Path) -> tuple[Path, Path]:
    """The frames as JPEG files in a folder, and a labels CSV of their true door states."""
    folder = tmp_path / "frames"
    folder.mkdir()
    rows = ["filename,label"]
    for i, frame in enumerate(frames):
        (folder / f"f{i:03d}.jpg").write_bytes(frame.jpeg)
        rows.append(f"f{i:03d}.jpg,{frame.meta['truth']['state']}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels


def test_evaluate_with_edge_runtimes_matches_the_int8_report(door_model, held_out_frames, tmp_path):
    folder, labels = labelled_folder(held_out_frames, tmp_path)
    reference = evaluate_source(door_model, str(folder), labels, "int8")
    for runtime in ("edge", "micropython"):
        report = evaluate_source(door_model, str(folder), labels, runtime)
        assert report["runtime"] == runtime
        assert report["confusion"] == reference["confusion"]
    out = subprocess.run([str(CAMLYTICS), "evaluate", str(door_model), str(folder), "--labels", str(labels),
                          "--runtime", "c"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_micropython_reports_an_unreadable_jpeg_per_item(door_model, held_out_frames):
    batch = run_edge_batch(host_interpreter(), door_model / "model.cml",
                           [("jpeg", b"\xff\xd8 not really a jpeg"), ("jpeg", held_out_frames[0].jpeg)])
    assert "error" in batch.results[0] and "Jpeg" in batch.results[0]["error"]
    assert len(batch.results[1]["logits"]) == 2 and batch.backend
    mpy = load_predictor(door_model, "micropython")
    with pytest.raises(SourceError, match="JPEG 0 of the batch"):
        mpy.predict_jpegs([b"\xff\xd8 not really a jpeg"])


def test_runtimes_need_an_edge_model_file(tmp_path):
    with pytest.raises(ModelError, match="unknown runtime 'viper'.*'edge'.*'micropython'"):
        load_predictor(tmp_path, "viper")
    for runtime in ("edge", "micropython", "c"):
        with pytest.raises(ModelError, match="model.cml"):
            load_predictor(tmp_path, runtime)


def test_run_with_the_c_runtime_drives_the_edge_app(door_model):
    from camlytics.sim.camera import SimulatedCamera

    with SimulatedCamera(preset="office", seed=0, speed=1.0, start=12 * 3600.0, auth=("root", "pass")) as cam:
        url = cam.url.replace("http://", "http://root:pass@")
        out = subprocess.run([str(CAMLYTICS), "run", str(door_model), "--camera", url, "--runtime", "c",
                              "--max-frames", "3", "--fps", "20"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "c backend, " in out.stdout and "camlytics-edge on CPython" in out.stdout
    assert "stats frames=3" in out.stdout
