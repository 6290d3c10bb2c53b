# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -c "import sys, crcmod; sys.exit(0 if sys.modules['crcmod.crcmod']._usingExtension else 'crcmod C extension did not build')"
	touch $(STAMP)

## run the main job: the reference demonstration
run: $(STAMP)
	$(PY) -m ground mission

## run the whole test suite (unit, simulated-time and real pseudo-terminal tests)
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

## benchmarks: ratios against peers measured in the same run
bench: $(STAMP)
	$(PY) -m tests.benchmarks

clean:
	rm -rf $(VENV) run out .pytest_cache .hypothesis *.egg-info
