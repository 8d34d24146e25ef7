"""The ACAP's MinConfidence and ActiveClass parameters: set through the camera's param.cgi (by `deploy --param`
and as the settings page does), they reach the app on the camera, whose /status shows them; empty means the
model's own; a value the app would refuse is refused before the upload, or named in the app's log."""

from __future__ import annotations

import time

import httpx
import pytest

from camlytics.cli import main
from tests.conftest import find_free_port

APP = "camlytics_door"
ADMIN = httpx.DigestAuth("root", "pass")


@pytest.fixture(scope="module")
def floor_package(tmp_path_factory):
    """The .eap (the device's micropython) of a closed/open model whose metadata sets min_confidence 0.5."""
    from camlytics.deploy.bundle import BundleOptions, build_bundle
    from camlytics.export.testmodels import random_model

    model_dir = tmp_path_factory.mktemp("floor-model")
    model = random_model(0)
    model.meta["min_confidence"] = 0.5
    (model_dir / "model.cml").write_bytes(model.to_bytes())
    # a free port for the status endpoint: other tests run apps on this host too
    options = BundleOptions(arch="all", interpreter="camera", params={"HttpPort": str(find_free_port())})
    return build_bundle(model_dir, tmp_path_factory.mktemp("eap"), options)


def app_log(cam) -> str:
    return httpx.get(f"{cam.url}/camlytics-sim/apps/log", params={"name": APP}, timeout=10).text


def wait_for_status(cam, predicate, timeout: float = 90.0) -> dict:
    """The app's /status (through the camera's reverse proxy) once `predicate` holds for it."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(f"{cam.url}/local/{APP}/status", auth=ADMIN, timeout=10)
        except httpx.HTTPError:
            reply = None
        if reply is not None and reply.status_code == 200:
            body = reply.json()
            if predicate(body):
                return body
        time.sleep(0.3)
    raise AssertionError(f"status not as expected: {body or 'no answer'}\n{app_log(cam)[-3000:]}")


def update_and_restart(cam, **params: str) -> None:
    """What the settings page's Save does: param.cgi update, then control.cgi restart."""
    args = {"action": "update", **{f"root.{APP}.{name}": value for name, value in params.items()}}
    assert httpx.post(f"{cam.url}/axis-cgi/param.cgi", auth=ADMIN, data=args, timeout=30).text == "OK\n"
    reply = httpx.post(f"{cam.url}/axis-cgi/applications/control.cgi", auth=ADMIN, timeout=30,
                       params={"action": "restart", "package": APP})
    assert reply.text.strip() == "OK"


def test_parameters_set_on_the_camera_reach_the_apps_status(cam, floor_package, capsys):
    assert main(["deploy", str(floor_package), "--camera", cam.admin_url, "--param", "MinConfidence=0.35",
                 "--param", "ActiveClass=closed", "--start"]) == 0
    listed = httpx.get(f"{cam.url}/axis-cgi/param.cgi", params={"action": "list", "group": f"root.{APP}"},
                       auth=ADMIN, timeout=10).text
    assert f"root.{APP}.MinConfidence=0.35" in listed and f"root.{APP}.ActiveClass=closed" in listed
    body = wait_for_status(cam, lambda b: b["min_confidence"] == 0.35)
    assert body["active_class"] == "closed" and body["model"]["classes"] == ["closed", "open"]

    # emptied: the model's floor (0.5 in its metadata) and the default active class (open)
    update_and_restart(cam, MinConfidence="", ActiveClass="")
    body = wait_for_status(cam, lambda b: b["min_confidence"] == 0.5)
    assert body["active_class"] == "open"

    update_and_restart(cam, MinConfidence="0", ActiveClass="open")  # 0: never unknown, over the model's 0.5
    body = wait_for_status(cam, lambda b: b["min_confidence"] == 0)
    assert body["active_class"] == "open"


@pytest.mark.parametrize("params, error", [
    ({"ActiveClass": "door"}, "active_class must be one of the model's classes closed, open, got 'door'"),
    ({"MinConfidence": "1.5"}, "parameter MinConfidence must be empty (the model's) or a probability in [0, 1) "
                               "like 0.6, got '1.5'"),
])
def test_a_value_the_app_refuses_is_named_in_its_log(cam, floor_package, params, error, capsys):
    assert main(["deploy", str(floor_package), "--camera", cam.admin_url]) == 0
    update_and_restart(cam, **params)
    deadline = time.monotonic() + 60
    while error not in app_log(cam) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert error in app_log(cam), app_log(cam)[-3000:]
    assert "Traceback" not in app_log(cam)


@pytest.mark.parametrize("param, message", [
    ("MinConfidence=1", "--param MinConfidence: must be empty (the model's) or a probability in [0, 1) like 0.6, "
                        "got '1'"),
    ("MinConfidence=.5", "--param MinConfidence: must be empty (the model's) or a probability in [0, 1) like 0.6, "
                         "got '.5'"),
    ("ActiveClass=unknown", "--param ActiveClass: must be one of the model's classes, not 'unknown' (the unknown "
                            "state drives nothing)"),
])
def test_deploy_refuses_a_bad_value_before_the_upload(cam, floor_package, param, message, capsys):
    capsys.readouterr()
    assert main(["deploy", str(floor_package), "--camera", cam.admin_url, "--param", param]) != 0
    assert capsys.readouterr().err == f"camlytics deploy: error: {message}\n"
    assert "no applications installed" in apps_listing(cam, capsys)


def apps_listing(cam, capsys) -> str:
    assert main(["apps", "--camera", cam.admin_url]) == 0
    return capsys.readouterr().out


def test_with_the_models_classes_known_a_class_it_lacks_is_refused():
    from camlytics.deploy.manifest import check_app_values
    from camlytics.errors import DeployError

    check_app_values({"ActiveClass": "closed", "MinConfidence": "0.85"}, classes=["closed", "open"])
    check_app_values({"ActiveClass": "door"})  # the classes unknown: the app on the camera checks it
    with pytest.raises(DeployError, match=r"^ActiveClass: must be one of the model's classes closed, open, "
                                          r"got 'door'$"):
        check_app_values({"ActiveClass": "door"}, classes=["closed", "open"])
