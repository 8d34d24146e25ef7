"""The labelling UI in a real browser (headless Chromium via Playwright) against `camlytics annotate`."""

from __future__ import annotations

import os

import pathlib
import statistics

import pytest
from playwright.sync_api import Page, sync_playwright

from camlytics.store import Dataset
from tests.annotate.helpers import ANNOTATOR, REPO, add_frames, scene, serve

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = REPO / "docs" / "images" / "annotate.png"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Debian's, never a downloaded one)."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class HeldImages:
    """Holds a page's image requests (`page.route`) until `release()`; every later one then goes straight on."""

    def __init__(self) -> None:
        self.routes: list = []
        self.released = False

    def __call__(self, route) -> None:
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self) -> None:
        self.released = True
        for route in self.routes:
            route.continue_()


def open_page(browser, url: str, width: int = 1440, height: int = 860, held: HeldImages | None = None) -> Page:
    """A page on the annotation UI, loaded, with script errors turned into test failures.

    With `held`, the page is ready and laid out while its images are still loading.
    """
    page = browser.new_page(viewport={"width": width, "height": height})
    if held is not None:
        page.route("**/api/image/**", held)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors too (a Content-Security-Policy violation shows up only there); a placeholder's
    # 404 is expected and reported by the page itself.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.errors = errors
    page.goto(url)
    page.wait_for_selector("body.ready")
    return page


def settle(page: Page) -> None:
    """Wait until every label keystroke has been acknowledged by the server."""
    page.wait_for_function("() => window.camlytics.pending() === 0")


def saved_roi(page: Page, dataset: pathlib.Path) -> tuple[int, int, int, int] | None:
    """The dataset's ROI once the page has saved a drawn one and shows it."""
    settle(page)
    page.wait_for_selector("#roi-box:not([hidden])")
    with Dataset.open(dataset) as ds:
        return ds.roi


def near(roi, expected, tolerance: float = 2) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(roi, expected))


def current(page: Page) -> int:
    return page.evaluate("() => window.camlytics.current()")


def labels(dataset: pathlib.Path) -> dict[int, str | None]:
    with Dataset.open(dataset) as ds:
        return {r.id: r.label for r in ds.records()}


def test_keys_label_step_skip_undo_and_jump(browser, dataset_dir):
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url)
        assert current(page) == 1
        for key in ["ArrowUp", "ArrowDown", "2", "1", "Space", "ArrowDown"]:
            page.keyboard.press(key)
        settle(page)
        got = labels(dataset_dir)
        assert [got[i] for i in range(1, 7)] == ["open", "closed", "open", "closed", None, "closed"]
        assert current(page) == 7
        assert page.inner_text("#badge") == "unlabelled" and page.inner_text("#position") == "7 / 30"
        assert page.inner_text("#progress-text") == "5 / 30 labelled"
        with Dataset.open(dataset_dir) as ds:
            assert ds.get(1).annotator == ANNOTATOR and ds.get(1).labelled_at > 0

        page.keyboard.press("u")  # undo: record 6 loses its label and is shown again
        settle(page)
        assert labels(dataset_dir)[6] is None and current(page) == 6
        page.keyboard.press("Backspace")
        settle(page)
        assert labels(dataset_dir)[4] is None and current(page) == 4
        assert page.inner_text("#badge") == "unlabelled"

        page.keyboard.press("ArrowLeft")
        assert current(page) == 3 and page.inner_text("#badge") == "OPEN"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert current(page) == 5
        page.keyboard.press("l")  # last annotated: the latest label still standing is record 3's
        assert current(page) == 3
        page.keyboard.press("n")  # next unlabelled after 3
        assert current(page) == 4
        page.keyboard.press("n")
        assert current(page) == 5  # skipped earlier, still unlabelled
        assert "#5" in page.inner_text("#info") and "every 30 min (#4)" in page.inner_text("#info")

        # Timing: label keystrokes at a brisk human pace once the next images are prefetched.
        page.wait_for_function("() => window.camlytics.prefetched() >= 8")
        page.evaluate("() => { window.camlytics.switchTimes.length = 0; }")
        for _ in range(12):
            page.keyboard.press("ArrowDown")
            page.wait_for_timeout(120)
        settle(page)
        page.wait_for_timeout(200)
        times = page.evaluate("() => window.camlytics.switchTimes.filter((s) => s.what === 'label').map((s) => s.ms)")
        print(f"\nkeystroke -> next image painted: median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms over {len(times)} labels (loopback, headless Chromium)")
        assert len(times) == 12
        got = labels(dataset_dir)
        assert sum(1 for v in got.values() if v) == 3 + 12
        assert not page.errors

        page.keyboard.press("q")  # quit: the server process ends cleanly
        page.wait_for_selector("#stopped:not([hidden])")
        assert server.proc.wait(15) == 0
    assert sum(1 for v in labels(dataset_dir).values() if v) == 15


