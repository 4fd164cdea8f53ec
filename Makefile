# Every target creates what it needs on a fresh machine: a pinned uv in .tools/
# (when none is on PATH), the locked virtualenv in .venv/, a pinned helm in .tools/.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
STACK ?= dev
FORMAT ?= text
BASE ?= origin/main
# checkov (workflow and chart policy scans) runs isolated: uv tool run --from checkov==$(CHECKOV_VERSION)
CHECKOV_VERSION := 3.3.30
export CHECKOV_VERSION

UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
# Byte-compile the locked packages at install: pulumi-gcp is large, and without .pyc
# files (e.g. under PYTHONDONTWRITEBYTECODE) every preview/test run recompiles it.
export UV_COMPILE_BYTECODE := 1
RUN := $(UV) run --frozen --quiet

# Debian packages the test suite drives: the browser test's Chromium, the list-API benchmark's wrk.
SYSTEM_PACKAGES := chromium wrk

.PHONY: help setup system-deps test test-fast preview cost render preview-diff lint-workflows dev dev-reset dev-status dev-stop redrive demo helm clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock apps/*/pyproject.toml
	$(UV) sync --frozen --quiet
	touch $@

setup: .venv/.synced ## create the virtualenv from uv.lock (and fetch uv if missing)

system-deps: ## install the Debian packages the tests drive ($(SYSTEM_PACKAGES)) when missing (as root; else prints the command)
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "missing Debian packages:$$missing -- run: sudo apt-get update && sudo apt-get install -y$$missing" >&2; \
	fi

test: setup helm system-deps ## run the whole test suite (what CI runs)
	$(RUN) pytest

test-fast: setup ## the tests that start no server
	$(RUN) pytest -m "not slow and not e2e"

$(CURDIR)/.tools/bin/python:
	python3 -m venv $(CURDIR)/.tools

helm: $(CURDIR)/.tools/bin/python ## install the pinned, checksum-verified helm into .tools/bin (when none is on PATH)
	@$(CURDIR)/.tools/bin/python tools/install_helm.py

cost: setup ## monthly cost estimate of STACK from its offline plan (FORMAT=text|json; prices: environments/prices.yaml, usage: environments/STACK/usage.yaml)
	@$(RUN) python -m tools.cost --stack $(STACK) --format $(FORMAT)

render: setup helm ## write each release's manifests of STACK to build/rendered/<stack>/<release>.yaml (real helm template)
	@$(RUN) python -m tools.render --stack $(STACK)

preview: setup ## offline `pulumi preview` of STACK under the mock runtime (FORMAT=text|json; STACK=bootstrap: the bootstrap program)
	@$(RUN) python -m tools.preview --stack $(STACK) --format $(FORMAT)

preview-diff: setup helm ## Markdown plan diff of STACK (or STACK="dev prod") between git ref BASE and the working tree (resources + rendered manifests)
	@$(RUN) python -m tools.preview_diff $(foreach s,$(STACK),--stack $(s)) --base $(BASE)

lint-workflows: setup ## actionlint (+ shellcheck on run: blocks) and checkov on .github/workflows
	PATH="$(CURDIR)/.venv/bin:$$PATH" actionlint
	BC_SKIP_MAPPING=TRUE $(UV) tool run --from checkov==$(CHECKOV_VERSION) checkov --skip-download --framework github_actions -d .github/workflows --compact --quiet

dev: setup ## the whole platform on 127.0.0.1 (Postgres, Pub/Sub emulator, fake-gcs, files-api :8080, extractor, reconciler, sweep); Ctrl-C stops it
	@$(RUN) python -m tools.localdev up

dev-reset: setup ## delete the local platform's data (.local/); refused while make dev runs on it
	@$(RUN) python -m tools.localdev reset

dev-status: setup ## the running local platform: processes (restarts), readiness, pending-file backlog
	@$(RUN) python -m tools.localdev status

dev-stop: setup ## stop the running local platform (like Ctrl-C in its terminal)
	@$(RUN) python -m tools.localdev stop

redrive: setup ## with make dev running: move dead-lettered notifications back to the uploads topic
	@$(RUN) python -m tools.localdev redrive

demo: setup ## with make dev running: upload ../shared/samples through the API and print what was extracted
	@$(RUN) python -m tools.localdev demo

clean: ## remove build output (keeps .venv and local data)
	rm -rf build
