"""VideoFile: frames of a video file via PyAV, timestamped, subsampled, with clear errors."""

from __future__ import annotations

import av
import numpy as np
import pytest

from camlytics.errors import SourceError
from camlytics.sources import open_source
from camlytics.sources.video import VideoFile


def make_video(path, frames: int = 12, fps: int = 4, size=(64, 48)) -> None:
    """An MPEG-4 file whose frame i is uniformly grey level 20*i."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size[1], size[0], 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_all_frames_in_order_with_timestamps(tmp_path):
    path = tmp_path / "door.mp4"
    make_video(path)
    with open_source(str(path), start=1000.0) as src:
        frames = list(src)
    assert isinstance(src, VideoFile)
    assert len(frames) == 12 and src.skipped == 0
    assert frames[0].size == (64, 48) and frames[0].jpeg is None
    assert [f.timestamp for f in frames] == pytest.approx([1000.0 + i / 4 for i in range(12)])
    levels = [int(f.image.mean()) for f in frames]
    assert levels == sorted(levels) and abs(levels[5] - 100) <= 6


def test_interval_count_and_duration(tmp_path):
    path = tmp_path / "door.mp4"
    make_video(path)
    assert len(list(open_source(str(path), interval=1.0))) == 3
    assert len(list(open_source(str(path), count=5))) == 5
    assert len(list(open_source(str(path), duration=1.0))) == 4


def test_default_start_is_when_the_recording_began(tmp_path):
    path = tmp_path / "door.mp4"
    make_video(path)
    first = next(iter(open_source(str(path))))
    assert abs(first.timestamp - (path.stat().st_mtime - 3.0)) < 1.0


def test_unreadable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video at all" * 50)
    with pytest.raises(SourceError, match="cannot open as a video"):
        open_source(str(bad))
