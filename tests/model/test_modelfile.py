"""The model file writer produces exactly the layout of docs/int8.md section 5, readable by the edge reader."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from camlytics.edge.model import load_model
from camlytics.errors import ModelError
from camlytics.export import testmodels
from camlytics.model import int8ref, modelfile


@pytest.mark.parametrize("arch", sorted(testmodels.ARCHS))
def test_written_file_follows_the_documented_layout(arch):
    model = testmodels.random_model(seed=2, arch=arch)
    data = model.to_bytes()
    magic, version, header, meta_len, blob_len = struct.unpack_from("<4sHHII", data)
    assert (magic, version, header) == (b"CMLM", 1, 16)
    assert len(data) == 16 + meta_len + blob_len + 4 and meta_len % 4 == 0 and blob_len % 4 == 0
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])
    text = data[16 : 16 + meta_len].decode("utf-8")
    meta = json.loads(text)
    assert text == text.rstrip(" ") + " " * (len(text) - len(text.rstrip(" ")))  # padded with spaces only
    blob = data[16 + meta_len : 16 + meta_len + blob_len]
    for layer, w, b in zip(meta["layers"], model.weights, model.biases):
        if layer["op"] == "gap":
            assert "weights" not in layer
            continue
        (wo, wl), (bo, bl) = layer["weights"], layer["bias"]
        assert wo % 4 == 0 and bo % 4 == 0
        assert blob[wo : wo + wl] == w.astype("<i1").tobytes()
        assert blob[bo : bo + bl] == b.astype("<i4").tobytes()
    assert meta["macs"] == sum(int8ref.layer_macs(layer) for layer in meta["layers"])


def test_round_trip_through_the_edge_reader_keeps_every_value():
    model = testmodels.random_model(seed=4, arch="zp")
    data = model.to_bytes()
    edge = load_model(data)
    assert edge.classes == model.classes and edge.input_shape == model.input_shape
    back = modelfile.read_model(data)
    for w0, w1, b0, b1 in zip(model.weights, back.weights, model.biases, back.biases):
        if w0 is None:
            assert w1 is None and b1 is None
            continue
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    x = testmodels.random_inputs(model, 8, seed=0)
    np.testing.assert_array_equal(int8ref.forward(model, x), int8ref.forward(data, x))
    assert back.to_bytes() == data  # writing what was read gives the same bytes


def test_random_models_are_deterministic_and_differ_by_seed():
    assert testmodels.random_model_bytes(7) == testmodels.random_model_bytes(7)
    assert testmodels.random_model_bytes(7) != testmodels.random_model_bytes(8)
    with pytest.raises(ValueError, match="huge"):
        testmodels.random_model(0, "huge")


def test_writer_refuses_a_model_that_breaks_the_spec(tmp_path):
    model = testmodels.random_model(seed=1)
    model.layers[0]["m"][0] = 2**31 - 1
    with pytest.raises(ModelError, match="overflow"):
        modelfile.write_model(model, tmp_path / "model.cml")
    model = testmodels.random_model(seed=1)
    model.weights[1] = model.weights[1].astype(np.int32) * 3
    with pytest.raises(ModelError, match="weights"):
        model.to_bytes()
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind


def test_write_and_read_a_model_directory(tmp_path):
    model = testmodels.random_model(seed=5, arch="rgb")
    path = modelfile.write_model(model, tmp_path / "model.cml")
    assert path.read_bytes() == model.to_bytes()
    assert modelfile.read_model(tmp_path).classes == model.classes
    assert [p.name for p in tmp_path.iterdir()] == ["model.cml"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:-1], "size|short"),
        (lambda d: d[:20], "size|short"),
        (lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "CRC"),
        (lambda d: b"XXXX" + d[4:], "magic"),
    ],
)
def test_reader_rejects_damaged_files(damage, message):
    data = testmodels.random_model_bytes(3)
    with pytest.raises(ModelError, match=message):
        modelfile.read_model(damage(data))


def test_reader_names_a_missing_file(tmp_path):
    with pytest.raises(ModelError, match="nothere"):
        modelfile.read_model(tmp_path / "nothere.cml")


def test_a_bad_model_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "model.cml"
    path.write_bytes(testmodels.random_model_bytes(0)[:500])
    with pytest.raises(ModelError, match=r"^" + str(path) + r": model file size 500 != \d+ \(truncated\?\)$"):
        modelfile.read_model(path)
    with pytest.raises(ModelError, match=r"^model file size 500"):  # bytes: no name to give
        modelfile.read_model(path.read_bytes())


def test_writer_checks_the_whole_metadata_with_the_readers_schema(tmp_path):
    """One schema: what the edge reader refuses, the writer refuses to write (issue #28: preprocess)."""
    for edit, message in [
        (lambda meta: meta["preprocess"].update(source_size=[0]), r"preprocess.source_size must be a list of 2"),
        (lambda meta: meta["preprocess"].update(roi=[0, 0, 9999, 10]), r"roi .* outside"),
        (lambda meta: meta.update(labels=["a"]), r"model metadata: unknown key 'labels'"),
        (lambda meta: meta.update(classes=["open", "open"]), r"distinct"),
        (lambda meta: meta.update(min_confidence=1.5), r"min_confidence must be a finite number in \[0, 1\)"),
    ]:
        model = testmodels.random_model(seed=1)
        edit(model.meta)
        with pytest.raises(ModelError, match=message):
            modelfile.write_model(model, tmp_path / "model.cml")
    assert list(tmp_path.iterdir()) == []


def test_writer_gives_a_model_error_for_metadata_it_cannot_encode():
    model = testmodels.random_model(seed=1)
    model.meta["name"] = np.int64(3)  # not JSON
    with pytest.raises(ModelError, match="cannot be written"):
        model.to_bytes()


def test_min_confidence_round_trips():
    model = testmodels.random_model(seed=1)
    model.meta["min_confidence"] = 0.7
    assert modelfile.read_model(model.to_bytes()).meta["min_confidence"] == 0.7
    assert load_model(model.to_bytes()).min_confidence == 0.7


def test_schema_rows_cover_every_key_the_writer_writes():
    keys = {row[0].split(" ")[0] for row in modelfile.schema_rows()}
    model = testmodels.random_model(seed=2, arch="door")
    meta = json.loads(model.to_bytes()[16:16 + struct.unpack_from("<I", model.to_bytes(), 8)[0]])
    written = set(meta) | {f"{part}.{k}" for part in ("input", "output", "preprocess") for k in meta[part]}
    written |= {f"layers[].{k}" for layer in meta["layers"] for k in layer}
    assert written <= keys
    assert ("min_confidence", False, "a finite number in [0, 1)") in modelfile.schema_rows()


def test_docs_list_the_schema_the_readers_apply():
    """docs/robustness.md's schema table is generated from the schema: regenerate it when a key changes."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "robustness.md").read_text()
    for key, required, rule in modelfile.schema_rows():
        row = f"| `{key}` | {'yes' if required else 'no'} | {rule} |"
        assert row in text, row


def test_active_and_device_class_are_optional_and_checked():
    """The edge app's active class and Home Assistant device class may come with the model; a class the model
    lacks is refused by the one reader."""
    from camlytics.edge.model import ModelFileError
    from camlytics.errors import ModelError

    model = testmodels.random_model(seed=3, arch="tiny")
    model.meta.update(active_class="open", device_class="garage_door")
    edge = load_model(model.to_bytes())
    assert edge.meta["active_class"] == "open" and edge.meta["device_class"] == "garage_door"
    for bad in ("door", "unknown", ""):
        model.meta["active_class"] = bad
        with pytest.raises((ModelError, ModelFileError)):
            load_model(model.to_bytes())
