# voice-bridge — the two commands that matter:
#   make run    set up .venv with the embedded voice and start the server on 127.0.0.1:8765
#   make test   set up .venv with every extra and run the whole suite
# Install steps live here only; docker/ images call these targets (install-run, install-dev).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8765
# A CPU build of torch, installed before anything else so nothing pulls the CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
SOPRANO_SPEC ?= soprano-tts==0.2.0
EXTRAS_RUN ?= piper
EXTRAS_DEV ?= piper,rvc,soprano,discord,dev
PYTEST_ARGS ?=

.PHONY: run test install-run install-dev system-deps node-deps test-python test-node clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

$(VENV)/.run-stamp: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[$(EXTRAS_RUN)]'
	touch $@

# soprano-tts goes in with --no-deps: it declares gradio, fastapi, uvicorn and sounddevice,
# which it never imports for inference; the `soprano` extra lists what it really needs.
$(VENV)/.dev-stamp: pyproject.toml | $(PY)
	$(PIP) install --quiet '$(TORCH_SPEC)'
	$(PIP) install --quiet -e '.[$(EXTRAS_DEV)]'
	$(PIP) install --quiet --no-deps '$(SOPRANO_SPEC)'
	touch $@ $(VENV)/.run-stamp

install-run: $(VENV)/.run-stamp
install-dev: $(VENV)/.dev-stamp

run: install-run
	$(VENV)/bin/voice-bridge serve --host $(HOST) --port $(PORT)

# System packages the tests need (Debian): libopus0 for discord.py's Opus encoder, chromium for
# the demo page's headless browser test. Installed only when missing, with one apt-get update.
SYSTEM_PACKAGES := libopus0 chromium
system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libopus\.so\.0' || missing="$$missing libopus0"; \
	[ -n "$$VOICE_BRIDGE_CHROMIUM" ] || command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (install them with your package manager)"; exit 1; \
	  fi; \
	fi

# The Node client (clients/node, Node >= 20 and npm): `npm ci` from its lockfile, again only when
# the lockfile changes (npm ci starts from an empty node_modules, so the stamp goes with it).
NPM ?= npm
NODE_DIR := clients/node
$(NODE_DIR)/node_modules/.ci-stamp: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && $(NPM) ci --no-audit --no-fund
	touch $@

node-deps: $(NODE_DIR)/node_modules/.ci-stamp

# The Node client's tests start a real bridge with this venv's Python.
test-node: install-dev node-deps
	cd $(NODE_DIR) && VOICE_BRIDGE_PYTHON=$(abspath $(PY)) $(NPM) test

# node-deps: tests/test_demo_page.py drives Chromium with playwright-core from clients/node.
test-python: install-dev system-deps node-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: test-node test-python

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis $(NODE_DIR)/node_modules
