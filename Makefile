# ecdiff — every user-facing command. `make test` and `make demo` set everything up on a fresh
# machine: a .venv at the repository root with the exact pins of requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ecdiff-installed
PYTEST_ARGS ?=

.PHONY: setup test demo models lock clean help

help:
	@echo "make demo    set up, then run the end-to-end demo"
	@echo "make test    set up, then run the whole test suite"
	@echo "make setup   create .venv and install ecdiff with pinned dependencies"
	@echo "make models  retrain the toy-world models into models/ (resumable; about 2 h on 2 CPU cores)"
	@echo "make lock    rewrite requirements.lock from the current .venv"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

# pytest exits 5 when it collected nothing: for us that means the suite went missing, so fail.
test: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing on purpose" >&2; exit 1; fi; \
	exit $$rc

demo: $(STAMP)
	$(VENV)/bin/ecdiff demo

# Retrains every shipped toy-world model from scratch (resumes an interrupted run: stamps and
# checkpoints live in the gitignored .cache/toyworld-training/), then measures them and writes the cards.
models: $(STAMP)
	$(PY) -m ecdiff.models.training

lock: $(STAMP)
	@{ sed -n '1,2p' requirements.lock; echo "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')"; \
	  echo "setuptools==$$($(PY) -c 'import setuptools; print(setuptools.__version__)')"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(torch|setuptools)=='; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
