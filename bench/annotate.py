"""Annotation tool latency: label keystroke -> next image painted (headless Chromium), and API round trips.

Builds a dataset of simulated 640x360 frames, serves it with uvicorn on loopback, then
1. presses label keys in Chromium at a brisk human pace (and in a burst) and reads the times the page
   measured from the key event to the first frame painted with the next image;
2. times POST /api/label and GET /api/image round trips with httpx.
Usage: .venv/bin/python bench/annotate.py [--frames 120] [--keys 60]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import threading
import time

import httpx
import uvicorn

from camlytics.annotate.app import create_app
from camlytics.sim import Scene
from camlytics.store import Dataset


def summary(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"median {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms   max {values[-1]:6.1f} ms   (n={len(values)})"


def make_dataset(root: pathlib.Path, frames: int) -> None:
    scene = Scene(preset="office", seed=0, width=640, height=360)
    with Dataset.open(root, create=True) as ds:
        for k in range(frames):
            t = 6 * 3600 + k * (14 * 3600 / frames)
            ds.add_image(scene.frame(t).jpeg, timestamp=t, source="sim:office?seed=0", sampler="time",
                         reason="bench", score=1.0)


def serve(root: pathlib.Path) -> tuple[uvicorn.Server, str]:
    from camlytics.annotate.commands import bind_socket

    sock = bind_socket("127.0.0.1", 0)  # the CLI's own listening socket (TCP_NODELAY matters)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(root, annotator="bench"), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}/"


def browser_times(url: str, keys: int, pause_ms: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        page.goto(url)
        page.wait_for_selector("body.ready")
        page.wait_for_function("() => window.camlytics.prefetched() >= 8")
        for _ in range(keys):
            page.keyboard.press("ArrowDown")
            if pause_ms:
                page.wait_for_timeout(pause_ms)
        page.wait_for_function("() => window.camlytics.pending() === 0")
        page.wait_for_timeout(300)
        times = page.evaluate("() => window.camlytics.switchTimes.filter((s) => s.what === 'label').map((s) => s.ms)")
        browser.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--keys", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_dataset(pathlib.Path(tmp) / "ds", args.frames)
        print(f"dataset: {args.frames} simulated 640x360 frames ({time.perf_counter() - t0:.1f} s to build)")
        server, url = serve(pathlib.Path(tmp) / "ds")
        try:
            paced = browser_times(url, args.keys, pause_ms=150)
            print(f"label key -> next image painted, one key per 150 ms: {summary(paced)}")
            burst = browser_times(url, args.keys, pause_ms=0)
            print(f"label key -> next image painted, keys as fast as possible: {summary(burst)}")
            with httpx.Client(base_url=url, timeout=10) as c:
                ids = [r["id"] for r in c.get("api/state").json()["records"]]
                label_ms, image_ms = [], []
                for k, rid in enumerate(ids):
                    t = time.perf_counter()
                    c.post("api/label", json={"id": rid, "label": ("open", "closed")[k % 2]}).raise_for_status()
                    label_ms.append(1000 * (time.perf_counter() - t))
                    t = time.perf_counter()
                    c.get(f"api/image/{rid}").raise_for_status()
                    image_ms.append(1000 * (time.perf_counter() - t))
            print(f"POST /api/label round trip (written to SQLite before the reply): {summary(label_ms)}")
            print(f"GET /api/image round trip (640x360 JPEG):                        {summary(image_ms)}")
        finally:
            server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
