# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRODUCTS ?= 2000
SIM_PORT ?= 8900
UI_PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo ui test test-slow lint format clean report bench reliability

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

# The browser libraries of the Great Expectations Data Docs, vendored into each site (quality/data_docs.py).
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster_project/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

SEED ?= 42
# Test processes: the suite mostly waits on HTTP, Postgres and subprocesses, so two workers suit two cores.
TEST_WORKERS ?= 2

## demo: drop a supplier feed, start the simulators, run the syncs into data/hub.duckdb, print rows and checks
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m simulators drop-files --dir data/landing/suppliers --seed $(SEED) --products $(PRODUCTS)
	$(PY) -m simulators run --port $(SIM_PORT) --products $(PRODUCTS) --seed $(SEED) -- $(PY) -m dagster_project.demo

CHURN_EVERY ?= 20

## ui: the simulators, churning a few records of every system every $(CHURN_EVERY) s, plus `dagster dev`
## (web UI on http://127.0.0.1:$(UI_PORT))
ui: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m dagster_project.stale_runs
	$(PY) -m simulators run --port $(SIM_PORT) --products $(PRODUCTS) --seed $(SEED) --churn-every $(CHURN_EVERY) -- \
		$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

## report: rebuild the data-quality report (data/quality/index.html) from the hub and print its path; opens nothing
report: install
	$(PY) -m quality.report

BENCH_PRODUCTS ?= 50000
BENCH_REPEAT ?= 3

## bench: the performance scenarios of docs/performance.md; prints a table, writes benchmarks/results/latest.json
bench: install
	$(PY) -m benchmarks --products $(BENCH_PRODUCTS) --repeat $(BENCH_REPEAT)

## test: install what is missing, lint, run the test suite but the tests marked slow (about 9 minutes)
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not slow"

## test-slow: only the long end-to-end tests (whole-graph syncs on both backends, SIGKILL loops,
## seeded fault mixes, the image build); .ci/run runs them after `make test`
test-slow: install
	$(PY) -m pytest -n $(TEST_WORKERS) -m slow

## reliability: only the fault-injection and bad-input tests (tests/reliability), ending with the fault x guarantee matrix
reliability: install
	$(PY) -m pytest tests/reliability

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf data .dagster_home
