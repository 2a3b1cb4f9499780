# Portwarden developer commands. `make demo` installs and runs a local scan; `make check` gates a change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := docker-registry skopeo apache2-utils chromium chromium-driver wrk
STAMP := $(VENV)/.installed

.PHONY: install system-deps example demo lint typecheck test test-unit test-integration test-infra sam-check check bench bench-api bench-dashboard serve web-vendor clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The integration tests run Debian's docker-registry and skopeo on 127.0.0.1, and the dashboard's
# browser tests Debian's headless chromium through chromium-driver; bench/api_load.py loads the API
# with Debian's wrk.
system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

example: install
	$(BIN)/python examples/build_example.py examples/tiny
	$(BIN)/python examples/feeds/build_feeds.py

# A local scan of the example image with the embedded store: no network, no AWS account.
demo: example
	$(BIN)/portwarden image inspect oci-dir:examples/tiny
	$(BIN)/portwarden sbom oci-dir:examples/tiny
	$(BIN)/portwarden feeds sync --source osv=file://$(CURDIR)/examples/feeds/osv-all.zip \
	    --source debian=file://$(CURDIR)/examples/feeds/debian.json
	$(BIN)/portwarden scan oci-dir:examples/tiny

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: install system-deps
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install system-deps
	$(BIN)/python -m pytest -q tests/integration

test-infra: install
	$(BIN)/python -m pytest -q tests/infra

sam-check:
	bash scripts/sam-check.sh

check: lint typecheck test sam-check

bench: install
	$(BIN)/python bench/layer_read.py

bench-api: install system-deps
	$(BIN)/python bench/api_load.py

bench-dashboard: install
	$(BIN)/python bench/dashboard_render.py

serve: install
	$(BIN)/portwarden serve

# The dashboard's browser libraries (htmx, Chart.js) from the npm registry at the pinned versions; the
# copied files are committed, so run this only after changing scripts/web-vendor/package.json.
web-vendor:
	bash scripts/vendor-web.sh

clean:
	rm -rf $(VENV) .venv-sam .aws-sam .pytest_cache .mypy_cache .ruff_cache examples/tiny
