"""`camlytics annotate` as a real server process over loopback: CLI, path traversal, concurrency, kill -9."""

from __future__ import annotations

import http.client
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import httpx
import pytest

from camlytics.store import Dataset
from tests.annotate.helpers import ANNOTATOR, REPO, scene, serve

TIMEOUT = httpx.Timeout(10.0)


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET exactly `target` (no client-side normalisation of '..' or %-escapes)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses (hex, as in /proc/net/tcp) listening on `port`."""
    found = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        addr, hexport = fields[1].split(":")
        if int(hexport, 16) == port and fields[3] == "0A":  # 0A = LISTEN
            found.add(addr)
    return found


# ---- the command -------------------------------------------------------------------------------------
def test_prints_its_loopback_url_and_q_stops_it_cleanly(dataset_dir):
    with serve(dataset_dir) as server:
        assert server.url.startswith("http://127.0.0.1:")
        port = urllib.parse.urlsplit(server.url).port
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0
        assert "30 images" in server.output() and repr(ANNOTATOR) in server.output()
        resp = httpx.post(server.url + "api/label", json={"id": 1, "label": "open"}, timeout=TIMEOUT)
        assert resp.status_code == 200
        assert httpx.post(server.url + "api/quit", json={}, timeout=TIMEOUT).json()["stopping"] is True
        assert server.proc.wait(15) == 0
        assert "stopped, every label is saved" in server.output()
        assert "Traceback" not in server.output()
    with Dataset.open(dataset_dir) as ds:
        assert ds.get(1).label == "open" and ds.integrity_check() == "ok"


def cli_error(capsys, *args: str) -> str:
    """Run the CLI in this process; assert it failed as a user error and return its one stderr line."""
    from camlytics.cli import main

    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("camlytics annotate: error:"), err
    return err


def test_missing_dataset_is_one_line_error(tmp_path, capsys):
    err = cli_error(capsys, "annotate", str(tmp_path / "nope"), "--no-browser", "--port", "0")
    assert "nope" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "open"], "need between 2 and 9 classes"),
        (["--classes", "open,open"], "duplicate class names"),
        (["--classes", "open,cl/osed"], "class name 'cl/osed'"),
        (["--classes", "closed,half"], "'open'"),  # would orphan the existing "open" label
        (["--annotator", "../../x"], "annotator '../../x'"),
        (["--port", "70000"], "--port 70000"),
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
    ],
)
def test_bad_options_are_one_line_errors(dataset_dir, capsys, args, message):
    with Dataset.open(dataset_dir) as ds:
        ds.set_label(1, "open", "someone")
    port = [] if "--port" in args else ["--port", "0"]
    assert message in cli_error(capsys, "annotate", str(dataset_dir), "--no-browser", *port, *args)
    with Dataset.open(dataset_dir) as ds:
        assert ds.classes == ["closed", "open"]  # nothing changed


def test_a_busy_port_is_one_line_error(dataset_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert f"cannot listen on 127.0.0.1:{port}" in cli_error(capsys, "annotate", str(dataset_dir), "--no-browser",
                                                                "--port", port)


def test_classes_option_sets_the_dataset_classes(dataset_dir):
    with Dataset.open(dataset_dir) as ds:
        ds.set_label(1, "open", "someone")
    with serve(dataset_dir, "--classes", "open,closed,ajar") as server:
        st = httpx.get(server.url + "api/state", timeout=TIMEOUT).json()
        assert st["classes"] == ["open", "closed", "ajar"]
        assert httpx.post(server.url + "api/label", json={"id": 2, "label": "ajar"}, timeout=TIMEOUT).status_code == 200
    # Leaving the block pressed Ctrl-C: a clean stop too (exit 130, as for any Ctrl-C).
    assert server.proc.returncode == 130 and "stopped by SIGINT, every label is saved" in server.output()
    with Dataset.open(dataset_dir) as ds:
        assert ds.classes == ["open", "closed", "ajar"] and ds.get(2).label == "ajar"


# ---- path traversal ----------------------------------------------------------------------------------
TRAVERSALS = [
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e%2fapp.py",
    "/static/%2e%2e/%2e%2e/store/dataset.py",
    "/static/..%5c..%5capp.py",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/app.js%00.py",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/api/image/..%2F..%2Findex.sqlite",
    "/api/image/1/../../index.sqlite",
    "/api/image/1%2F..%2F..%2Findex.sqlite",
    "/api/image/%2e%2e/index.sqlite",
    "/api/image//etc/passwd",
    "/api/image/%2Fetc%2Fpasswd",
    "/api/image/images%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/records/..%2F..%2Fetc%2Fpasswd",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
]


def test_no_url_reads_a_file_outside_the_served_set(dataset_dir):
    secrets = [b"root:", b"SQLite format 3", b"import ", b"[project]", b"\xff\xd8"]
    with serve(dataset_dir) as server:
        for target in TRAVERSALS:
            status, body = raw_get(server.url, target)
            assert status in (400, 404), (target, status)
            assert not any(s in body for s in secrets), target
        # The legitimate routes still work on the same server.
        assert raw_get(server.url, "/api/image/1")[1][:2] == b"\xff\xd8"
        assert raw_get(server.url, "/static/app.js")[0] == 200


# ---- several writers -----------------------------------------------------------------------------------
def test_two_clients_label_concurrently_and_every_label_lands(dataset_dir):
    with serve(dataset_dir) as server:
        ids = [r["id"] for r in httpx.get(server.url + "api/state", timeout=TIMEOUT).json()["records"]]
        contested = ids[0]
        acked: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
        errors: list[str] = []

        def labeller(name: str, mine: list[int], label: str) -> None:
            with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
                for i in mine:
                    for rid in (i, contested):
                        resp = c.post("api/label", json={"id": rid, "label": label})
                        if resp.status_code != 200:
                            errors.append(resp.text)
                        else:
                            acked[name].append((rid, label))

        threads = [threading.Thread(target=labeller, args=("a", ids[1:16], "open")),
                   threading.Thread(target=labeller, args=("b", ids[16:], "closed"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        st = httpx.get(server.url + "api/state", timeout=TIMEOUT).json()
    assert len(acked["a"]) == 30 and len(acked["b"]) == 28
    assert st["progress"] == {"total": 30, "labelled": 30, "per_class": {"closed": 14, "open": 16}} or \
        st["progress"] == {"total": 30, "labelled": 30, "per_class": {"closed": 15, "open": 15}}
    with Dataset.open(dataset_dir) as ds:
        assert [ds.get(i).label for i in ids[1:16]] == ["open"] * 15
        assert [ds.get(i).label for i in ids[16:]] == ["closed"] * 14
        assert ds.get(contested).label in ("open", "closed")
        assert ds.integrity_check() == "ok"


# A collector in its own process: adds frames (rendered beforehand, to keep the test short) one by one.
COLLECTOR = """
import pathlib, sys, time
from camlytics.store import Dataset
with Dataset.open(sys.argv[1]) as ds:
    for f in sorted(pathlib.Path(sys.argv[2]).glob("*.jpg")):
        ds.add_image(f.read_bytes(), timestamp=float(f.stem), source="sim:office?seed=0", sampler="motion",
                     reason="motion started", score=0.5)
        time.sleep(0.02)
