# The two commands: `make demo` trains on bundled real data, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev,train,mpi]'
	touch $@

$(VENV)/.train: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[train]'
	touch $@

demo: $(VENV)/.train
	$(BIN)/numtorch train

lint: $(VENV)/.dev
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks --out benchmarks/results

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
