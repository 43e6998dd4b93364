# The front door: `make app` and `make test` (both install into .venv when needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install app lab test lint bench examples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changed (idempotent and quick otherwise).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

app: install
	$(BIN)/workbench app

lab: install
	$(BIN)/jupyter lab notebooks/

test: install
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/generation.py

examples: install
	$(BIN)/python scripts/make_examples.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
