"""VideoFile: frames decoded from a video file with PyAV."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Iterator

from camlytics.errors import SourceError
from camlytics.frames import Frame
from camlytics.sources.base import FrameSource, check_limit

log = logging.getLogger(__name__)


def _creation_time(container) -> float | None:
    """The container's `creation_time` tag as Unix seconds, if it has a valid one."""
    tag = (container.metadata or {}).get("creation_time")
    if not tag:
        return None
    try:
        return datetime.fromisoformat(tag.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class VideoFile(FrameSource):
    """Frames of the first video stream of a file, timestamped `start + presentation time`.

    `start` (Unix seconds) defaults to the file's `creation_time` tag, else its modification time minus
    its duration (when a camera recorded the file, that is when recording began). `interval` keeps at
    most one frame per `interval` seconds of video time. Packets that fail to decode are skipped and counted.
    """

    strict_start = False

    def __init__(self, path: str | Path, *, start: float | None = None, interval: float | None = None,
                 count: int | None = None, duration: float | None = None) -> None:
        import av  # heavy: imported only when a video is opened

        self.path = Path(path)
        super().__init__(str(self.path), count=count, duration=duration)
        self.interval = check_limit("interval", interval)
        if not self.path.is_file():
            raise SourceError(f"video {str(self.path)!r}: no such file")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"video {str(self.path)!r}: cannot open as a video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"video {str(self.path)!r}: the file has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        length = float(self._container.duration / 1e6) if self._container.duration else 0.0
        self.start = start if start is not None else (
            _creation_time(self._container) or self.path.stat().st_mtime - length)

    def _read(self) -> Iterator[Frame | SourceError]:
        import av

        last_kept: float | None = None
        index = -1
        try:
            packets = self._container.demux(self._stream)
            for packet in packets:
                if self._closed:
                    return
                try:
                    decoded = packet.decode()
                except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                    yield SourceError(f"video {self.name}: undecodable packet ({_reason(exc)})")
                    continue
                for vframe in decoded:
                    index += 1
                    t = float(vframe.time) if vframe.time is not None else index / float(self._stream.average_rate or 25)
                    if self.interval and last_kept is not None and t - last_kept < self.interval:
                        continue
                    last_kept = t
                    yield Frame(vframe.to_ndarray(format="rgb24"), self.start + t, self.name, None,
                                {"path": str(self.path), "index": index, "video_time": t})
        except av.error.FFmpegError as exc:  # a file cut short or damaged mid-way
            yield SourceError(f"video {self.name}: read error ({_reason(exc)})")

    def close(self) -> None:
        super().close()
        self._container.close()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
