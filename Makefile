# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create (or reuse) a virtual environment in .venv and install the project into it.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.camlytics-installed

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/camlytics demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --durations=15

bench: $(STAMP)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