print("collector done", flush=True)
"""


def test_collector_adds_frames_while_the_annotator_labels(dataset_dir, tmp_path):
    frames = tmp_path / "incoming"
    frames.mkdir()
    for k in range(25):
        t = 20 * 3600 + 13 + 37.0 * k  # none of these times is in the dataset already
        (frames / f"{t:.0f}.jpg").write_bytes(scene().frame(t).jpeg)
    with serve(dataset_dir) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        collector = subprocess.Popen([sys.executable, "-c", COLLECTOR, str(dataset_dir), str(frames)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        labelled: list[int] = []
        totals: list[int] = []
        for rid in range(1, 31):
            assert c.post("api/label", json={"id": rid, "label": "closed"}).status_code == 200
            labelled.append(rid)
            if rid % 5 == 0:
                totals.append(c.get("api/state").json()["progress"]["total"])
        out, err = collector.communicate(timeout=60)
        assert collector.returncode == 0, err
        st = c.get("api/state").json()
        new = [r for r in st["records"] if r["sampler"] == "motion"]
        assert len(new) == 25 and st["progress"]["total"] == 55
        assert c.get(f"api/image/{new[-1]['id']}").status_code == 200  # new frames are served too
        assert st["records"][0]["id"] == new[0]["id"]  # unlabelled first: the collector's new frames lead
    assert totals == sorted(totals)
    with Dataset.open(dataset_dir) as ds:
        assert all(ds.get(i).label == "closed" for i in labelled)
        assert len(ds) == 55 and ds.integrity_check() == "ok"


def test_kill_9_while_labelling_keeps_every_acknowledged_label(dataset_dir):
    acked: dict[int, str] = {}
    in_flight: list = []  # the one request without an answer may or may not have been written
    with serve(dataset_dir) as server:
        stop = threading.Event()

        def labeller() -> None:
            with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
                n = 0
                while not stop.is_set():
                    rid, label = 1 + n % 30, ("open", "closed")[n % 2 ^ (n // 30) % 2]
                    n += 1
                    in_flight[:] = [rid, label]
                    try:
                        resp = c.post("api/label", json={"id": rid, "label": label})
                    except httpx.HTTPError:
                        return  # the server is gone
                    if resp.status_code == 200:
                        acked[rid] = label  # acknowledged: it must be in the store

        thread = threading.Thread(target=labeller)
        thread.start()
        deadline = time.monotonic() + 20
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.15)  # mid-stream, not between two labels
        os.kill(server.proc.pid, signal.SIGKILL)
        thread.join(15)
        stop.set()
        assert server.proc.wait(10) == -signal.SIGKILL
    assert len(acked) == 30
    with Dataset.open(dataset_dir) as ds:
        assert ds.integrity_check() == "ok"
        for rid, label in acked.items():
            expected = {label, in_flight[1]} if rid == in_flight[0] else {label}
            assert ds.get(rid).label in expected, rid
    # And the dataset serves again.
    with serve(dataset_dir) as server:
        assert httpx.get(server.url + "api/state", timeout=TIMEOUT).json()["progress"]["labelled"] == 30


def test_listening_socket_disables_nagle_so_replies_are_not_held_back():
    from camlytics.annotate.commands import bind_socket

    # asyncio sets TCP_NODELAY only on sockets it creates; accepted connections inherit it from here.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
