# crosspost — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CP     := $(BIN)/crosspost

.PHONY: demo test lint check i18n bench reliability clean venv

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
	$(CP) metrics collect && $(CP) report --year $$(date +%Y) --out queue/report; \
	echo; \
	echo "Published. Look at:"; \
	echo "  queue/site/index.html   the website's own archive (open it in a browser)"; \
	echo "  queue/site/feed.xml     the Atom feed"; \
	echo "  queue/report/index.html this year's evaluation report (crosspost report, docs/evaluation.md)"; \
	echo "  $(CP) show 1            one post, its deliveries and attempts"; \
	echo "  $(CP) status            queue depth, failures, daemons"; \
	exit $$rc

## test: the test suite (unit, contract, integration, acceptance, benchmark smoke run) and
## the reliability suites' short seeded set (tests/reliability without CROSSPOST_RELIABILITY;
## `pytest -m "not reliability"` leaves them out, `make reliability` runs the long set)
test: venv
	$(BIN)/pytest

## lint: ruff and mypy --strict
lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

check: lint test

## bench: the performance harness; writes bench/results/latest.{md,json}
bench: venv
	$(BIN)/python bench/run.py

## reliability: the long crash, fault, bad-input, secrets and storage run (tests/reliability);
## writes bench/results/reliability.{md,json} with its figures (make test runs the short one)
reliability: venv
	$(BIN)/python bench/reliability.py

## i18n: extract crosspost's and click's messages, merge them into the German catalogue, compile it
LOCALE    := src/crosspost/locale
CLICK_DIR  = $(shell $(BIN)/python -c 'import click, pathlib; print(pathlib.Path(click.__file__).parent)')

# Merges message templates: the first argument is written, the others are read in order.
define MERGE_POT
import sys
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
merged = Catalog(domain="crosspost")
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        for m in read_po(f):
            if m.id and m.id not in merged:
                merged[m.id] = m
with open(sys.argv[1], "wb") as f:
    write_po(f, merged, omit_header=True, no_location=True)
endef
export MERGE_POT

i18n: venv
	$(BIN)/pybabel extract -F $(LOCALE)/babel.cfg --no-location --omit-header -k ngettext:1,2 \
	    -o $(LOCALE)/crosspost-code.pot src/crosspost
	$(BIN)/pybabel extract --no-location --omit-header -k _ -k ngettext:1,2 \
	    -o $(LOCALE)/click.pot "$(CLICK_DIR)"
	$(BIN)/python -c "$$MERGE_POT" $(LOCALE)/crosspost.pot $(LOCALE)/crosspost-code.pot $(LOCALE)/click.pot
	$(BIN)/pybabel update --init-missing --no-fuzzy-matching --ignore-obsolete -l de -D crosspost \
	    -d $(LOCALE) -i $(LOCALE)/crosspost.pot
	$(BIN)/pybabel compile --statistics -D crosspost -d $(LOCALE)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache queue/crosspost.db* queue/site queue/report
