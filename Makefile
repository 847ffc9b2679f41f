# Two set-up commands: `make demo` and `make test`. Both install into .venv first.
# `make validate`: the tests marked `validate` (simulated banks living for weeks, real brokers and crashes at
# scale, 1,000+ generated requests; docs/performance.md "Test suite"), which `make test` leaves out; CI (.ci/run) runs both.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test validate test-fast lint bench clean i18n

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lifeloop demo --dir demo-workspace

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not validate"

validate: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m validate

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow and not spark and not validate"

# the web app's message catalogues (docs/web.md): extract msgids, merge them into zh_CN and en, compile the .mo files
WEB := src/lifeloop/web
i18n: $(STAMP)
	cd $(WEB) && ../../../$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
		-o locale/lifeloop.pot .
	$(VENV)/bin/pybabel update -i $(WEB)/locale/lifeloop.pot -d $(WEB)/locale -D lifeloop --no-fuzzy-matching \
		--ignore-obsolete
	$(VENV)/bin/pybabel compile -d $(WEB)/locale -D lifeloop --statistics

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

bench: $(STAMP)
	$(PY) bench/features.py
	$(PY) bench/simulate.py

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache
