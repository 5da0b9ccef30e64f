# BittieTasks: `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

# The embedded default: SQLite under var/, in-memory channel layer, eager
# Celery, console email, offline services, demo data.
RUN_ENV := DJANGO_SETTINGS_MODULE=marketplace.settings DJANGO_DEBUG=true DEMO_MODE=true
TEST_ENV := DJANGO_SETTINGS_MODULE=marketplace.settings_test
# pytest exits 5 when it collects nothing: run each group only when it has files.
BROWSER_TESTS := $(wildcard tests/browser/test_*.py)
BENCHES := $(wildcard bench/bench_*.py)

.PHONY: run test test-fast test-browser lint bench check-services chromium deploy-check clean help

help:
	@echo "make run     - set up and start the site on http://$(HOST):$(PORT) (SQLite, demo data)"
	@echo "make test    - set up and run the whole suite (PostgreSQL, Redis, Chromium)"
	@echo "make lint    - ruff and the missing-migrations check"
	@echo "make bench   - benchmarks (slow; figures go to docs/PERFORMANCE.md)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements-dev.txt
	touch $(VENV)/.run-installed $@

run: $(VENV)/.run-installed
	@mkdir -p var
	@$(RUN_ENV) $(PY) manage.py migrate --noinput -v 0
	@$(RUN_ENV) $(PY) manage.py seed_demo
	@echo ""
	@echo "Open http://$(HOST):$(PORT)/ and log in with a demo account above, or sign up:"
	@echo "emails (with their verification links) are printed here. Ctrl+C stops."
	@# The beat schedule (auto-approval, payouts after the hold, digests...) runs
	@# in a second process: make run has no Celery worker or beat.
	@env $(RUN_ENV) $(PY) manage.py run_schedule --tick 15 > var/schedule.log 2>&1 &
	@# exec: Ctrl+C and kill reach uvicorn itself, not a shell around it.
	@exec env $(RUN_ENV) SITE_URL=http://$(HOST):$(PORT) $(VENV)/bin/uvicorn marketplace.asgi:application \
		--host $(HOST) --port $(PORT) --lifespan off --ws-max-size 65536

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "Installing Chromium from Debian for the browser tests..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium is missing. Install it with: sudo apt-get install -y chromium"; exit 1; \
		fi; \
	fi

check-services: $(VENV)/.dev-installed
	@$(TEST_ENV) $(PY) manage.py check_services

# The non-browser suite runs in TEST_WORKERS processes (pytest-xdist; a whole
# module per process, as module fixtures expect). Each gets its own test
# database (test_<name>_gw0...) and Redis db (REDIS_URL's number + its index).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --durations=15

test: $(VENV)/.dev-installed chromium check-services
	$(TEST_ENV) $(PY) -m pytest --ignore=tests/browser -q $(PYTEST_PARALLEL)
	$(if $(BROWSER_TESTS),$(TEST_ENV) DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest tests/browser -q,@echo "No browser tests yet.")

test-fast: $(VENV)/.dev-installed check-services
	$(TEST_ENV) $(PY) -m pytest --ignore=tests/browser -q $(PYTEST_PARALLEL)

test-browser: $(VENV)/.dev-installed chromium check-services
	$(if $(BROWSER_TESTS),$(TEST_ENV) DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest tests/browser -q,@echo "No browser tests yet.")

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	@mkdir -p var
	@$(RUN_ENV) $(PY) manage.py makemigrations --check --dry-run >/dev/null || \
		(echo "Models changed without a migration: run manage.py makemigrations"; exit 1)

deploy-check: $(VENV)/.run-installed
	DJANGO_SECRET_KEY=$$(head -c 48 /dev/urandom | base64) DJANGO_ALLOWED_HOSTS=bittietasks.example \
		DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
		$(PY) manage.py check --deploy --fail-level WARNING

bench: $(VENV)/.dev-installed check-services
	$(if $(BENCHES),@for b in $(BENCHES); do echo "== $$b"; $(TEST_ENV) $(PY) $$b || exit 1; done,@echo "No benchmarks yet.")

clean:
	rm -rf var test-artifacts staticfiles
