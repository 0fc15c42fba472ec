# The handful of commands a newcomer needs. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test unit e2e parity lint fmt bench bench-quick bench-biggang bench-preemption dev-cluster-up dev-cluster-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the main job: dev cluster + simulated nodes + scheduler + examples, print placements,
## then run an Indexed Job of 4 as one gang until it completes.
demo: install
	$(BIN)/workload-scheduler demo

## Run every test: unit tests, then end-to-end tests on a real kube-apiserver + etcd.
test: install
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

e2e: install
	$(BIN)/pytest tests/e2e

## The differential test against kube-scheduler v1.35, long: PARITY_EXAMPLES (300) examples
## with a random seed (printed; rerun with PARITY_SEED=<n>), every mismatch appended to
## PARITY_REPORT (.parity-mismatches.jsonl). About 3 s per example on 2 cores.
PARITY_EXAMPLES ?= 300
PARITY_REPORT   ?= .parity-mismatches.jsonl
parity: install
	PARITY_EXAMPLES=$(PARITY_EXAMPLES) PARITY_REPORT=$(PARITY_REPORT) \
	PARITY_SEED=$${PARITY_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	$(BIN)/pytest tests/e2e/test_parity.py -s

lint: install
	$(BIN)/ruff check scheduler devcluster tests bench
	$(BIN)/ruff format --check scheduler devcluster tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

fmt: install
	$(BIN)/ruff format scheduler devcluster tests bench
	$(BIN)/ruff check --fix scheduler devcluster tests bench

## Benchmark against the real kube-scheduler and a binding ceiling (docs/benchmarks.md).
## The full run (1,000 nodes, 10,000 pods per workload, 5 runs) takes about 95 minutes on 2 cores.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## A one-minute look at the same comparison on a small cluster.
bench-quick: install
	$(BIN)/python -m bench.run --nodes 24 --plain-pods 60 --gangs 5 --mixed-pods 60 --runs 1

## On the 1.37 control plane, against kube-scheduler v1.37: one gang of 2,000 with a rack
## topology key, fitting and unplaceable (~10 minutes), and gang preemption (~5 minutes).
bench-biggang: install
	$(BIN)/python -m bench.biggang $(BENCH_ARGS)

bench-preemption: install
	$(BIN)/python -m bench.preemption $(BENCH_ARGS)

dev-cluster-up: install
	$(BIN)/workload-scheduler dev-cluster up --state-dir .dev-cluster

dev-cluster-down: install
	$(BIN)/workload-scheduler dev-cluster down --state-dir .dev-cluster

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .dev-cluster .parity-mismatches.jsonl
