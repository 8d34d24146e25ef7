"""The edge app says which recorded model it runs: config `model_version`, in the MQTT attributes and /status
(PyPI MicroPython, the camera's interpreter family, and CPython)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from camlytics.edge import config
from tests.conftest import find_free_port
from tests.edge.mqtt_helpers import Subscriber
from tests.edge.test_unknown_state import (
    AppProcess,
    ScriptedCamera,
    cpython_argv,
    get_json,
    micropython_argv,
    three_class_script,
)


def test_model_version_is_validated():
    assert config.validate({})["model_version"] is None
    assert config.validate({"model_version": "v3-1a2b3c4d"})["model_version"] == "v3-1a2b3c4d"
    for bad in ("", "v3 1a", 3, "x" * 65, "v3\n"):
        with pytest.raises(config.ConfigError, match="model_version must be a short name"):
            config.validate({"model_version": bad})


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_attributes_and_status_carry_the_model_version(runtime, mosquitto, tmp_path):
    model, script = three_class_script(tmp_path)
    camera = ScriptedCamera(script)
    port = find_free_port()
    cfg = {"model": str(model), "camera": {"url": camera.url, "resolution": None}, "fps": 20, "stats_every": 0,
           "http": {"port": port}, "model_version": "v7-0123abcd",
           "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "node_id": "bay"}}
    argv, env = micropython_argv(SimpleNamespace(path=None, interpreter=None)) if runtime == "micropython" \
        else cpython_argv()
    sub = Subscriber(mosquitto.host, mosquitto.port)
    app = AppProcess(argv, env, cfg, tmp_path)
    try:
        app.wait_event("occupied", 60)
        status = get_json(f"http://127.0.0.1:{port}/status")
        _, payload, retained = sub.wait_for(lambda t, p, r: t == "camlytics/bay/attributes", timeout=20)
    finally:
        app.stop()
        camera.close()
        sub.close()
    assert status["model"]["version"] == "v7-0123abcd"
    assert json.loads(payload)["model_version"] == "v7-0123abcd"
