# crosspost — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CP     := $(BIN)/crosspost

.PHONY: demo test lint check i18n bench clean venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

## demo: migrate the embedded SQLite queue, enqueue the example posts, publish them once
demo: venv
	@if [ -f queue/crosspost.db ]; then fresh=; else fresh=1; fi; \
	$(CP) db upgrade && \
	if [ -n "$$fresh" ]; then $(CP) enqueue queue/*.md; \
	else echo "queue/crosspost.db exists: the example posts were enqueued before (rm queue/crosspost.db to start over)"; fi && \
	$(CP) daemon --once; rc=$$?; \
	$(CP) list; \
	echo; \
	echo "Published. Look at:"; \
	echo "  queue/site/index.html   the website's own archive (open it in a browser)"; \
	echo "  queue/site/feed.xml     the Atom feed"; \
	echo "  $(CP) show 1            one post, its deliveries and attempts"; \
	echo "  $(CP) status            queue depth, failures, daemons"; \
	exit $$rc

## test: the whole test suite (unit, contract, integration, acceptance)
test: venv
	$(BIN)/pytest

## lint: ruff and mypy --strict
lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

check: lint test

## i18n: extract messages, update the German catalogue, compile it
i18n: venv
	$(BIN)/pybabel extract --no-location --omit-header -k _ -k ngettext:1,2 -o src/crosspost/locale/crosspost.pot src/crosspost
	$(BIN)/pybabel update --no-fuzzy-matching --omit-header -D crosspost -d src/crosspost/locale -i src/crosspost/locale/crosspost.pot
	$(BIN)/pybabel compile -D crosspost -d src/crosspost/locale

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache queue/crosspost.db* queue/site
