# Two commands do all set-up on a fresh machine:
#   make run    serve Switchboard on http://127.0.0.1:8000 (SQLite, no Redis)
#   make test   run the whole test suite (PostgreSQL/Redis via DATABASE_URL/REDIS_URL)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The pages in Chinese: locale/*/LC_MESSAGES/django.po compiled to .mo files,
# build outputs (git-ignored) made by `make run` and `make test`. Debug mode:
# the commands read the settings, which need no secrets for them.
MSGFMT := /usr/bin/msgfmt
I18N_IGNORE := --ignore=.venv --ignore=.litellm-venv --ignore=node_modules --ignore=staticfiles
MANAGE_I18N := SWITCHBOARD_DEBUG=$${SWITCHBOARD_DEBUG:-1} $(BIN)/python manage.py
COMPILEMESSAGES := $(MANAGE_I18N) compilemessages --verbosity 0 $(I18N_IGNORE)

.PHONY: run test lint bench prod clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime $(MSGFMT)
	$(COMPILEMESSAGES)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py demo_setup --base-url http://$(HOST):$(PORT)
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium (never a Playwright download).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "The browser tests need Chromium at $(CHROMIUM)" >&2; exit 1; }
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium

# A font with Chinese glyphs, so that the browser tests' screenshots of the
# pages in Chinese show text rather than empty boxes.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

$(CJK_FONT):
	@command -v apt-get >/dev/null || { echo "The Chinese screenshots need a CJK font ($(CJK_FONT))" >&2; exit 1; }
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq fonts-wqy-microhei

# GNU gettext's msgfmt compiles the translations (Debian's gettext package).
$(MSGFMT):
	@command -v apt-get >/dev/null || { echo "Compiling the translations needs GNU gettext (msgfmt)" >&2; exit 1; }
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq gettext

# After marking new strings: update the .po files, then translate what
# tests/test_i18n.py reports as missing.
messages: $(VENV)/.runtime $(MSGFMT)
	$(MANAGE_I18N) makemessages --all --no-obsolete $(I18N_IGNORE) --ignore=tests

# The client tests drive the real Codex CLI and Claude Code: npm packages that
# carry their native binaries, pinned by tests/clients/package-lock.json. The
# stamp keeps npm (and the network) out of a run when the lockfile has not
# changed; `npm ci` starts from an empty node_modules, stamp included.
CLIENTS := tests/clients

$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	@command -v npm >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "The client tests need Node.js and npm" >&2; exit 1; }; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq nodejs npm; }
	cd $(CLIENTS) && npm ci --no-audit --no-fund --update-notifier=false --loglevel=error
	touch $@

# Debug mode supplies throwaway secret and encryption keys for the test run.
# The suite runs on TEST_WORKERS processes (pytest-xdist; 0: in this one).
# `--dist load` hands each worker its tests in collection order, which keeps
# pytest-django's order on every worker: tests in a transaction first, then
# those that commit (and empty the tables, migrations' seeded rows included).
TEST_WORKERS ?= 2
test: $(VENV)/.dev $(CHROMIUM) $(CJK_FONT) $(CLIENTS)/node_modules/.installed $(MSGFMT)
	$(COMPILEMESSAGES)
	SWITCHBOARD_DEBUG=$${SWITCHBOARD_DEBUG:-1} $(BIN)/python -m pytest \
	  -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# BENCH_ARGS passes options through, e.g. BENCH_ARGS="--compare litellm".
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The production topology on this machine (README: "Production topology"):
# uvicorn workers, a Celery worker and beat under honcho, against PostgreSQL
# and Redis. Refuses to start without DATABASE_URL, REDIS_URL and the keys.
prod: $(VENV)/.runtime
	HOST=$(HOST) PORT=$(PORT) deploy/prod.sh

clean:
	rm -rf $(VENV) db.sqlite3 var staticfiles
