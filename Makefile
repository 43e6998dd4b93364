# The front door: `make app` and `make test` (both install into .venv when needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install app lab test test-fast lint bench examples docs clean

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

# Everything but the tests marked slow (notebooks, browser, checkpoint replays): a minute or two.
test-fast: install
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2 -m "not slow"

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/generation.py

examples: install
	$(BIN)/python scripts/make_examples.py

# Read-only HTML copies of the notebooks, executed in full (WORKBENCH_FAST unset), offline (no CDN
# scripts), in docs/notebooks/NAME.html: what the studio's zoo links to. Not part of `make test`.
# `make docs FAST=1` runs the shortened notebooks instead; `make docs NOTEBOOKS="00_tour 01_phase"` some.
docs: install
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/python -m workbench.notebook.docs --out docs/notebooks \
		$(if $(FAST),--fast) $(NOTEBOOKS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
