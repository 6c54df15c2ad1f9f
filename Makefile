# Two commands matter: `make demo` and `make test`. Everything else is a step they use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0          # the local CPU wheel; an unpinned torch pulls CUDA
	$(BIN)/pip install --quiet -e ".[finetune,dev,demo]"
	test -x $(VENV)-bridge/bin/mcp-proxy || { $(PY) -m venv $(VENV)-bridge && $(VENV)-bridge/bin/pip install --quiet "mcp-proxy==0.13.0"; }
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/warden demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/warden policy check
	$(BIN)/warden policy test
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/policy_decide.py
	$(BIN)/python bench/gateway_overhead.py
