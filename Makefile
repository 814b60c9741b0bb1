# Two commands matter: `make run` (start the service on embedded defaults) and `make test`
# (the whole suite).  Each creates its own virtualenv in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/timbrado serve

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy core admin mail bot

test: lint typecheck
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit -q

bench: $(BIN)/.installed
	$(BIN)/python bench/jobs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
