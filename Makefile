# The two commands a user needs: `make run` and `make test`. Both build .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# GPU=1 (`make run GPU=1`, `make test GPU=1`): TensorFlow with NVIDIA's CUDA libraries instead of the CPU-only
# wheel. The venv's stamp names its build, so switching rebuilds it and the two TensorFlow wheels never mix.
REQUIREMENTS := $(if $(filter 1,$(GPU)),requirements-gpu.txt,requirements.txt)
VENV_STAMP := $(VENV)/.python-$(PYVER)$(if $(filter 1,$(GPU)),-gpu)

.PHONY: run test lint bench browser clean

# A venv is stale when it was built by another python or TensorFlow build, or before the requirements changed.
$(VENV_STAMP):
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	touch $@

# The project itself goes in editable mode, for the `simpsons` command: pip builds it with setuptools from
# PyPI (build isolation), since venvs of Python 3.12 and later come without setuptools.
$(VENV)/.run-deps: $(REQUIREMENTS) pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install -q -r $(REQUIREMENTS)
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-deps: $(REQUIREMENTS) requirements-dev.txt $(VENV)/.run-deps
	$(PY) -m pip install -q -r $(REQUIREMENTS) -r requirements-dev.txt
	touch $@

run: $(VENV)/.run-deps
	$(PY) -m streamlit run app.py $(if $(SIMPSONS_ADDRESS),--server.address $(SIMPSONS_ADDRESS))

browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(VENV)/.dev-deps browser lint
	$(PY) -m pytest

bench: $(VENV)/.dev-deps
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
