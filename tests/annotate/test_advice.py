"""`camlytics annotate --model MODEL_DIR`: the trained model's "do I have enough labels?" advice in the API and the page."""

from __future__ import annotations

import json
import pathlib
import urllib.request

import pytest

from tests.annotate.helpers import serve
from tests.annotate.test_browser import browser, open_page  # noqa: F401  (browser: the module's Chromium fixture)

# Markup in the advice must reach the page as text: this one would add an element if inserted as HTML.
ADVICE = "more labels would still help: label more open / night frames <b id=injected>(3 of 5 CV errors)</b>"


def metrics(**more_labels) -> dict:
    """A metrics.json as `camlytics train` writes it, cut to the keys the annotation tool reads."""
    advice = {"verdict": "more", "advice": ADVICE, "gain_last_doubling": 0.021,
              "errors_by_kind": {"closed / day": 1, "open / night": 3, "open / dim": 1, "closed / ir": 0},
              "worst": "open / night"}
    advice.update(more_labels)
    return {"classes": ["open", "closed"], "shipped": "cnn-small",
            "cv": {"folds": 5, "shipped": {"mean": 0.9734, "std": 0.012, "why": "best mean CV score"}},
            "more_labels": advice}


def model_dir(tmp_path: pathlib.Path, content: dict | str) -> pathlib.Path:
    """A model directory whose metrics.json holds `content` (a dict as JSON, a str as is)."""
    folder = tmp_path / "model"
    folder.mkdir()
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "metrics.json").write_text(text, encoding="utf-8")
    return folder


def get_state(url: str) -> dict:
    """GET /api/state over real HTTP."""
    with urllib.request.urlopen(url + "api/state", timeout=10) as resp:
        return json.load(resp)


def test_the_state_carries_the_models_advice(dataset_dir, tmp_path):
    with serve(dataset_dir, "--model", str(model_dir(tmp_path, metrics()))) as server:
        advice = get_state(server.url)["advice"]
    assert advice == {
        "verdict": "more", "advice": ADVICE, "worst": "open / night",
        # most errors first: the page shows the top three
        "errors_by_kind": {"open / night": 3, "closed / day": 1, "open / dim": 1, "closed / ir": 0},
        "shipped": "cnn-small", "cv_mean": 0.9734,
    }
    assert list(advice["errors_by_kind"])[0] == advice["worst"]


def test_without_model_the_state_has_no_advice(client):
    assert client.get("/api/state").json()["advice"] is None


def test_a_model_with_no_errors_has_no_worst_kind(dataset_dir, tmp_path):
    folder = model_dir(tmp_path, metrics(verdict="enough", errors_by_kind={}, worst=None,
                                         advice="no cross-validation errors"))
    with serve(dataset_dir, "--model", str(folder)) as server:
        advice = get_state(server.url)["advice"]
    assert (advice["verdict"], advice["worst"], advice["errors_by_kind"]) == ("enough", None, {})


def cli_error(capsys, *args: str) -> str:
    """Run the CLI in this process; assert it failed with one user-error line (no server started) and return it."""
    from camlytics.cli import main

    assert main(list(args)) == 2
    out, err = capsys.readouterr()
    assert "http://" not in out, out  # refused before the server printed its URL
    assert err.count("\n") == 1 and err.startswith("camlytics annotate: error:"), err
    assert "Traceback" not in err
    return err


def no_more_labels(tmp_path: pathlib.Path) -> pathlib.Path:
    content = metrics()
    del content["more_labels"]
    return model_dir(tmp_path, content)


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nope", "no such directory"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "has no metrics.json"),
    (lambda tmp: model_dir(tmp, "{not json"), "cannot read"),
    (lambda tmp: model_dir(tmp, "[1, 2]"), "expected a JSON object"),
    (no_more_labels, 'no "more_labels" advice'),
    (lambda tmp: model_dir(tmp, metrics(verdict="maybe")), "more_labels.verdict='maybe'"),
    (lambda tmp: model_dir(tmp, metrics(advice=None)), "more_labels.advice=None"),
    (lambda tmp: model_dir(tmp, metrics(errors_by_kind={"open / night": "3"})), "errors_by_kind"),
])
def test_a_bad_model_dir_is_one_line_and_exit_2(dataset_dir, tmp_path, capsys, make, message):
    folder = make(tmp_path)
    err = cli_error(capsys, "annotate", str(dataset_dir), "--no-browser", "--port", "0", "--model", str(folder))
    assert message in err


def test_the_page_shows_the_advice_as_text(browser, dataset_dir, tmp_path):  # noqa: F811
    with serve(dataset_dir, "--model", str(model_dir(tmp_path, metrics()))) as server:
        page = open_page(browser, server.url)
        panel = page.locator("#advice-panel")
        assert panel.is_visible()
        assert "Do I have enough labels?" in page.locator("#advice-panel h2").text_content()  # CSS upper-cases it
        assert page.locator("#advice-text").inner_text() == ADVICE  # the markup shown as text
        assert page.locator("#injected").count() == 0  # ... and not inserted as an element
        assert page.locator("#advice-verdict").inner_text().lower() == "more"
        assert page.locator("#advice-cv").inner_text() == "CV balanced accuracy 97.3% · model: cnn-small"
        kinds = page.locator("#advice-kinds li").all_inner_texts()
        assert kinds[0] == "open / night: 3 CV errors" and len(kinds) == 3
        assert page.locator("#advice-kinds li.worst").inner_text() == "open / night: 3 CV errors"
        assert page.errors == []
        page.close()


def test_without_model_the_page_has_no_advice_panel(browser, dataset_dir):  # noqa: F811
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url)
        assert page.locator("#advice-panel").is_hidden()
        assert page.errors == []
        page.close()
