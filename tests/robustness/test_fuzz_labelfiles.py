"""Label files (CSV `filename,label`, the JSON index) with hostile content: DatasetError or an import, all or
nothing: a refused file changes no label, and the store stays whole."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from camlytics.errors import DatasetError
from camlytics.store import Dataset
from camlytics.store.labelfiles import import_labels, read_label_file
from tests.robustness.conftest import budget
from tests.robustness.storecheck import verify_store

NAMES = ["a.jpg", "b.jpg", "dir/c.jpg", "images/zz/x.jpg"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels") / "ds"
    ds = Dataset.open(root, create=True)
    for i, name in enumerate(NAMES[:3]):
        out = io.BytesIO()
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(out, "JPEG")
        ds.add_image(out.getvalue(), timestamp=float(i), source="test", sampler="time", reason="t", score=0.0,
                     original_name=name)
    yield ds
    ds.close()


CELLS = st.sampled_from(NAMES + ["closed", "open", "person", "", " ", "filename", "label", "\"", "a.jpg\nb.jpg", "\x00",
                                 "é", "../../etc/passwd"]) | st.text(max_size=8)


@st.composite
def label_texts(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["csv", "json", "bytes"]))
    if kind == "csv":
        rows = draw(st.lists(st.lists(CELLS, max_size=4), max_size=6))
        text = "\n".join(",".join(row) for row in rows)
        return ".csv", text.encode("utf-8", "surrogatepass")
    if kind == "json":
        values = st.recursive(CELLS | st.none() | st.integers() | st.floats(), lambda c: st.lists(c, max_size=3)
                              | st.dictionaries(CELLS, c, max_size=3), max_leaves=6)
        import json

        doc = draw(st.dictionaries(CELLS, values, max_size=5) | values)
        return ".json", json.dumps(doc).encode()
    return draw(st.sampled_from([".csv", ".json", ".txt"])), draw(st.binary(max_size=120))


@budget(200)
@given(item=label_texts(), skip=st.booleans(), classes=st.none() | st.sampled_from([["closed", "open"], ["open"], ["x", "x"]]))
def test_label_files_import_all_or_nothing(dataset, tmp_path_factory, item, skip, classes):
    suffix, data = item
    path = tmp_path_factory.getbasetemp() / ("labels" + suffix)
    path.write_bytes(data)
    try:
        read_label_file(path)
    except DatasetError:
        pass
    before = {r.id: r.label for r in dataset.records()}
    classes_before = dataset.classes
    try:
        import_labels(dataset, path, classes=classes, skip_unknown=skip)
    except DatasetError:
        assert {r.id: r.label for r in dataset.records()} == before  # all or nothing
        assert dataset.classes == classes_before


def test_the_store_is_whole_after_the_label_fuzzing(dataset):
    check = verify_store(dataset.root)
    assert check.sound and check.records == 3 and not check.orphans and not check.temp_files, check
