"""`camlytics demo --quick` end to end: every artefact it promises exists and says what it should.

One run of the real CLI (in a subprocess) feeds all the checks: the datasets, the model directory,
the ACAP package, the MQTT state events from the app running on the simulated camera, and the
report with its figures. The checks are plain functions called from one test so that pytest-xdist
never runs the demo twice (a module fixture would run once per worker).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_demo(out: Path) -> tuple[dict, str]:
    """Run `camlytics demo --quick --out OUT`: (demo.json, console output)."""
    env = {**os.environ, "COLUMNS": "400"}  # rich wraps at the terminal width: keep paths on one line
    proc = subprocess.run([sys.executable, "-m", "camlytics", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=480, env=env)
    assert proc.returncode == 0, f"demo failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "demo.json").read_text()), proc.stdout


@pytest.mark.slow
def test_quick_demo_produces_every_artefact(tmp_path):
    out = tmp_path / "demo-output"
    summary, stdout = run_demo(out)
    demo = (out, summary, stdout)
    check_dataset_holds_the_smart_samplers_frames_labelled_from_the_simulator(demo)
    check_smart_sampler_keeps_more_open_doors_than_the_time_based_one(demo)
    check_model_directory_loads_and_its_metrics_match_the_file(demo)
    check_the_model_was_chosen_by_cross_validation_and_scored_on_the_check_set(demo)
    check_held_out_scores_from_host_int8_and_micropython_agree(demo)
    check_acap_package_was_built_with_the_model_and_deployed(demo)
    check_mqtt_reported_a_true_door_change_with_the_right_state(demo)
    check_report_references_every_figure_and_they_are_non_empty_pngs(demo)


def check_dataset_holds_the_smart_samplers_frames_labelled_from_the_simulator(demo) -> None:
    from camlytics.store import Dataset

    out, summary, _ = demo
    with Dataset.open(out / "dataset") as ds:
        records = ds.records()
        assert len(records) == summary["samplers"]["smart"]["kept"] > 0
        assert all(r.sampler.startswith("smart") for r in records)
        assert all(r.label == r.meta["truth"]["state"] and r.annotator == "simulator" for r in records)
        assert {r.label for r in records} == {"open", "closed"}
        assert all(ds.image_path(r).read_bytes()[:2] == b"\xff\xd8" for r in records)  # JPEG files
        assert ds.roi is not None
    with Dataset.open(out / "dataset-time") as ds:
        assert all(r.sampler == "time" for r in ds.records())


def check_smart_sampler_keeps_more_open_doors_than_the_time_based_one(demo) -> None:
    _, summary, _ = demo
    smart, timed = summary["samplers"]["smart"], summary["samplers"]["time-based"]
    assert smart["open"] / smart["kept"] > timed["open"] / timed["kept"]


def check_model_directory_loads_and_its_metrics_match_the_file(demo) -> None:
    from camlytics.edge.model import load_model
    from camlytics.model.predictor import load_predictor

    out, _, _ = demo
    model_dir = out / "model"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    model = load_model(str(model_dir / "model.cml"))
    assert model.meta["classes"] == metrics["classes"] == ["closed", "open"]
    assert metrics["model_file_bytes"] == (model_dir / "model.cml").stat().st_size
    assert metrics["macs"] <= metrics["budget"]["macs"]
    for name in ("student.pt", "model.onnx", "report.html", "config.json"):
        assert (model_dir / name).is_file(), name
    predictor = load_predictor(model_dir, "int8")
    assert predictor.classes == ["closed", "open"]


def check_the_model_was_chosen_by_cross_validation_and_scored_on_the_check_set(demo) -> None:
    from camlytics.store import Dataset
    from camlytics.train.crossval import rank_key

    out, summary, stdout = demo
    with Dataset.open(out / "check") as ds:  # the door held at 7-13 deg, labelled by the 10 deg threshold
        records = ds.records(labelled=True)
        assert len(records) == 80 and {r.label for r in records} == {"open", "closed"}
        assert all((r.label == "open") == (float(r.reason.split()[3]) > 10) for r in records)
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    cands = metrics["cv"]["candidates"]
    assert {c["family"] for c in cands.values()} >= {"linear", "cnn"}  # both families cross-validated
    assert all(rank_key(c) <= rank_key(cands[metrics["shipped"]]) for c in cands.values())
    assert "candidates" not in metrics and metrics["check"]["int8"]["n"] == 80  # one run; the check set scored
    assert f"model: {out / 'model'}: {metrics['shipped']}" in stdout and "why: " in stdout
    assert "more labels? " in stdout
    assert summary["training"]["runs"].startswith(f"one: {metrics['shipped']} shipped by")
    report = (out / "report.html").read_text()
    assert "cross-validated" in report and metrics["shipped"] in report


def check_held_out_scores_from_host_int8_and_micropython_agree(demo) -> None:
    _, summary, stdout = demo
    runs = {h["runtime"]: h for h in summary["heldout"]}
    assert set(runs) == {"int8 (host)", "MicroPython"}
    assert runs["MicroPython"]["confusion"] == runs["int8 (host)"]["confusion"]  # the same int8 arithmetic
    n = summary["heldout_n"]
    assert all(sum(map(sum, h["confusion"])) == n for h in runs.values())
    assert re.search(rf"agree on {n} of {n} frames", stdout)
    assert runs["int8 (host)"]["balanced_accuracy"] > 0.5  # better than a coin


def check_acap_package_was_built_with_the_model_and_deployed(demo) -> None:
    out, summary, stdout = demo
    eap = Path(summary["eap"])
    assert eap.parent == out and eap.suffix == ".eap"
    with tarfile.open(eap, "r:gz") as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert {"manifest.json", "LICENSE", "model.cml", "camlytics_door", "lib/micropython"} <= names
    assert eap.name.endswith("_armv7hf.eap") and manifest["acapPackageConf"]["setup"]["architecture"] == "armv7hf"
    assert manifest["acapPackageConf"]["setup"]["appName"] == "camlytics_door"
    assert "deployed to the simulated camera" in stdout
    log = (out / "edge-app.log").read_text()
    assert "camlytics-edge: started" in log and "MicroPython" in log
    assert "linux-armv7hf camlytics" in log and "c backend, c JPEG kernels" in log  # the firmware, under qemu-arm


def check_mqtt_reported_a_true_door_change_with_the_right_state(demo) -> None:
    _, summary, _ = demo
    live = summary["live"]
    assert live["transport"].startswith("MQTT")
    events = live["events"]
    assert events and events[0]["true_change"] == "(initial state)"
    matched = [e for e in events if e["delay_s"] != ""]
    assert matched, f"no published state followed a true change: {events}, truth {live['true_changes']}"
    for e in matched:
        # the delay is measured from the latest true change to the state the app published
        assert e["delay_s"] >= 0
        true_t = e["sim_t"] - e["delay_s"]
        assert any(abs(t - true_t) <= 0.1 and s == e["state"] for t, s in live["true_changes"])


def check_report_references_every_figure_and_they_are_non_empty_pngs(demo) -> None:
    out, summary, stdout = demo
    html = (out / "report.html").read_text()
    referenced = set(re.findall(r'<img src="([^"]+)"', html))
    expected = {"mosaic.png", "labels.png", "curves.png", "timeline.png", "confusion-int8.png",
                "confusion-micropython.png"}
    assert expected <= referenced == set(summary["figures"])
    for name in referenced:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, name
    assert f"camlytics annotate {out / 'dataset'}" in stdout  # how a person would label instead
    assert str(out / "report.html") in stdout.replace("\n", "")


def test_a_second_run_refuses_a_directory_the_demo_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, "-m", "camlytics", "demo", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no earlier demo wrote" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("k", ["0", "17"])
def test_candidates_out_of_range_is_one_line_and_writes_nothing(tmp_path, k):
    proc = subprocess.run([sys.executable, "-m", "camlytics", "demo", "--candidates", k, "--out", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"camlytics demo: error: --candidates must be in 1..16, got {k}"
    assert not (tmp_path / "d").exists()


def test_an_earlier_demos_output_is_replaced_and_other_files_kept(tmp_path):
    from camlytics.demo.pipeline import MARKER, prepare_out

    (tmp_path / MARKER).write_text("{}")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "index.sqlite").write_bytes(b"old")
    (tmp_path / "timeline.png").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    prepare_out(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "notes.txt"]
    assert "running" in (tmp_path / MARKER).read_text()


def test_a_demo_that_stopped_half_way_does_not_block_the_next(tmp_path):
    from camlytics.demo.pipeline import prepare_out

    out = tmp_path / "d"
    prepare_out(out)  # a run starts, writes a dataset, and is killed
    (out / "dataset").mkdir()
    (out / "dataset" / "index.sqlite").write_bytes(b"half")
    prepare_out(out)  # the next run may start there
    assert not (out / "dataset").exists()


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed must be a whole number 0..2147483646, got -1"),
    (["--budget", "0"], "--budget must be at least 30 frames, got 0"),
    (["--frames-per-day", "0"], "--frames-per-day must be in 100..86400, got 0"),
    (["--live-seconds", "-1"], "--live-seconds must be in (0, 86400], got -1"),
])
def test_bad_demo_settings_are_one_line_and_write_nothing(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "camlytics", "demo", *args, "--out", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == f"camlytics demo: error: {message}"
    assert not (tmp_path / "d").exists()


def test_published_states_are_paired_with_the_latest_true_change_to_that_state():
    from camlytics.demo.live import StateEvent, match_changes

    changes = [(100.0, "open"), (110.0, "closed"), (200.0, "open"), (400.0, "closed")]
    events = [StateEvent("closed", 50.0, 0.0), StateEvent("closed", 60.0, 0.0), StateEvent("open", 209.0, 0.0),
              StateEvent("closed", 411.0, 0.0), StateEvent("open", 500.0, 0.0)]
    match_changes(events, changes)
    # the first state reports no change; the last one is a false alarm (the door did not open again)
    assert [e.true_change for e in events] == [None, None, 200.0, 400.0, None]
    assert [e.delay_sim for e in events][2:4] == [9.0, 11.0]
