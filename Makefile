# The two commands: `make run` serves the service on SQLite; `make test` runs every check and
# the whole test suite on PostgreSQL, then on SQLite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput -v0
	COLLECTING_STATIC=true $(BIN)/python manage.py collectstatic --noinput -v0
	GUNICORN_BIND=$(HOST):$(PORT) $(BIN)/python manage.py bootstrap_demo
	@$(BIN)/python manage.py run_scheduler & scheduler=$$!; \
	  trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
	  GUNICORN_BIND=$(HOST):$(PORT) $(BIN)/gunicorn credits_project.wsgi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run -v1

test: lint
	scripts/ensure-debian-packages.sh chromium:chromium chromedriver:chromium-driver
	scripts/with-postgres.sh $(BIN)/pytest
	DATABASE_URL= $(BIN)/pytest

# Load tests with wrk against gunicorn, on PostgreSQL then SQLite; writes docs/benchmarks.md.
bench: $(VENV)/.dev-installed
	scripts/ensure-debian-packages.sh wrk:wrk
	scripts/with-postgres.sh $(BIN)/python bench/http_load.py
	DATABASE_URL= $(BIN)/python bench/http_load.py
	$(BIN)/python bench/report.py
	scripts/with-postgres.sh $(BIN)/python bench/ledger_pages.py
	scripts/with-postgres.sh $(BIN)/python bench/bulk_grant.py
	scripts/with-postgres.sh $(BIN)/python bench/schedules.py
	scripts/with-postgres.sh $(BIN)/python bench/console_pages.py

clean:
	rm -rf $(VENV) staticfiles
