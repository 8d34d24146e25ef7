"""`fleet annotate`'s server: several datasets behind one annotate app, the least confident first across them,
each record with its sensor and classes, labels written to the right dataset, undo across datasets."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from starlette.testclient import TestClient

from camlytics.annotate.app import MultiAnnotationService, create_app
from camlytics.store import Dataset


def jpeg(value: int) -> bytes:
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((36, 64, 3), value, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def make(path, classes, confidences, base):
    with Dataset.open(path, create=True) as ds:
        ds.set_classes(classes)
        ids = []
        for i, c in enumerate(confidences):
            rid = ds.add_image(jpeg(base + i), timestamp=float(i), source="t", sampler="t", reason="t", score=0.0)
            ds.set_prediction(rid, classes[0], c, {classes[0]: c, classes[1]: 1 - c})
            ids.append(rid)
    return ids


def test_several_datasets_one_queue_labels_to_the_right_dataset(tmp_path):
    a = make(tmp_path / "a", ["closed", "open"], [0.9, 0.55], 10)
    b = make(tmp_path / "b", ["empty", "car"], [0.7, 0.51, 0.99], 100)
    service = MultiAnnotationService({"cam/door": tmp_path / "a", "lot/bay": tmp_path / "b"}, annotator="t",
                                     first={"lot/bay": [b[2]]})
    with TestClient(create_app(".", annotator="t", service=service, allowed_hosts=["testserver"])) as client:
        state = client.get("/api/state").json()
        order = [(r["sensor"], r["record"], r["confidence"]) for r in state["records"]]
        # the frame named first (a new spool frame), then the least confident across both datasets
        assert order[0] == ("lot/bay", b[2], 0.99)
        assert [c for _, _, c in order[1:]] == sorted(c for _, _, c in order[1:])
        assert order[1] == ("lot/bay", b[1], 0.51)
        rec = {(r["sensor"], r["record"]): r for r in state["records"]}
        assert rec[("lot/bay", b[1])]["classes"] == ["empty", "car"]
        assert client.get(f"/api/image/{rec[('cam/door', a[0])]['id']}").status_code == 200
        sid = rec[("lot/bay", b[1])]["id"]
        assert client.post("/api/label", json={"id": sid, "label": "open"}).status_code == 400  # not its class
        assert client.post("/api/label", json={"id": sid, "label": "car"}).json()["records"][0]["label"] == "car"
        door = rec[("cam/door", a[1])]["id"]
        assert client.post("/api/label", json={"id": door, "label": "open"}).status_code == 200
        assert client.post("/api/roi", json={"roi": [0, 0, 4, 4]}).status_code == 400
        undone = client.post("/api/undo", json={"count": 1}).json()["records"]
        assert [(r["sensor"], r["label"]) for r in undone] == [("cam/door", None)]
    with Dataset.open(tmp_path / "b") as ds:
        assert ds.get(b[1]).label == "car"
    with Dataset.open(tmp_path / "a") as ds:
        assert all(r.label is None for r in ds.records())


# -- the page in a real browser (headless Chromium via Playwright), against `camlytics fleet annotate` ----------
DOOR, BAY = "cam/door", "cam/bay"
FLEET_FILE = """[fleet]
root = "."
[[camera]]
name = "cam"
url = "http://127.0.0.1:9"
  [[camera.sensor]]
  name = "door"
  classes = ["closed", "open"]
  [[camera.sensor]]
  name = "bay"
  classes = ["empty", "car", "truck"]
"""


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Debian's, never a downloaded one), as tests/annotate runs it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def fleet_annotate(fleet_file: pathlib.Path) -> Iterator[str]:
    """`camlytics fleet annotate --port 0` as a subprocess until the block ends; yields the URL it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "fleet", "annotate", "--fleet", str(fleet_file),
                             "--port", "0", "--annotator", "tester"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = proc.stdout.readline()  # "camlytics annotate: http://127.0.0.1:PORT/  (...) press Q ..."
        url = re.search(r"(http://\S+:\d+/)", line)
        assert url and "press Q" in line, line + proc.stdout.read()
        yield url.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def shown(page) -> dict:
    """What the page shows now: the current record's sensor, the keys table's class row, the class chips."""
    return page.evaluate("""() => {
        const r = window.camlytics.state.queue[window.camlytics.state.cursor];
        const rows = [...document.querySelectorAll('#keys tr')].map((tr) => tr.innerText.replace(/\\s+/g, ' '));
        return {sensor: r.sensor, record: r.record, keys: rows.find((t) => t.startsWith('1 …')),
                up: rows[0], chips: [...document.querySelectorAll('#class-counts .class-chip')].map(
                    (c) => c.querySelector('kbd').textContent + ' ' + c.querySelector('.name').textContent),
                why: document.getElementById('cap-why').textContent};
    }""")


