# Voight developer commands. `make test` is the README's test command and what CI runs.
PY ?= python3
VENV ?= .venv
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/voight
REDIS_URL ?= redis://127.0.0.1:6379/0
export DATABASE_URL REDIS_URL
# xdist workers for `make test`; each gets its own test database (test_<name>_gwN) and its own
# Redis namespace (tests/conftest.py). Measured on the 2-core machine: 2, 3 and 4 workers all
# take ~3-3.5 min against ~9.5 min serial; 3 keeps a core busy while others wait on I/O.
# `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= 3

.PHONY: run test lint bench install

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run:
	$(PY) -m venv $(VENV) && $(VENV)/bin/pip install -q -e . && env -u DATABASE_URL -u REDIS_URL $(VENV)/bin/python manage.py serve

test: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal

lint: install
	$(VENV)/bin/ruff check .

# The hook benchmark drives its requests with wrk: installed here when apt-get can.
bench: install
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -q wrk >/dev/null; } || echo "wrk is not installed: the hook figures will be skipped"
	$(VENV)/bin/python -m bench
