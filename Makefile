# chatweb: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench loadtest clean

$(VENV)/.installed-runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-runtime
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

## run: install, migrate, seed the catalogue and demo admin, serve on http://$(HOST):$(PORT)
run: $(VENV)/.installed-runtime
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_catalogue
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo_admin
	@echo "chatweb on http://$(HOST):$(PORT)  (demo admin: admin / chatweb-demo)"
	DEBUG=$${DEBUG:-1} $(VENV)/bin/daphne -b $(HOST) -p $(PORT) --websocket_timeout -1 \
		chatweb.asgi:application

## test: lint, then the whole suite (SQLite + in-memory layer unless DATABASE_URL/REDIS_URL are set)
test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: benchmark suite on real processes (~10 min; BENCH_QUICK=1 ~2 min per backend); not part of test
bench: $(VENV)/.installed-dev
	$(PY) -c "import websockets, psutil, pyinstrument" 2>/dev/null || \
		$(PY) -m pip install --quiet websockets psutil pyinstrument
	$(PY) -m bench.run

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
