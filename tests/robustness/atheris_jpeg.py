"""Coverage-guided fuzzing of the edge JPEG decoder with atheris (libFuzzer): only JpegError may escape.

    .venv/bin/python tests/robustness/atheris_jpeg.py CORPUS_DIR -runs=5000 -seed=1   (libFuzzer options)

tests/robustness/test_atheris.py runs it with a fixed number of runs and seed JPEGs as the corpus.
"""

import sys

import atheris

with atheris.instrument_imports():
    from camlytics.edge import jpeg


def test_one_input(data: bytes) -> None:
    """Everything the edge does with a JPEG, at the scale the first byte picks."""
    scale = (1, 2, 4, 8)[data[0] % 4] if data else 1
    for call in (jpeg.info, lambda d: jpeg.decode_luma(d, scale), lambda d: jpeg.decode_rgb(d, scale),
                 lambda d: jpeg.decode_luma_region(d, scale, (0, 0, 3, 3))):
        try:
            call(data[1:])
        except jpeg.JpegError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