def settled(page) -> None:
    page.wait_for_function("() => window.camlytics.pending() === 0")


def test_the_page_shows_and_labels_with_each_frames_own_sensor_classes(browser, tmp_path):
    from tests.annotate.helpers import frame_jpeg

    (tmp_path / "fleet.toml").write_text(FLEET_FILE)
    ids = {}
    # least confident first across both sensors: bay 0.51, door 0.55, bay 0.7, door 0.9
    for key, classes, confidences, start in ((DOOR, ["closed", "open"], [0.55, 0.9], 0),
                                             (BAY, ["empty", "car", "truck"], [0.51, 0.7], 10)):
        with Dataset.open(tmp_path / "datasets" / key, create=True) as ds:
            ds.set_classes(classes)
            for i, c in enumerate(confidences):
                rid = ds.add_image(frame_jpeg(start + i), timestamp=float(i), source="t", sampler="t", reason="t",
                                   score=0.0)
                ds.set_prediction(rid, classes[0], c, {classes[0]: c, classes[1]: 1 - c})
                ids[(key, c)] = rid
    door_keys, bay_keys = "1 … 2 closed, open", "1 … 3 empty, car, truck"
    with fleet_annotate(tmp_path / "fleet.toml") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("body.ready")

        now = shown(page)
        assert (now["sensor"], now["record"]) == (BAY, ids[(BAY, 0.51)]) and now["keys"] == bay_keys, now
        assert now["chips"] == ["↑ 1 empty", "↓ 2 car", "3 truck"] and now["why"].startswith(BAY), now
        page.keyboard.press("3")  # truck, then on to the door's frame
        now = shown(page)
        assert (now["sensor"], now["keys"]) == (DOOR, door_keys), now  # the panel follows the frame's sensor
        assert now["chips"] == ["↓ 1 closed", "↑ 2 open"] and now["up"] == "↑ open", now
        page.keyboard.press("3")  # the door has no third class: nothing happens
        assert shown(page)["record"] == ids[(DOOR, 0.55)]
        page.keyboard.press("ArrowUp")  # open
        now = shown(page)
        assert (now["sensor"], now["keys"], now["up"]) == (BAY, bay_keys, "↑ empty"), now
        page.keyboard.press("ArrowDown")  # car (the bay's second class)
        assert shown(page)["keys"] == door_keys
        page.keyboard.press("1")  # closed
        settled(page)

        def labels() -> dict:
            out = {}
            for key in (DOOR, BAY):
                with Dataset.open(tmp_path / "datasets" / key) as ds:
                    out.update({(key, c): ds.get(rid).label for (k, c), rid in ids.items() if k == key})
            return out

        assert labels() == {(BAY, 0.51): "truck", (DOOR, 0.55): "open", (BAY, 0.7): "car", (DOOR, 0.9): "closed"}
        with Dataset.open(tmp_path / "datasets" / BAY) as ds:
            assert ds.get(ids[(BAY, 0.51)]).annotator == "tester"

        page.keyboard.press("u")  # undo the door's "closed": back on that frame, the door's keys
        settled(page)
        page.wait_for_function("() => document.getElementById('badge').textContent === 'unlabelled'")
        now = shown(page)
        assert (now["sensor"], now["record"], now["keys"]) == (DOOR, ids[(DOOR, 0.9)], door_keys), now
        page.keyboard.press("u")  # and the bay's "car"
        settled(page)
        page.wait_for_function(f"() => window.camlytics.current() !== null && "
                               f"window.camlytics.state.queue[window.camlytics.state.cursor].sensor === '{BAY}'")
        now = shown(page)
        assert (now["record"], now["keys"]) == (ids[(BAY, 0.7)], bay_keys), now
        assert labels() == {(BAY, 0.51): "truck", (DOOR, 0.55): "open", (BAY, 0.7): None, (DOOR, 0.9): None}
        assert not errors, errors
        page.close()