def test_grid_view_selects_with_mouse_and_keys_and_labels_together(browser, dataset_dir):
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url)
        page.keyboard.press("g")
        page.wait_for_selector("#grid:not([hidden])")
        cells = page.locator("#grid-cells .cell")
        assert cells.count() == 24
        page.keyboard.press("a")  # the whole page ...
        cells.nth(2).click(modifiers=["Control"])  # ... except frames 3 and 5
        cells.nth(4).click(modifiers=["Control"])
        assert page.locator("#grid-cells .cell.selected").count() == 22
        page.keyboard.press("1")  # closed
        settle(page)
        got = labels(dataset_dir)
        assert [i for i in range(1, 25) if got[i] == "closed"] == [i for i in range(1, 25) if i not in (3, 5)]
        assert got[3] is None and got[5] is None and got[25] is None

        cells.nth(2).click()  # frame 3, then shift-click frame 5: a range of three
        cells.nth(4).click(modifiers=["Shift"])
        assert page.locator("#grid-cells .cell.selected").count() == 3
        page.keyboard.press("2")  # open
        settle(page)
        got = labels(dataset_dir)
        assert (got[3], got[4], got[5]) == ("open", "open", "open")

        page.keyboard.press("u")  # undoes the whole grid action
        settle(page)
        got = labels(dataset_dir)
        assert (got[3], got[4], got[5]) == (None, "closed", None)

        # Keys only: focus frame 3, extend to 5 with Shift+Right, label.
        page.keyboard.press("Escape")
        cells.nth(2).click()
        page.keyboard.press("Escape")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        assert page.locator("#grid-cells .cell.selected").count() == 3
        page.keyboard.press("1")
        settle(page)
        got = labels(dataset_dir)
        assert all(got[i] == "closed" for i in range(1, 25))
        # A fully labelled page moves on to the next one.
        assert page.locator("#grid-cells .cell").count() == 6 and current(page) == 25
        assert page.locator(".cell .lab").first.inner_text() == "—"
        page.keyboard.press("g")
        page.wait_for_selector("#viewer:not([hidden])")
        assert current(page) == 25 and page.inner_text("#progress-text") == "24 / 30 labelled"
        assert not page.errors


def test_roi_tool_drag_sets_the_dataset_roi_shown_on_every_frame(browser, dataset_dir):
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url)
        assert page.locator("#roi-box").is_hidden()
        page.keyboard.press("r")
        page.wait_for_selector("#roi-hint:not([hidden])")
        page.keyboard.press("Escape")  # cancel leaves everything as it was
        assert page.locator("#roi-hint").is_hidden()
        page.keyboard.press("r")
        # Drag once the image has loaded (the next test drags while it loads). The predicate must not return
        # a Promise: wait_for_function takes the Promise object itself as truthy and does not wait.
        page.wait_for_selector("#roi-hint:not([hidden])")
        page.wait_for_function("""() => { const img = document.querySelector('#image');
            return img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0; }""")
        image = page.locator("#image")
        box = image.bounding_box()
        w, h = scene().width, scene().height
        # hover() waits until the image is stable and is what receives the pointer there (actionability)
        image.hover(position={"x": 0.25 * box["width"], "y": 0.2 * box["height"]})
        box = image.bounding_box()
        page.mouse.down()
        page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"], steps=4)
        page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.8 * box["height"], steps=4)
        page.mouse.up()
        roi = saved_roi(page, dataset_dir)
        assert roi is not None and near(roi, (0.25 * w, 0.2 * h, 0.6 * w, 0.8 * h)), roi
        # The overlay sits on the same pixels of the next frame too.
        page.keyboard.press("ArrowRight")
        overlay = page.locator("#roi-box").bounding_box()
        img = page.locator("#image").bounding_box()
        assert abs(overlay["x"] - (img["x"] + roi[0] / w * img["width"])) <= 3
        assert abs(overlay["width"] - (roi[2] - roi[0]) / w * img["width"]) <= 4
        assert page.locator("#zoom-panel").is_visible()  # the door region, enlarged beside the image
        # The grid can show just the region of every frame (Z), for many near-identical frames.
        page.keyboard.press("g")
        assert page.locator(".cell .thumb.zoomed").count() == 0
        page.keyboard.press("z")
        page.wait_for_function("() => document.querySelectorAll('.cell .thumb.zoomed').length === 24")
        page.keyboard.press("g")
        # In the ROI tool, Delete clears the region.
        page.keyboard.press("r")
        page.keyboard.press("Delete")
        settle(page)
        page.wait_for_selector("#roi-box", state="hidden")
        with Dataset.open(dataset_dir) as ds:
            assert ds.roi is None
        assert not page.errors


