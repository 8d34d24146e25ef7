"""Fixtures for the annotation app: a fresh dataset and an in-process TestClient."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from tests.annotate.helpers import ANNOTATOR, make_dataset


@pytest.fixture(scope="session")
def template_dataset(tmp_path_factory) -> pathlib.Path:
    """30 unlabelled frames, written once per test process (each image is fsynced: slow to repeat)."""
    return make_dataset(tmp_path_factory.mktemp("template") / "ds")


@pytest.fixture
def dataset_dir(template_dataset: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """A fresh copy of a dataset of 30 unlabelled frames."""
    return pathlib.Path(shutil.copytree(template_dataset, tmp_path / "ds"))


@pytest.fixture
def client(dataset_dir: pathlib.Path):
    """A Starlette TestClient on the app for `dataset_dir`, labelling as "tester"."""
    from starlette.testclient import TestClient

    from camlytics.annotate.app import create_app

    quit_calls: list[int] = []
    app = create_app(dataset_dir, annotator=ANNOTATOR, on_quit=lambda: quit_calls.append(1))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.quit_calls = quit_calls
        yield c
