"""Bad output paths for `export`, bad --json / MODEL_DIR for `evaluate`: one clear line (exit 2), no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from camlytics.cli import main
from tests.conftest import one_line_error


@pytest.fixture
def model(tmp_path) -> Path:
    from camlytics.export.testmodels import random_model_bytes

    path = tmp_path / "m1"
    path.mkdir()
    (path / "model.cml").write_bytes(random_model_bytes(0))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from tests.train.conftest import make_sim_dataset

    return make_sim_dataset(tmp_path_factory.mktemp("ds") / "ds2", n_open=2, n_closed=2)


@pytest.mark.parametrize("target", ["edge", "c"])
def test_export_to_a_path_that_cannot_be_written_says_so(model, tmp_path, target, capsys):
    (tmp_path / "a.jpg").write_bytes(b"x")
    for out in (tmp_path / "a.jpg" / "sub", Path("/proc/x")):
        assert main(["export", str(model), "--target", target, "--out", str(out)]) == 2
        one_line_error(capsys, f"--out {out}: cannot write there")


def test_export_edge_into_the_model_directory_itself_is_refused(model, capsys):
    before = (model / "model.cml").read_bytes()
    for out in (str(model), str(model) + "/", str(model / ".." / model.name)):
        assert main(["export", str(model), "--target", "edge", "--out", out]) == 2
        one_line_error(capsys, "the model's own directory")
        assert main(["export", str(model / "model.cml"), "--target", "edge", "--out", out]) == 2
        one_line_error(capsys, "the model's own directory")
    assert (model / "model.cml").read_bytes() == before


def test_evaluate_checks_the_json_destination_before_evaluating(tmp_path, capsys):
    missing_model = str(tmp_path / "no-model")  # evaluating would fail on it: the --json check comes first
    assert main(["evaluate", missing_model, str(tmp_path), "--json", str(tmp_path / "nonexistent2" / "o.json")]) == 2
    one_line_error(capsys, "--json", "does not exist")
    assert main(["evaluate", missing_model, str(tmp_path), "--json", str(tmp_path)]) == 2
    one_line_error(capsys, "--json", "is a directory")


def test_evaluate_accepts_the_model_cml_file_and_writes_json(model, dataset, tmp_path, capsys):
    out = tmp_path / "o.json"
    assert main(["evaluate", str(model / "model.cml"), str(dataset), "--json", str(out)]) == 0
    assert "balanced accuracy" in capsys.readouterr().out and out.is_file()
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert main(["evaluate", str(other), str(dataset)]) == 2
    one_line_error(capsys, "is a file, not a model directory")


@pytest.mark.parametrize("argv", [
    ["export", "{m}", "--target", "edge", "--out", "{tmp}/out"],
    ["bundle", "{m}", "--out", "{tmp}"],
    ["run", "{m}", "--camera", "http://127.0.0.1:9"],
    ["evaluate", "{m}", "sim:office?count=2"],
    ["evaluate", "{m}", "sim:office?count=2", "--runtime", "edge"],
])
def test_every_command_names_a_missing_model_file_the_same_way(argv, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for where in (empty, empty / "model.cml"):  # MODEL_DIR or its model file, both accepted
        assert main([a.format(m=where, tmp=tmp_path) for a in argv]) == 2
        one_line_error(capsys, f"no edge model file at {empty / 'model.cml'}", "camlytics train")


def test_a_model_file_is_found_in_its_directory_or_by_name(model):
    from camlytics.model.modelfile import locate_model_file

    assert locate_model_file(model) == locate_model_file(model / "model.cml") == model / "model.cml"
