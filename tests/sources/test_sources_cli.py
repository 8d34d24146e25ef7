"""`camlytics snapshot` and `camlytics sources`: results on good input, one error line on bad input."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from camlytics.cli import main
from camlytics.frames import decode_jpeg, encode_jpeg
from camlytics.sim.camera import SimulatedCamera


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_snapshot_saves_a_jpeg(simcam, tmp_path, capsys):
    out_file = tmp_path / "snap.jpg"
    code, out, err = run_cli(capsys, "snapshot", simcam.url, "-o", str(out_file), "--resolution", "320x180")
    assert code == 0, err
    assert decode_jpeg(out_file.read_bytes()).shape == (180, 320, 3)
    assert "saved" in out and "320x180" in out


def test_sources_lists_frames_sizes_timestamps_and_skipped(simcam, capsys):
    code, out, err = run_cli(capsys, "sources", simcam.url, "--count", "3", "--resolution", "320x180")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"source {simcam.url} (VapixCamera)")
    assert sum("320x180" in line and "truth=" in line for line in lines[1:-1]) == 3
    assert lines[-1].startswith("3 frames (320x180 x3)") and "0 skipped" in lines[-1]


def test_sources_on_a_simulated_day(capsys):
    code, out, _ = run_cli(capsys, "sources", "sim:office?interval=7200&width=320&height=180", "--count", "12")
    assert code == 0
    assert "12 frames (320x180 x12)" in out and "22:00:00 (simulated)" in out


def one_error_line(err: str, command: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"camlytics {command}: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unreachable_host(free_port, tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", f"http://127.0.0.1:{free_port}", "-o", str(tmp_path / "x.jpg"),
                           "--retries", "0")
    assert code == 2
    one_error_line(err, "snapshot", "connection refused", str(free_port))


def test_wrong_password(tmp_path, capsys):
    with SimulatedCamera(auth=("root", "right")) as cam:
        url = cam.url.replace("http://", "http://root:wrong@")
        code, _, err = run_cli(capsys, "snapshot", url, "-o", str(tmp_path / "x.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", "HTTP 401", "wrong user name or password")
    assert "wrong@" not in err and ":wrong" not in err


@pytest.mark.parametrize("kind, message", [("html", "expected a JPEG, got text/html"),
                                           ("truncated", "corrupt or truncated JPEG")])
def test_html_or_truncated_jpeg_from_the_camera(simcam, tmp_path, capsys, kind, message):
    httpx.post(simcam.url + "/camlytics-sim/fail", params={"kind": kind, "count": 2})  # the retry fails too
    code, _, err = run_cli(capsys, "snapshot", simcam.url, "-o", str(tmp_path / "x.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", message)
    assert not (tmp_path / "x.jpg").exists()


def test_truncated_jpeg_file(tmp_path, capsys):
    data = encode_jpeg(np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, "sources", str(tmp_path / "half.jpg"))
    assert code == 2
    one_error_line(err, "sources", "half.jpg", "corrupt or truncated JPEG")


def test_empty_folder(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sources", str(tmp_path))
    assert code == 2
    one_error_line(err, "sources", "holds no images")


def test_unreadable_video(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x01garbage" * 100)
    code, _, err = run_cli(capsys, "sources", str(tmp_path / "clip.mp4"))
    assert code == 2
    one_error_line(err, "sources", "clip.mp4", "cannot open as a video")


def test_nonexistent_path_and_bad_scheme(tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", str(tmp_path / "missing"), "-o", str(tmp_path / "x.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", "no such file or directory")
    code, _, err = run_cli(capsys, "sources", "rtsp://cam/stream")
    assert code == 2
    one_error_line(err, "sources", "unsupported scheme 'rtsp'")


def test_snapshot_output_must_be_writable_jpeg(simcam, tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", simcam.url, "-o", str(tmp_path / "no" / "dir.jpg"))
    assert code == 2
    one_error_line(err, "snapshot", "does not exist")
    code, _, err = run_cli(capsys, "snapshot", simcam.url, "-o", str(tmp_path / "x.png"))
    assert code == 2
    one_error_line(err, "snapshot", ".jpg")


def test_a_bad_first_frame_is_asked_for_again(simcam, tmp_path, capsys):
    httpx.post(simcam.url + "/camlytics-sim/fail", params={"kind": "corrupt", "count": 1})
    code, _, err = run_cli(capsys, "snapshot", simcam.url, "-o", str(tmp_path / "x.jpg"))
    assert code == 0 and (tmp_path / "x.jpg").stat().st_size > 1000, err
