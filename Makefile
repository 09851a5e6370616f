# The commands of the README's quick start: `make run` and `make test`; and `make demo`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export LADEBUCH_DATABASE_URL ?= sqlite:///var/ladebuch.sqlite3

.PHONY: run test install migrate demo bench lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	mkdir -p var
	$(BIN)/ladebuch migrate

run: migrate
	$(BIN)/ladebuch serve --welcome

# A month of a wallbox for two tenants on a fresh var/demo/ database: invoices and their files.
demo: install
	$(BIN)/ladebuch demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/ingest.py

lint: install
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check ledger api projections invoices --select E,F,W,I,B,UP --ignore E501,B905,UP017
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
