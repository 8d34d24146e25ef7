"""The runtime registry: the model layer's own runtimes, stage runtimes imported on first use, NAME:OPTION."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from camlytics.errors import ModelError
from camlytics.export import testmodels
from camlytics.model import int8ref
from camlytics.model.inputs import InputSpec
from camlytics.model.modelfile import write_model
from camlytics.model.predictor import (RUNTIME_MODULES, RUNTIMES, Predictor, load_predictor, register_runtime,
                                       runtime_names)


@pytest.fixture
def model_dir(tmp_path):
    model = testmodels.random_model(4, "tiny")
    model.meta["preprocess"] = {"color": "gray", "roi": [0, 0, 64, 64], "source_size": [64, 64], "resize": "area"}
    write_model(model, tmp_path / "model.cml")
    return tmp_path


def test_int8_is_the_reference_on_the_model_file(model_dir):
    predictor = load_predictor(model_dir)
    model = int8ref.as_model(model_dir / "model.cml")
    x = testmodels.random_inputs(model, 5, seed=1)
    np.testing.assert_allclose(predictor.probs(x), int8ref.scores(model, int8ref.forward(model, x)))
    assert predictor.runtime == "int8" and predictor.spec == InputSpec(16, 16, "gray", (0, 0, 64, 64), (64, 64))


def test_a_stage_runtime_is_imported_the_first_time_it_is_asked_for(model_dir):
    code = ("import sys; from camlytics.model.predictor import load_predictor; "
            "before = 'camlytics.runtime.predictors' in sys.modules; "
            f"p = load_predictor({str(model_dir)!r}, 'edge'); "
            "print(before, 'camlytics.runtime.predictors' in sys.modules, p.runtime)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "edge"]
    assert set(RUNTIME_MODULES) | {"int8", "float"} == set(runtime_names())


def test_a_runtime_registered_with_an_option_gets_it(model_dir, monkeypatch):
    calls = []

    def factory(path, option):
        calls.append((path, option))
        return Predictor("probe", ["a", "b"], InputSpec(4, 4, "gray", (0, 0, 4, 4), (4, 4)), lambda x: x)

    monkeypatch.setitem(RUNTIMES, "probe", (factory, True))
    assert load_predictor(model_dir, "probe:armv7hf").runtime == "probe"
    load_predictor(model_dir, "probe")
    assert calls == [(model_dir, "armv7hf"), (model_dir, None)]
    register_runtime("probe", factory, option=True)  # what a stage module does when it is imported
    assert RUNTIMES["probe"] == (factory, True)


def test_bad_runtime_names_are_one_clear_error(model_dir, tmp_path):
    with pytest.raises(ModelError, match=r"unknown runtime 'tpu': choose one of \[.*'edge', .*'int8', 'micropython'"):
        load_predictor(model_dir, "tpu")
    with pytest.raises(ModelError, match="runtime 'int8' takes no option, got 'int8:fast'"):
        load_predictor(model_dir, "int8:fast")
    with pytest.raises(ModelError, match="does not exist"):
        load_predictor(tmp_path / "nothing", "int8")
