"""Packaging and deployment: the ACAP `.eap` builder and the VAPIX application API client.

    from camlytics.deploy.bundle import build_bundle, BundleOptions
    path = build_bundle("models/door", "dist/", BundleOptions(arch="armv7hf"))
    from camlytics.deploy.vapix_apps import AppsClient
    with AppsClient("http://root:pass@camera") as cam: cam.upload(path); cam.control("start", "camlytics_door")
"""
