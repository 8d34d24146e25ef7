"""A bounded on-device spool of surprising JPEG frames for the host's flips sampler to collect.

Files are written atomically (temporary name, then rename) so a collector never reads half a
frame; when the quota (bytes or files) is exceeded, the oldest files are deleted first. Names sort
by time: `<unix-ms>-<reason>.jpg`, so the host reads the folder as a time-ordered image source.
Reasons (edge.tracker): "flip" (a state that showed up and vanished), "low_confidence" (a streak of
uncertain frames), "unknown" (the first frame of a spell the model called unknown: obstructed view,
camera moved, or a top class below min_confidence; worth labelling either way).
"""

import os

from camlytics.edge.compat import wall_time


class Spool:
    """A directory with a disk quota; `add()` keeps the newest frames."""

    def __init__(self, directory, max_bytes=5000000, max_files=200):
        self.directory = directory
        self.max_bytes = int(max_bytes)
        self.max_files = int(max_files)
        try:
            os.mkdir(directory)
        except OSError:
            pass  # exists already (MicroPython has no makedirs/exist_ok)
        try:
            mode = os.stat(directory)[0]
        except OSError:
            raise ValueError("spool directory %s cannot be created" % directory)
        if mode & 0o170000 != 0o040000:
            raise ValueError("spool directory %s exists and is not a directory" % directory)
        self.added = 0

    def files(self):
        """(name, size) of the spooled frames, oldest first."""
        out = []
        for name in sorted(os.listdir(self.directory)):
            if name.endswith(".jpg"):
                out.append((name, os.stat(self.directory + "/" + name)[6]))
        return out

    def add(self, jpeg, reason, t=None):
        """Store one frame and enforce the quota; returns the file name."""
        if len(jpeg) > self.max_bytes:
            return None
        stamp = int((wall_time() if t is None else t) * 1000)
        name = "%013d-%s.jpg" % (stamp, reason)
        path = self.directory + "/" + name
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(jpeg)
        os.rename(tmp, path)
        self.added += 1
        self._enforce()
        return name

    def _enforce(self):
        files = self.files()
        total = 0
        for _, size in files:
            total += size
        while files and (total > self.max_bytes or len(files) > self.max_files):
            name, size = files.pop(0)
            try:
                os.remove(self.directory + "/" + name)
            except OSError:
                pass
            total -= size
