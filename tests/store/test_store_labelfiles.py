"""`camlytics labels import|export` and `camlytics info`: formats, matching rules, all-or-nothing errors."""

from __future__ import annotations

import json

import pytest

from camlytics.cli import main
from camlytics.store import Dataset


@pytest.fixture
def three(dataset, make_jpeg, add_image):
    """A dataset of three images with original names; returns (dataset, ids)."""
    ids = [add_image(dataset, make_jpeg(i), t=3600 * i, original_name=f"/cams/front/img_{i}.jpg") for i in range(3)]
    dataset.close()
    return dataset.root, ids


def labels_of(root):
    with Dataset.open(root) as ds:
        return {r.id: r.label for r in ds.records()}


def test_csv_import_matches_original_names_and_store_paths(three, tmp_path, capsys):
    root, ids = three
    with Dataset.open(root) as ds:
        store_path = ds.get(ids[2]).path
    (tmp_path / "l.csv").write_text(f"filename,label\nimg_0.jpg,open\n/cams/front/img_1.jpg,closed\n{store_path},open\n")
    assert main(["labels", "import", str(root), str(tmp_path / "l.csv"), "--annotator", "ann"]) == 0
    assert labels_of(root) == {ids[0]: "open", ids[1]: "closed", ids[2]: "open"}
    assert "3 changed" in capsys.readouterr().out
    # importing the same file again changes nothing and is not an error
    assert main(["labels", "import", str(root), str(tmp_path / "l.csv")]) == 0
    assert "0 changed, 3 already set" in capsys.readouterr().out


def test_json_index_of_the_original_tool_is_imported(three, tmp_path):
    root, ids = three
    (tmp_path / "index.json").write_text(json.dumps({"/old/place/img_1.jpg": "open", "/old/img_2.jpg": "closed"}))
    assert main(["labels", "import", str(root), str(tmp_path / "index.json")]) == 0
    assert labels_of(root) == {ids[0]: None, ids[1]: "open", ids[2]: "closed"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("img_0.jpg,open\nnot_here.jpg,open\n", "not in the dataset: 'not_here.jpg'"),
        ("img_0.jpg,open\nimg_1.jpg,ajar\n", "unknown labels 'ajar'"),
        ("img_0.jpg,open\n/cams/front/img_0.jpg,closed\n", "more than once"),
        ("img_0.jpg\n", "expected 'filename,label'"),
    ],
)
def test_bad_label_files_change_nothing(three, tmp_path, capsys, content, message):
    root, ids = three
    (tmp_path / "bad.csv").write_text(content)
    assert main(["labels", "import", str(root), str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert set(labels_of(root).values()) == {None}


def test_export_csv_json_and_imagefolder_round_trip(three, tmp_path):
    root, ids = three
    (tmp_path / "l.csv").write_text("img_0.jpg,open\nimg_1.jpg,closed\n")
    main(["labels", "import", str(root), str(tmp_path / "l.csv")])
    assert main(["labels", "export", str(root), "--format", "csv", "--out", str(tmp_path / "out.csv")]) == 0
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "filename,label" and len(lines) == 3
    assert main(["labels", "export", str(root), "--format", "json", "--out", str(tmp_path / "out.json")]) == 0
    index = json.loads((tmp_path / "out.json").read_text())
    assert sorted(index.values()) == ["closed", "open"] and all(p.startswith(str(root)) for p in index)
    assert main(["labels", "export", str(root), "--format", "imagefolder", "--out", str(tmp_path / "folder")]) == 0
    assert len(list((tmp_path / "folder" / "open").iterdir())) == 1
    assert len(list((tmp_path / "folder" / "closed").iterdir())) == 1
    # the exported CSV imports back into a copy of the dataset unchanged
    with Dataset.open(root) as ds:
        ds.set_labels({ids[0]: "closed"}, "someone")
    assert main(["labels", "import", str(root), str(tmp_path / "out.csv")]) == 0
    assert labels_of(root)[ids[0]] == "open"
    # a non-empty folder is never overwritten
    assert main(["labels", "export", str(root), "--format", "imagefolder", "--out", str(tmp_path / "folder")]) == 2


def test_export_mistakes_are_one_line_and_files_get_the_usual_permissions(three, tmp_path, capsys):
    import os
    import stat

    root, ids = three
    (tmp_path / "l.csv").write_text("img_0.jpg,open\nimg_1.jpg,closed\n")
    main(["labels", "import", str(root), str(tmp_path / "l.csv")])
    assert main(["labels", "export", str(root), "--out", str(tmp_path / "nowhere" / "x.csv")]) == 2
    assert "folder " + str(tmp_path / "nowhere") + " does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    mask = os.umask(0o022)
    try:
        assert main(["labels", "export", str(root), "--out", str(tmp_path / "out.csv")]) == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644
    with Dataset.open(root) as ds:
        missing = ds.image_path(ds.get(ids[0]))
    missing.unlink()
    assert main(["labels", "export", str(root), "--format", "imagefolder", "--out", str(tmp_path / "folder")]) == 2
    err = capsys.readouterr().err
    assert f"record {ids[0]}: its image" in err and "is missing from the dataset" in err and err.count("\n") == 1
    assert not (tmp_path / "folder").exists() and not list(tmp_path.glob(".folder*"))  # nothing half-made


def test_info_prints_tables(three, capsys):
    root, _ = three
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "3 images, 0 labelled" in out and "per sampler" in out and "02:00" in out


def test_info_on_a_missing_dataset_is_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
