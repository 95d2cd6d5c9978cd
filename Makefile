# Every target bootstraps .venv on first use: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAGE  ?= dev

.PHONY: setup demo test bench package iam lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/safetycatch demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	@$(BIN)/python bench/bench.py

lint: $(STAMP)
	@$(BIN)/safetycatch lint policies

package: $(STAMP)
	@$(BIN)/python -m cli.build package $(STAGE)

iam: $(STAMP)
	@$(BIN)/python -m cli.build iam

clean:
	rm -rf $(VENV) build dist chalicelib/compiled_policies.json
