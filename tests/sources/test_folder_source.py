"""ImageFolder: images in time order, timestamps from a CSV or file times, bad files skipped."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from camlytics.errors import SourceError
from camlytics.frames import encode_jpeg
from camlytics.sources import open_source
from camlytics.sources.folder import ImageFolder, parse_timestamp


def write_images(folder, names_and_mtimes: dict[str, float]) -> None:
    for i, (name, mtime) in enumerate(names_and_mtimes.items()):
        image = np.full((24, 32, 3), 30 * i, np.uint8)
        path = folder / name
        if name.endswith(".png"):
            Image.fromarray(image).save(path)
        else:
            path.write_bytes(encode_jpeg(image))
        os.utime(path, (mtime, mtime))


def test_sorted_by_modification_time_with_original_jpeg_bytes(tmp_path):
    write_images(tmp_path, {"b.jpg": 300.0, "a.jpg": 200.0, "c.png": 100.0})
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path)) as src:
        frames = list(src)
    assert isinstance(src, ImageFolder)
    assert [f.meta["original_name"] for f in frames] == ["c.png", "a.jpg", "b.jpg"]
    assert [f.timestamp for f in frames] == [100.0, 200.0, 300.0]
    assert frames[0].jpeg is None and frames[1].jpeg == (tmp_path / "a.jpg").read_bytes()
    assert all(f.meta["timestamp_from"] == "mtime" for f in frames)


def test_timestamps_csv_overrides_file_times(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    write_images(images, {"a.jpg": 1.0, "b.jpg": 2.0, "c.jpg": 3.0})
    csv = tmp_path / "times.csv"
    csv.write_text("filename,timestamp\na.jpg,2024-05-01T12:00:30Z\nb.jpg,1714564800\nc.jpg,1714564815.5\n")
    frames = list(open_source(str(images), timestamps=str(csv)))
    assert [f.meta["original_name"] for f in frames] == ["b.jpg", "c.jpg", "a.jpg"]
    assert [f.timestamp for f in frames] == [1714564800.0, 1714564815.5, 1714564830.0]
    assert parse_timestamp("2024-05-01T12:00:00") == 1714564800.0  # naive = UTC


def test_bad_timestamps_csv_names_the_line(tmp_path):
    write_images(tmp_path, {"a.jpg": 1.0})
    csv = tmp_path / "t.csv"
    csv.write_text("a.jpg,yesterday\n")
    with pytest.raises(SourceError, match="line 1: bad timestamp 'yesterday'"):
        open_source(str(tmp_path), timestamps=str(csv))


def test_truncated_image_among_good_ones_is_skipped_and_counted(tmp_path):
    write_images(tmp_path, {"a.jpg": 1.0, "b.jpg": 2.0, "c.jpg": 3.0})
    data = (tmp_path / "b.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(data[: len(data) // 2])
    os.utime(tmp_path / "b.jpg", (2.0, 2.0))
    with open_source(str(tmp_path)) as src:
        names = [f.meta["original_name"] for f in src]
    assert names == ["a.jpg", "c.jpg"] and src.skipped == 1


def test_only_bad_images_is_an_error(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(SourceError, match="corrupt or truncated JPEG.*no readable frame"):
        list(open_source(str(tmp_path)))


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(SourceError, match="holds no images"):
        open_source(str(tmp_path))
    with pytest.raises(SourceError, match="no such file or directory"):
        open_source(str(tmp_path / "nowhere"))
