"""`deploy --dataset D --model-version V` and `rollback` against the simulated camera: real bundles, real uploads,
the edge app really running on the camera and saying which model version it serves (its /status through the
camera's reverse proxy)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from camlytics.cli import main
from camlytics.export.testmodels import random_model_bytes
from camlytics.store import Dataset
from camlytics.store.models import deployed, record_model
from tests.conftest import find_free_port, one_line_error

APP = "camlytics_door"


def make_model_dir(path: Path, seed: int) -> Path:
    """A model directory holding a valid int8 edge model and the metrics `camlytics models` shows."""
    path.mkdir(parents=True)
    (path / "model.cml").write_bytes(random_model_bytes(seed))
    (path / "metrics.json").write_text(json.dumps({"shipped": f"test-{seed}", "family": "cnn"}))
    return path


@pytest.fixture
def versions(tmp_path) -> tuple[Path, list[str]]:
    """A dataset with two recorded model versions."""
    dataset = tmp_path / "ds"
    Dataset.open(dataset, create=True).close()
    names = [record_model(dataset, make_model_dir(tmp_path / f"m{i}", i)).version for i in (1, 2)]
    return dataset, names


def served_version(cam, timeout: float = 60.0) -> str:
    """The model version the camera's running app reports at /local/APP/status (waits for the app to answer)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(f"{cam.url}/local/{APP}/status", auth=httpx.DigestAuth("root", "pass"), timeout=10)
            last = reply.status_code
            if reply.status_code == 200:
                return reply.json()["model"]["version"]
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    log = httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": APP}).text
    raise AssertionError(f"no status from {APP} within {timeout} s (last: {last}); its log: {log[-2000:]}")


def wait_for_version(cam, version: str, timeout: float = 60.0) -> None:
    """Until the camera's app serves `version` (the restart after an upgrade takes a moment)."""
    deadline = time.monotonic() + timeout
    while (got := served_version(cam, timeout)) != version and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == version


def test_deploy_versions_then_roll_back_to_the_one_before(cam, versions, tmp_path, capsys):
    dataset, (v1, v2) = versions
    key = cam.url  # the URL without credentials
    common = ["--camera", cam.admin_url, "--interpreter", "camera"]
    params = ["--param", f"HttpPort={find_free_port()}", "--param", "VapixUser=root"]
    assert main(["deploy", "--dataset", str(dataset), "--model-version", "v1", *common, *params, "--start"]) == 0
    out = capsys.readouterr().out
    assert f"bundled model version {v1}" in out and f"recorded: {key} runs model version {v1}" in out
    wait_for_version(cam, v1)
    assert main(["deploy", "--dataset", str(dataset), "--model-version", v2[3:9], *common, "--start"]) == 0
    wait_for_version(cam, v2)
    assert [v for v, _ in deployed(dataset, key)] == [v1, v2]

    assert main(["rollback", str(dataset), "--camera", cam.admin_url, "--interpreter", "camera"]) == 0
    assert f"rolled back {key} from model version {v2} to {v1}" in capsys.readouterr().out
    wait_for_version(cam, v1)  # each package kept the first deploy's HttpPort (the proxy reads it in the manifest)
    assert main(["models", str(dataset), "--json"]) == 0
    listed = {m["version"]: m["deployed"] for m in json.loads(capsys.readouterr().out)}
    assert listed == {v1: [key], v2: []}

    assert main(["rollback", str(dataset), "--camera", cam.admin_url, "--interpreter", "camera"]) == 2
    one_line_error(capsys, "nothing earlier to roll back to")
    assert served_version(cam) == v1


def test_a_package_deployed_with_its_dataset_is_recorded(cam, versions, tmp_path, capsys):
    from camlytics.deploy.bundle import BundleOptions, build_bundle

    dataset, (v1, _) = versions
    package = build_bundle(dataset / "models" / v1, tmp_path, BundleOptions(arch="all", interpreter="camera"))
    assert main(["deploy", str(package), "--camera", cam.admin_url, "--dataset", str(dataset),
                 "--record-as", "lobby"]) == 0
    assert [v for v, _ in deployed(dataset, "lobby")] == [v1]
    other = build_bundle(make_model_dir(tmp_path / "stray", 9), tmp_path / "stray.eap",
                         BundleOptions(arch="all", interpreter="camera"))
    assert main(["deploy", str(other), "--camera", cam.admin_url, "--dataset", str(dataset),
                 "--record-as", "lobby"]) == 0
    assert "not one of" in capsys.readouterr().err and len(deployed(dataset, "lobby")) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["deploy", "--camera", "http://127.0.0.1:9"], "give APP.eap, or --dataset"),
    (["deploy", "--camera", "http://127.0.0.1:9", "--model-version", "v1"], "need --dataset"),
    (["deploy", "--camera", "http://127.0.0.1:9", "--dataset", "DS"], "needs --model-version"),
    (["deploy", "--camera", "http://127.0.0.1:9", "--dataset", "DS", "--model-version", "v9"], "no model version 'v9'"),
    (["rollback", "DS", "--camera", "http://127.0.0.1:9"], "was deployed to http://127.0.0.1:9; nothing to roll back"),
])
def test_bad_version_deploys_are_one_line_before_any_camera_is_contacted(versions, argv, message, capsys):
    dataset, _ = versions
    assert main([str(dataset) if a == "DS" else a for a in argv]) == 2
    one_line_error(capsys, message)


def launcher_config(package: Path, tmp_path: Path) -> dict:
    """The edge config the package's launcher writes (run with a stand-in MicroPython)."""
    from tests.deploy.test_bundle import fake_interpreter, run_launcher, unpack

    app = unpack(package, tmp_path / f"app-{package.stem}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_interpreter(bin_dir / "micropython")
    done = run_launcher(app, "", tmp_path, [bin_dir])
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((app / "localdata" / "config.json").read_text())


def test_bundle_names_the_model_version_in_the_edge_config(versions, tmp_path):
    import hashlib

    from camlytics.deploy.bundle import BundleOptions, build_bundle
    from camlytics.edge.config import validate
    from tests.deploy.conftest import eap_file

    dataset, (v1, v2) = versions
    options = BundleOptions(interpreter="camera")
    stray = make_model_dir(tmp_path / "stray", 9)
    sha = hashlib.sha256(random_model_bytes(9)).hexdigest()
    trained = make_model_dir(tmp_path / "trained", 2)  # `camlytics train --out` beside the dataset it recorded in
    (trained / "config.json").write_text(json.dumps({"dataset": str(dataset)}))
    for model, want in ((dataset / "models" / v1, v1), (stray, f"sha-{sha[:8]}"), (trained, v2)):
        package = build_bundle(model, tmp_path / f"{want}.eap", options)
        config = launcher_config(package, tmp_path)
        assert validate(config)["model_version"] == want
        assert json.loads(eap_file(package, "build.json"))["model_version"] == want
