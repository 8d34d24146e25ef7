"""`fleet annotate`'s server: several datasets behind one annotate app, the least confident first across them,
each record with its sensor and classes, labels written to the right dataset, undo across datasets."""

from __future__ import annotations

import numpy as np
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
