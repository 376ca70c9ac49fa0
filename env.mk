# The project environment (pipenv, in .venv at the repository root), shared by the top-level
# Makefile and pattern.mk.
ROOT ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
PYTHON := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.synced
PIPENV_VERSION := 2026.10.3
PIPENV_CATEGORIES := packages training torch bench dev-packages
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_PIPFILE := $(ROOT)/Pipfile
export PIPENV_VERBOSITY := -1

$(VENV_STAMP): $(ROOT)/Pipfile.lock
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet "pipenv==$(PIPENV_VERSION)"
	cd $(ROOT) && python3 -m pipenv sync --categories="$(PIPENV_CATEGORIES)"
	@touch $@
