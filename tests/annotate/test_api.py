"""The annotation API, endpoint by endpoint (in-process app, the real dataset store)."""

from __future__ import annotations

import pathlib

from camlytics.store import Dataset
from tests.annotate.helpers import ANNOTATOR


def state(client) -> dict:
    resp = client.get("/api/state")
    assert resp.status_code == 200, resp.text
    return resp.json()


def stored(dataset_dir: pathlib.Path, record_id: int):
    with Dataset.open(dataset_dir) as ds:
        return ds.get(record_id)


# ---- pages -------------------------------------------------------------------------------------------
def test_index_page_loads_only_local_script_and_style(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert '<script src="/static/app.js"' in page and 'href="/static/style.css"' in page
    assert "http://" not in page and "https://" not in page  # no CDN: the tool works offline
    assert "default-src 'self'" in resp.headers["content-security-policy"]


def test_static_files_are_served_with_their_types(client):
    js = client.get("/static/app.js")
    css = client.get("/static/style.css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "keydown" in js.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/index.html").status_code == 404  # only the listed files
    assert client.get("/static/app.py").status_code == 404


# ---- reading -----------------------------------------------------------------------------------------
def test_state_lists_every_record_with_progress_and_classes(client):
    st = state(client)
    assert st["classes"] == ["closed", "open"]
    assert st["annotator"] == ANNOTATOR
    assert st["progress"] == {"total": 30, "labelled": 0, "per_class": {"closed": 0, "open": 0}}
    first = st["records"][0]
    assert first["time"] == "sim 06:00:00.0"
    assert first["sampler"] == "time" and first["reason"] == "every 30 min (#0)"
    assert "meta" not in first  # simulated ground truth never reaches the person labelling


def test_state_puts_unlabelled_first(client, dataset_dir):
    with Dataset.open(dataset_dir) as ds:
        ids = [r.id for r in ds.records()]
        ds.set_label(ids[0], "closed", "someone")
        ds.set_label(ids[1], "open", "someone")
    st = state(client)
    assert st["order"] == "unlabelled_first"
    order = [r["id"] for r in st["records"]]
    assert order[-2:] == ids[:2] and order[:28] == ids[2:]
    assert st["progress"]["labelled"] == 2 and st["progress"]["per_class"] == {"closed": 1, "open": 1}


def test_state_puts_most_uncertain_first_when_predictions_exist(client, dataset_dir):
    with Dataset.open(dataset_dir) as ds:
        ids = [r.id for r in ds.records()]
        for i, confidence in zip(ids[:4], [0.99, 0.51, 0.75, 0.6]):
            ds.set_prediction(i, "closed", confidence, {"closed": confidence, "open": 1 - confidence})
        ds.set_label(ids[1], "open", "someone")  # labelled: goes after every unlabelled one
    st = state(client)
    assert st["order"] == "uncertain" and st["has_predictions"]
    order = [r["id"] for r in st["records"]]
    assert order[:3] == [ids[3], ids[2], ids[0]]  # confidence 0.6, 0.75, 0.99
    assert order[-1] == ids[1]
    rec = st["records"][0]
    assert rec["prediction"] == "closed" and rec["confidence"] == 0.6 and rec["probs"]["open"] == 0.4


def test_state_order_can_be_chosen_and_is_validated(client):
    assert state(client)["order"] == "unlabelled_first"
    assert client.get("/api/state?order=time").json()["order"] == "time"
    resp = client.get("/api/state?order=random")
    assert resp.status_code == 400 and "order='random'" in resp.json()["error"]


def test_state_answers_304_while_nothing_changed(client):
    first = client.get("/api/state")
    etag = first.headers["etag"]
    assert client.get("/api/state", headers={"if-none-match": etag}).status_code == 304
    client.post("/api/label", json={"id": 1, "label": "open"})
    changed = client.get("/api/state", headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["progress"]["labelled"] == 1


def test_record_endpoint_returns_one_record_or_404(client):
    rid = state(client)["records"][3]["id"]
    assert client.get(f"/api/records/{rid}").json()["id"] == rid
    assert client.get("/api/records/99999").status_code == 404
    assert client.get("/api/records/abc").status_code == 404


def test_image_is_served_by_record_id(client, dataset_dir):
    rid = state(client)["records"][0]["id"]
    resp = client.get(f"/api/image/{rid}")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    with Dataset.open(dataset_dir) as ds:
        assert resp.content == ds.image_path(ds.get(rid)).read_bytes()
    assert client.get("/api/image/99999").status_code == 404
    assert client.get("/api/image/-1").status_code == 404


def test_missing_and_corrupt_images_get_a_placeholder_are_reported_and_work_goes_on(client, dataset_dir):
    records = state(client)["records"]
    missing, corrupt, fine = records[0]["id"], records[1]["id"], records[2]["id"]
    with Dataset.open(dataset_dir) as ds:
        ds.image_path(ds.get(missing)).unlink()
        path = ds.image_path(ds.get(corrupt))
        path.write_bytes(path.read_bytes()[:200])  # truncated JPEG
    for rid in (missing, corrupt):
        resp = client.get(f"/api/image/{rid}")
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "image/svg+xml" and b"<svg" in resp.content
        assert f"image #{rid} unavailable".encode() in resp.content
    problems = {p["id"]: p["error"] for p in client.get("/api/problems").json()["problems"]}
    assert problems[missing] == "image file missing"
    assert "corrupt or truncated JPEG" in problems[corrupt]
    assert {p["id"] for p in state(client)["problems"]} == {missing, corrupt}
    # The tool keeps working: other images load and the broken records can still be labelled.
    assert client.get(f"/api/image/{fine}").status_code == 200
    assert client.post("/api/label", json={"id": missing, "label": "closed"}).status_code == 200
    assert stored(dataset_dir, missing).label == "closed"


def test_an_image_symlinked_to_a_file_outside_the_dataset_is_not_served(client, dataset_dir, tmp_path):
    secret = tmp_path / "secret.jpg"
    rid = state(client)["records"][0]["id"]
    with Dataset.open(dataset_dir) as ds:
        path = ds.image_path(ds.get(rid))
    secret.write_bytes(path.read_bytes())  # a valid JPEG, so only the path check can refuse it
    path.unlink()
    path.symlink_to(secret)
    resp = client.get(f"/api/image/{rid}")
    assert resp.status_code == 404 and resp.headers["content-type"] == "image/svg+xml"
    assert secret.read_bytes() not in resp.content
    problems = client.get("/api/problems").json()["problems"]
    assert problems == [{"id": rid, "path": problems[0]["path"], "error": "image path leads outside the dataset"}]


# ---- labelling ---------------------------------------------------------------------------------------
def test_label_is_written_at_once_with_annotator_and_time(client, dataset_dir):
    rid = state(client)["records"][0]["id"]
    resp = client.post("/api/label", json={"id": rid, "label": "open"})
    assert resp.status_code == 200, resp.text
    (rec,) = resp.json()["records"]
    assert rec["label"] == "open" and rec["annotator"] == ANNOTATOR and rec["labelled_at"] > 0
    # Written before the reply: a second connection to the dataset sees it.
    row = stored(dataset_dir, rid)
    assert (row.label, row.annotator) == ("open", ANNOTATOR) and row.labelled_at == rec["labelled_at"]


def test_label_null_clears_a_label(client, dataset_dir):
    rid = state(client)["records"][0]["id"]
    client.post("/api/label", json={"id": rid, "label": "closed"})
    assert client.post("/api/label", json={"id": rid, "label": None}).status_code == 200
    assert stored(dataset_dir, rid).label is None


def test_labels_outside_the_class_list_are_rejected_with_a_clear_message(client, dataset_dir):
    rid = state(client)["records"][0]["id"]
    for bad in ["ajar", "OPEN", "", 1, ["open"], {"x": 1}]:
        resp = client.post("/api/label", json={"id": rid, "label": bad})
        assert resp.status_code == 400, bad
        assert resp.json()["error"] == f"label {bad!r} is not one of the classes ['closed', 'open']"
    assert stored(dataset_dir, rid).label is None


def test_malformed_label_requests_are_rejected(client, dataset_dir):
    rid = state(client)["records"][0]["id"]
    cases = [
        ({"id": "1", "label": "open"}, 400, "id='1'"),
        ({"id": True, "label": "open"}, 400, "id=True"),
        ({"id": rid}, 400, "label: missing"),
        ({"ids": [], "label": "open"}, 400, "ids:"),
        ({"ids": [rid, "x"], "label": "open"}, 400, "ids[]='x'"),
        ({"id": 99999, "label": "open"}, 404, "no record with id 99999"),
    ]
    for body, status, message in cases:
        resp = client.post("/api/label", json=body)
        assert resp.status_code == status, body
        assert message in resp.json()["error"], body
    resp = client.post("/api/label", content=b"id=1&label=open", headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415  # a cross-site form cannot send JSON, so it cannot label
    resp = client.post("/api/label", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]
    resp = client.post("/api/label", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    resp = client.post("/api/label", content=b" " * 300_000, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert client.get("/api/label").status_code == 405
    assert stored(dataset_dir, rid).label is None


def test_grid_labels_many_records_in_one_request(client, dataset_dir):
    ids = [r["id"] for r in state(client)["records"][:5]]
    resp = client.post("/api/label", json={"ids": ids, "label": "closed"})
    assert resp.status_code == 200
    assert [r["label"] for r in resp.json()["records"]] == ["closed"] * 5
    with Dataset.open(dataset_dir) as ds:
        assert [ds.get(i).label for i in ids] == ["closed"] * 5


def test_grid_request_with_an_unknown_id_writes_nothing(client, dataset_dir):
    ids = [r["id"] for r in state(client)["records"][:3]]
    resp = client.post("/api/label", json={"ids": [*ids, 99999], "label": "open"})
    assert resp.status_code == 404
    with Dataset.open(dataset_dir) as ds:
        assert [ds.get(i).label for i in ids] == [None] * 3


def test_undo_reverts_the_latest_labels_of_this_annotator(client, dataset_dir):
    a, b, c = (r["id"] for r in state(client)["records"][:3])
    client.post("/api/label", json={"id": a, "label": "open"})
    client.post("/api/label", json={"id": a, "label": "closed"})
    client.post("/api/label", json={"ids": [b, c], "label": "open"})
    resp = client.post("/api/undo", json={"count": 2})  # a grid keystroke is undone as one action
    assert resp.status_code == 200
    assert sorted(r["id"] for r in resp.json()["records"]) == sorted([b, c])
    assert stored(dataset_dir, b).label is None and stored(dataset_dir, c).label is None
    (rec,) = client.post("/api/undo", json={}).json()["records"]
    assert rec["id"] == a and rec["label"] == "open"  # back to the previous label, not to nothing
    client.post("/api/undo", json={})
    assert stored(dataset_dir, a).label is None
    assert client.post("/api/undo", json={}).json()["records"] == []  # nothing left
    assert client.post("/api/undo", json={"count": 0}).status_code == 400


def test_undo_leaves_other_annotators_labels_alone(client, dataset_dir):
    a = state(client)["records"][0]["id"]
    with Dataset.open(dataset_dir) as ds:
        ds.set_label(a, "open", "colleague")
    assert client.post("/api/undo", json={}).json()["records"] == []
    assert stored(dataset_dir, a).label == "open"


def test_index_is_backed_up_once_before_the_first_write(client, dataset_dir):
    backups = dataset_dir / "backups"
    state(client)
    client.get("/api/image/1")
    assert not backups.exists() or not list(backups.iterdir())  # reading writes nothing
    ids = [r["id"] for r in state(client)["records"][:3]]
    for i in ids:
        client.post("/api/label", json={"id": i, "label": "closed"})
    (backup,) = backups.iterdir()
    with Dataset.open(dataset_dir) as ds:
        assert ds.get(ids[0]).label == "closed"
    # The backup holds the index as it was before this session's first label.
    import sqlite3

    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT COUNT(*) FROM records WHERE label IS NOT NULL").fetchone()[0] == 0


# ---- region of interest ------------------------------------------------------------------------------
def test_roi_is_saved_in_the_dataset_and_can_be_cleared(client, dataset_dir):
    resp = client.post("/api/roi", json={"roi": [100, 20, 220, 170]})
    assert resp.status_code == 200 and resp.json()["roi"] == [100, 20, 220, 170]
    with Dataset.open(dataset_dir) as ds:
        assert ds.roi == (100, 20, 220, 170)
    assert state(client)["roi"] == [100, 20, 220, 170]
    assert client.post("/api/roi", json={"roi": None}).json()["roi"] is None
    with Dataset.open(dataset_dir) as ds:
        assert ds.roi is None


def test_bad_rois_are_rejected(client, dataset_dir):
    for bad in [[1, 2, 3], [10, 10, 5, 20], [0, 0, 0, 10], [-1, 0, 10, 10], [0, 0, 1.5, 10], "0,0,10,10",
                [0, 0, True, 10], [0, 0, 10, 1 << 20]]:
        resp = client.post("/api/roi", json={"roi": bad})
        assert resp.status_code == 400, bad
        assert resp.json()["error"].startswith("roi "), bad  # names the field and the rule it breaks
    assert client.post("/api/roi", json={}).status_code == 400
    with Dataset.open(dataset_dir) as ds:
        assert ds.roi is None


# ---- the rest ----------------------------------------------------------------------------------------
def test_quit_replies_then_asks_the_server_to_stop(client):
    resp = client.post("/api/quit", json={})
    assert resp.status_code == 200 and resp.json() == {"ok": True, "stopping": True}
    assert client.quit_calls == [1]


def test_requests_for_other_host_names_are_refused(client):
    # DNS rebinding: a web page on evil.example resolving to 127.0.0.1 must not reach the API.
    resp = client.get("/api/state", headers={"host": "evil.example"})
    assert resp.status_code == 400
    assert client.post("/api/label", json={"id": 1, "label": "open"}, headers={"host": "evil.example:80"}).status_code == 400
    assert client.get("/api/state", headers={"host": "localhost:8765"}).status_code == 200


def test_new_frames_from_a_collector_appear_in_the_state(client, dataset_dir):
    from tests.annotate.helpers import add_frames

    assert state(client)["progress"]["total"] == 30
    with Dataset.open(dataset_dir) as ds:
        new = add_frames(ds, 30, 2)
    st = state(client)
    assert st["progress"]["total"] == 32 and {r["id"] for r in st["records"]} >= set(new)
