# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install the Debian packages they need when missing (tools/system-deps.sh, through sudo when not
# root), create (or reuse) a virtual environment in .venv and install the project into it.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.camlytics-installed
# The pinned MicroPython source for the firmware (docs/firmware.md): this project's machines reach no
# GitHub, so it comes from the vendored archive beside the repository unless the environment names one.
CAMLYTICS_MICROPYTHON_SRC ?= $(wildcard $(CURDIR)/../shared/vendor/micropython-1.28.0-with-mbedtls-3.6.2.tar.xz)
export CAMLYTICS_MICROPYTHON_SRC
ARCH ?= all

.PHONY: demo test bench firmware system-deps clean-venv

system-deps:
	@bash tools/system-deps.sh

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: system-deps $(STAMP)
	$(VENV)/bin/camlytics demo

test: system-deps $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --durations=15

firmware: system-deps $(STAMP)
	$(VENV)/bin/camlytics firmware build --arch $(ARCH)

bench: $(STAMP)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
