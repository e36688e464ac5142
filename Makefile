# Voight developer commands. `make test` is the README's test command and what CI runs.
PY ?= python3
VENV ?= .venv
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/voight
REDIS_URL ?= redis://127.0.0.1:6379/0
export DATABASE_URL REDIS_URL

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
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/python -m bench
