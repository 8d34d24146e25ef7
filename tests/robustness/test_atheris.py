"""A short coverage-guided run (atheris, when it is installed) of the JPEG decoder, with a fixed budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.robustness.conftest import SCALE
from tests.robustness.test_fuzz_jpeg import CORPUS, SEEDS

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris; wheels for x86-64 Linux)")

RUNS = int(600 * SCALE)


def test_coverage_guided_jpeg_fuzzing_finds_no_other_exception(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, data in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(b"\x00" + data)  # first byte: the scale
    for path in CORPUS:  # what earlier runs found stays in every run
        (corpus / path.name).write_bytes(path.read_bytes())
    script = Path(__file__).with_name("atheris_jpeg.py")
    proc = subprocess.run([sys.executable, str(script), str(corpus), f"-runs={RUNS}", "-seed=1", "-max_len=4096",
                           "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Done {RUNS} runs" in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))
