# chatweb: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench loadtest clean messages compilemessages check-translations

# The Simplified Chinese catalogue: .po files are committed, .mo files are built from them.
LOCALE_PO := $(wildcard locale/*/LC_MESSAGES/*.po)
LOCALE_MO := $(LOCALE_PO:.po=.mo)
MAKEMESSAGES := $(PY) manage.py makemessages -l zh_Hans --no-location \
	--ignore=.venv --ignore=.venv-litellm --ignore=bench --ignore=tests --ignore=staticfiles --ignore=data \
	--ignore=test-artifacts --ignore=docs

$(VENV)/.installed-runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-runtime
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# LiteLLM's proxy, a real third-party gateway for tests/gateways/, in its own virtualenv:
# its dependencies (httpx 0.29, redis 8) conflict with ours. Rebuilt when the pin changes.
LITELLM_VENV := .venv-litellm
LITELLM_REQUIREMENTS := tests/gateways/litellm-requirements.txt
$(LITELLM_VENV)/.installed: $(LITELLM_REQUIREMENTS)
	test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet -r $(LITELLM_REQUIREMENTS)
	touch $@

## messages: extract every translatable string into locale/zh_Hans (then translate the new ones)
messages: $(VENV)/.installed-runtime
	DEBUG=1 $(MAKEMESSAGES) -d django
	DEBUG=1 $(MAKEMESSAGES) -d djangojs

## compilemessages: build the .mo catalogues the app reads (only those older than their .po)
compilemessages: $(LOCALE_MO)

%.mo: %.po
	msgfmt --check -o $@ $<

## check-translations: fail on a stale catalogue or an untranslated string (also run by the tests)
check-translations: $(VENV)/.installed-runtime
	DEBUG=1 $(PY) manage.py check_translations

## run: install, migrate, seed the catalogue and demo admin, serve on http://$(HOST):$(PORT)
run: $(VENV)/.installed-runtime compilemessages
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_catalogue
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo_admin
	@echo "chatweb on http://$(HOST):$(PORT)  (demo admin: admin / chatweb-demo)"
	DEBUG=$${DEBUG:-1} $(VENV)/bin/daphne -b $(HOST) -p $(PORT) --websocket_timeout -1 \
		chatweb.asgi:application

# axe-core for the browser accessibility test, from tests/browser/package-lock.json; without
# npm the test skips and says why.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null && touch $@; \
	else echo "npm not found: the axe-core accessibility test will skip"; fi

## test: lint, then the whole suite (SQLite + in-memory layer unless DATABASE_URL/REDIS_URL are set)
test: $(VENV)/.installed-dev $(LITELLM_VENV)/.installed compilemessages $(AXE)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: benchmark suite on real processes (~30 min; BENCH_QUICK=1 ~6 min); not part of test
bench: $(VENV)/.installed-dev
	$(PY) -c "import websockets, psutil" 2>/dev/null && test -x $(VENV)/bin/py-spy || \
		$(PY) -m pip install --quiet websockets psutil py-spy
	$(PY) -m bench.run

## loadtest: 200 users x 5 messages through two Daphne processes on PostgreSQL + Redis (own db, dropped)
loadtest: $(VENV)/.installed-dev
	$(PY) -c "import websockets" 2>/dev/null || $(PY) -m pip install --quiet websockets
	$(PY) -m bench.loadtest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(LITELLM_VENV) staticfiles .pytest_cache .ruff_cache
