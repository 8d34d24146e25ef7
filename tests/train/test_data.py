"""Training data: the split by time blocks and the preprocessing shared with the edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camlytics.store import Dataset
from camlytics.model.inputs import load_input
from camlytics.train.data import load_labelled, time_block_split


def test_time_block_split_holds_out_contiguous_time_per_class() -> None:
    rng = np.random.default_rng(0)
    ts = np.sort(rng.uniform(0, 86400, 200))
    y = (rng.random(200) < 0.2).astype(np.int64)
    train, val = time_block_split(ts, y, seed=2)
    assert not set(train) & set(val) and len(train) + len(val) == 200
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        held = np.isin(idx, val)
        assert 0.15 <= held.mean() <= 0.25
        run = np.flatnonzero(held)
        assert np.array_equal(run, np.arange(run[0], run[-1] + 1))  # one unbroken stretch of time
    assert not np.array_equal(val, time_block_split(ts, y, seed=3)[1])


def test_loaded_inputs_equal_the_edge_preprocessing(sim_dataset: Path) -> None:
    from camlytics.edge.preprocess import prepare

    data = load_labelled(sim_dataset, input_wh=(20, 24))
    assert data.x.shape == (30, 24, 20, 1) and data.x.dtype == np.uint8
    assert sorted(np.bincount(data.y).tolist()) == [14, 16]
    assert list(data.timestamps) == sorted(data.timestamps)
    with Dataset.open(sim_dataset) as ds:
        jpeg = ds.read_image(ds.get(data.record_ids[0]))
        assert ds.roi == data.spec.roi
    host = load_input(jpeg, data.spec)
    edge = np.frombuffer(bytes(prepare(jpeg, data.spec.model_meta())), np.uint8).reshape(host.shape)
    assert np.array_equal(host, data.x[0])
    # Pillow and the edge decoder use different IDCTs below 1/8 scale: a few grey levels at most.
    assert np.abs(host.astype(int) - edge.astype(int)).max() <= 8
