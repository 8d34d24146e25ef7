"""`--runtime firmware:ARCH` for `camlytics evaluate` and `camlytics run`: the camera's firmware, on a PC,
computes exactly what the host reference does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from camlytics.cli import main
from camlytics.model import int8ref
from camlytics.model.predictor import load_predictor
from camlytics.train.evaluate import evaluate_source
from tests.conftest import micropython_source, one_line_error
from tests.edge.mqtt_helpers import Subscriber, tls_mosquitto, tls_pki  # noqa: F401 - fixtures
from tests.runtime.test_predictors import held_out_frames, labelled_folder  # noqa: F401 - fixture

CAMLYTICS = Path(sys.executable).parent / "camlytics"


@pytest.fixture(autouse=True)
def _source(monkeypatch):
    monkeypatch.setenv("CAMLYTICS_MICROPYTHON_SRC", micropython_source())


@pytest.mark.parametrize("arch", ["armv7hf", "aarch64"])
def test_firmware_runtime_gives_the_int8_reference_logits_and_inputs(arch, door_model, held_out_frames, firmware_binary):
    firmware_binary(arch)  # built (or cached) through the shared fixture's lock
    int8 = load_predictor(door_model, "int8")
    x = np.stack([int8.inputs(f) for f in held_out_frames])
    want = int8ref.forward(int8ref.as_model(door_model / "model.cml"), x)
    fw = load_predictor(door_model, f"firmware:{arch}")
    assert fw.runtime == f"firmware:{arch}"
    logits, x_fw = fw.predict_jpegs([f.jpeg for f in held_out_frames])  # decode + infer in the firmware
    np.testing.assert_array_equal(x_fw, x)
    np.testing.assert_array_equal(logits, want)


def test_evaluate_with_the_firmware_matches_the_int8_report(door_model, held_out_frames, tmp_path, firmware_binary):
    firmware_binary("aarch64")
    folder, labels = labelled_folder(held_out_frames, tmp_path)
    reference = evaluate_source(door_model, str(folder), labels, "int8")
    report = evaluate_source(door_model, str(folder), labels, "firmware:aarch64")
    assert report["runtime"] == "firmware:aarch64" and report["confusion"] == reference["confusion"]


def test_run_drives_the_edge_app_in_the_firmware_over_mqtts(door_model, tls_mosquitto, tls_pki, firmware_binary):
    from camlytics.sim.camera import SimulatedCamera

    firmware_binary("armv7hf")
    sub = Subscriber(tls_mosquitto.host, tls_mosquitto.port, "camlytics/#", ca_file=tls_pki.ca)
    try:
        with SimulatedCamera(preset="office", seed=0, speed=1.0, start=12 * 3600.0, auth=("root", "pass")) as cam:
            url = cam.url.replace("http://", "http://root:pass@")
            out = subprocess.run([str(CAMLYTICS), "run", str(door_model), "--camera", url, "--runtime", "firmware:armv7hf",
                                  "--mqtt", f"mqtts://{tls_mosquitto.host}:{tls_mosquitto.port}", "--mqtt-ca",
                                  str(tls_pki.ca), "--max-frames", "6", "--fps", "10", "--stable-frames", "2"],
                                 capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr + out.stdout
        assert "c backend, c JPEG kernels" in out.stdout and "linux-armv7hf camlytics" in out.stdout, out.stdout
        assert "mqtt connected to mqtts://" in out.stdout, out.stdout
        sub.wait_for(lambda t, p, r: t == "camlytics/door/state" and p == "closed", timeout=30)
    finally:
        sub.close()


@pytest.mark.parametrize("runtime, words", [
    ("firmware:mips", "must be one of x86_64, armv7hf, aarch64"),
    ("firmware", "must be one of x86_64, armv7hf, aarch64"),
])
def test_evaluate_with_a_bad_firmware_runtime_is_one_line(door_model, tmp_path, capsys, runtime, words):
    (tmp_path / "a.jpg").write_bytes(b"")
    assert main(["evaluate", str(door_model), str(tmp_path), "--runtime", runtime]) == 2
    one_line_error(capsys, words)


def test_run_refuses_a_ca_file_without_tls(door_model, tmp_path, capsys):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert main(["run", str(door_model), "--camera", "http://127.0.0.1:9", "--mqtt", "mqtt://127.0.0.1",
                 "--mqtt-ca", str(ca), "--runtime", "firmware:armv7hf"]) == 2
    one_line_error(capsys, "--mqtt-ca needs an mqtts:// broker URL")
    assert main(["run", str(door_model), "--camera", "http://127.0.0.1:9", "--mqtt", "mqtts://127.0.0.1",
                 "--mqtt-ca", str(tmp_path / "missing.pem")]) == 2
    one_line_error(capsys, "missing.pem: no such file")
