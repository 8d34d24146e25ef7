"""The package's settings page, served by the (simulated) camera and driven in a real browser."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import sync_playwright

from camlytics.deploy.bundle import BundleOptions, build_bundle
from camlytics.deploy.vapix_apps import AppsClient
from camlytics.sim.camera import SimulatedCamera

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.mark.slow
def test_settings_page_shows_the_cameras_values_and_saves_and_restarts(model_dir, tmp_path):
    package = build_bundle(model_dir, tmp_path, BundleOptions(params={"MqttNodeId": "door"}))
    with SimulatedCamera(auth=None, prewarm=False) as cam, AppsClient(cam.url) as client:
        client.upload(package)
        client.set_params("camlytics_door", {"MqttNodeId": "garage", "VapixPassword": "old-secret"})
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"{cam.url}/local/camlytics_door/index.html")
                node = page.locator("input[name=MqttNodeId]")
                page.wait_for_function("document.querySelector('input[name=MqttNodeId]').value === 'garage'")
                assert page.locator("input[name=VapixPassword]").get_attribute("type") == "password"
                assert page.locator("input[name=VapixPassword]").input_value() == ""  # never shown
                assert page.locator("select[name=HaDiscovery]").input_value() == "yes"
                page.fill("input[name=MqttHost]", "broker.lan")
                node.fill("porch")
                page.click("#save")
                page.wait_for_function("document.getElementById('status').textContent.includes('restarted')")
            finally:
                browser.close()
        assert cam.params["root.camlytics_door.MqttHost"] == "broker.lan"
        assert cam.params["root.camlytics_door.MqttNodeId"] == "porch"
        assert cam.params["root.camlytics_door.VapixPassword"] == "old-secret"  # an empty field keeps it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [a.status for a in client.list()] != ["Running"]:
            time.sleep(0.1)
        assert [a.status for a in client.list()] == ["Running"]
