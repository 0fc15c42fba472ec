# The handful of commands a newcomer needs. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test unit e2e lint fmt dev-cluster-up dev-cluster-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the main job: dev cluster + nodes + scheduler + examples, then print placements.
demo: install
	$(BIN)/workload-scheduler demo

## Run every test: unit tests, then end-to-end tests on a real kube-apiserver + etcd.
test: install
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

e2e: install
	$(BIN)/pytest tests/e2e

lint: install
	$(BIN)/ruff check scheduler tests
	$(BIN)/ruff format --check scheduler tests
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format scheduler tests
	$(BIN)/ruff check --fix scheduler tests

dev-cluster-up: install
	$(BIN)/workload-scheduler dev-cluster up --state-dir .dev-cluster

dev-cluster-down: install
	$(BIN)/workload-scheduler dev-cluster down --state-dir .dev-cluster

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .dev-cluster