def test_a_roi_drag_begun_while_the_image_loads_is_saved_where_it_was_drawn(browser, dataset_dir):
    held = HeldImages()
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url, held=held)
        page.keyboard.press("r")
        page.wait_for_selector("#roi-hint:not([hidden])")
        # The frame is laid out at the stage's 16:9 size, but the image has no pixels yet.
        assert page.evaluate("() => document.querySelector('#image').naturalWidth") == 0 and held.routes
        box = page.locator("#image").bounding_box()
        start = (box["x"] + 0.25 * box["width"], box["y"] + 0.2 * box["height"])
        end = (box["x"] + 0.6 * box["width"], box["y"] + 0.8 * box["height"])
        # Released before the image has loaded: nothing to convert to pixels, so nothing is saved.
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=2)
        page.mouse.up()
        page.wait_for_selector("#toast:not([hidden])")
        assert "not loaded yet" in page.inner_text("#toast")
        with Dataset.open(dataset_dir) as ds:
            assert ds.roi is None
        # Begun while it loads, released once it has: saved where it was drawn.
        page.mouse.move(*start)
        page.mouse.down()
        held.release()
        page.wait_for_function("() => document.querySelector('#image').naturalWidth > 0")
        page.mouse.move(*end, steps=4)
        page.mouse.up()
        roi = saved_roi(page, dataset_dir)
        w, h = scene().width, scene().height
        assert roi is not None and near(roi, (0.25 * w, 0.2 * h, 0.6 * w, 0.8 * h)), roi
        assert not page.errors


def test_a_broken_image_shows_a_placeholder_is_listed_and_labelling_goes_on(browser, dataset_dir):
    with Dataset.open(dataset_dir) as ds:
        ds.image_path(ds.get(2)).unlink()
    with serve(dataset_dir) as server:
        page = open_page(browser, server.url)
        page.keyboard.press("ArrowRight")
        assert current(page) == 2
        page.wait_for_selector("#problems-panel:not([hidden])")
        assert "#2 image file missing" in page.inner_text("#problems")
        assert page.evaluate("() => document.getElementById('image').naturalWidth") > 0  # the placeholder
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowUp")
        settle(page)
        got = labels(dataset_dir)
        assert got[2] == "closed" and got[3] == "open"
        assert page.inner_text("#badge") == "unlabelled" and current(page) == 4
        # A collector adding frames meanwhile: they show up without a reload.
        with Dataset.open(dataset_dir) as ds:
            add_frames(ds, 30, 2, sampler="motion")
        page.wait_for_function("() => window.camlytics.state.queue.length === 32", timeout=10_000)
        assert page.inner_text("#progress-text") == "2 / 32 labelled"
        assert not page.errors


def door_probs(image) -> dict[str, float]:
    """A crude stand-in model for the screenshot: a bright door region means open (not a trained model)."""
    import numpy as np

    x0, y0, x1, y1 = scene(640, 360).door_roi
    brightness = float(np.asarray(image)[y0:y1, x0:x1].mean()) / 255
    p_open = float(1 / (1 + np.exp(-(brightness - 0.45) * 14)))
    return {"open": p_open, "closed": 1 - p_open}


def test_screenshot_for_the_readme(browser, tmp_path):
    """Label part of a simulated day and save the view the README shows."""
    sc = scene(640, 360)
    # A sampled day: every 40 minutes, plus door openings by day and night, with and without people.
    openings = [(e.start + e.end) / 2 for e in sc.timeline.events]
    by_condition: dict[str, list[float]] = {}
    for t in openings:
        by_condition.setdefault(sc.truth(t)["condition"], []).append(t)
    extra = [t for ts in by_condition.values() for t in ts[:2] if sc.truth(t)["state"] == "open"]
    hourly = [5 * 3600 + 5400.0 * k for k in range(12)]
    why = [("motion", "motion started: 12% of pixels changed", 0.12), ("hog", "HOG novelty 0.41", 0.41),
           ("color", "colour histogram distance 0.23", 0.23)]
    with Dataset.open(tmp_path / "office-day", create=True) as ds:
        for k, t in enumerate(sorted({*hourly, *extra})):
            frame = sc.frame(t)
            sampler, reason, score = ("time", "every 90 min", 1.0) if t in hourly else why[k % 3]
            rid = ds.add_image(frame.jpeg, timestamp=t, source="sim:office?seed=0", sampler=sampler,
                               reason=reason, score=score)
            probs = door_probs(frame.image)
            label = max(probs, key=probs.get)
            ds.set_prediction(rid, label, probs[label], probs)
        ds.set_roi(sc.door_roi)
        dataset = ds.root
    with serve(dataset) as server:
        page = open_page(browser, server.url, 1440, 900)
        ids = page.evaluate("() => window.camlytics.state.queue.map((r) => [r.id, r.timestamp])")
        for _, t in ids[:12]:  # label the first dozen correctly, from the simulator's ground truth
            page.keyboard.press("ArrowUp" if sc.truth(t)["state"] == "open" else "ArrowDown")
        settle(page)
        # Show a frame with the door open and people in front (the interesting kind).
        target = next(i for i, (_, t) in enumerate(ids) if sc.truth(t)["condition"] == "open/day/people")
        while current(page) != ids[target][0]:
            page.keyboard.press("ArrowRight" if page.evaluate("() => window.camlytics.state.cursor") < target else "ArrowLeft")
        page.wait_for_function("() => document.getElementById('image').complete")
        page.wait_for_timeout(300)
        # the README's copy is refreshed on request only, so a test run leaves the checkout clean
        shot = SCREENSHOT if os.environ.get("CAMLYTICS_UPDATE_DOCS") else tmp_path / "annotate.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        assert not page.errors
    assert shot.stat().st_size > 20_000
