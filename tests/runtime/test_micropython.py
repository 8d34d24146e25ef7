"""The one MicroPython runner: an interpreter is an argv prefix plus its MICROPYPATH/environment."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from camlytics.errors import ModelError
from camlytics.export import testmodels
from camlytics.model import int8ref
from camlytics.model.modelfile import write_model
from camlytics.runtime.launch import edge_command
from camlytics.runtime.micropython import Interpreter, find_micropython, host_interpreter, run_edge_batch, source_root


def test_an_interpreter_is_a_prefix_and_an_environment(tmp_path):
    fw = Interpreter(("qemu-arm", "-L", "/usr/arm-linux-gnueabihf", "/fw/micropython"), path=(".frozen",),
                     env={"QEMU_STRACE": "0"})
    assert fw.command("-m", "camlytics.edge.app", "c.json") == [
        "qemu-arm", "-L", "/usr/arm-linux-gnueabihf", "/fw/micropython", "-X", "heapsize=4M", "-m",
        "camlytics.edge.app", "c.json"]
    env = fw.environ({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "QEMU_STRACE": "0", "MICROPYPATH": ".frozen"}
    host = Interpreter(("micropython",), heapsize=None)
    assert host.command("x.py") == ["micropython", "x.py"]
    assert host.environ({})["MICROPYPATH"] == os.pathsep.join([".frozen", source_root()])
    assert (Path(source_root()) / "camlytics" / "edge" / "app.py").is_file()


def test_the_edge_app_starts_under_any_interpreter(tmp_path):
    fw = Interpreter(("qemu-aarch64", "/fw/micropython"), path=(".frozen",))
    cmd, env = edge_command("micropython", tmp_path / "config.json", fw)
    assert cmd[:2] == ["qemu-aarch64", "/fw/micropython"] and cmd[-3:] == ["-m", "camlytics.edge.app",
                                                                            str(tmp_path / "config.json")]
    assert env["MICROPYPATH"] == ".frozen"


@pytest.fixture
def model_file(tmp_path):
    model = testmodels.random_model(5, "rgb")
    return write_model(model, tmp_path / "model.cml"), model


def test_a_batch_gives_the_reference_logits_through_a_wrapping_prefix(model_file):
    path, model = model_file
    x = testmodels.random_inputs(model, 3, seed=2)
    wrapped = Interpreter(("env", "CAMLYTICS_WRAPPED=1", find_micropython()))  # as qemu-arm wraps a firmware
    for interpreter in (host_interpreter(), wrapped):
        batch = run_edge_batch(interpreter, path, [("tensor", row.tobytes()) for row in x])
        assert batch.backend and len(batch.results) == 3
        np.testing.assert_array_equal(np.array([r["logits"] for r in batch.results]), int8ref.forward(model, x))
        assert [r["input"] for r in batch.results] == [row.tobytes() for row in x]
        assert all(len(r["us"]) == 2 for r in batch.results)
    assert run_edge_batch(wrapped, path, []).results == []


def test_a_batch_fails_as_one_error_when_the_edge_package_is_not_on_the_path(model_file):
    path, _ = model_file
    frozen_only = Interpreter((find_micropython(),), path=(".frozen",))  # the PyPI build freezes no camlytics
    with pytest.raises(ModelError, match="MicroPython batch failed"):
        run_edge_batch(frozen_only, path, [("tensor", b"\0" * 10)])
    with pytest.raises(ValueError, match="'jpeg' or 'tensor'"):
        run_edge_batch(frozen_only, path, [("png", b"")])
