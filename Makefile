# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRODUCTS ?= 2000
SIM_PORT ?= 8900
UI_PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo ui test lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster_project/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

SEED ?= 42

## demo: drop a supplier feed, start the simulators, run the syncs into data/hub.duckdb, print rows and checks
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m simulators drop-files --dir data/landing/suppliers --seed $(SEED) --products $(PRODUCTS)
	$(PY) -m simulators run --port $(SIM_PORT) --products $(PRODUCTS) --seed $(SEED) -- $(PY) -m dagster_project.demo

## ui: the simulators plus `dagster dev` (web UI on http://127.0.0.1:$(UI_PORT))
ui: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m simulators run --port $(SIM_PORT) --products $(PRODUCTS) --seed $(SEED) -- \
		$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

## test: install what is missing, lint, run the whole suite
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf data .dagster_home
