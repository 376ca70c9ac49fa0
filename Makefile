# Top-level targets (CONVENTIONS 1). Each pattern has its own Makefile with the same verbs;
# the recipes they share are in pattern.mk.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include $(ROOT)/env.mk

PATTERNS := $(sort $(dir $(wildcard chapter*/*/pattern.toml)))

.PHONY: help setup models demo test lint fmt bench build_all requirements clean

help:  ## list the targets
	@grep -hE '^[a-z_]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV_STAMP) models  ## environment from Pipfile.lock, then the chapter-2 models (idempotent)

models: $(VENV_STAMP)  ## every pattern's models/ (and data/): trains only what is missing or stale
	@for pattern in $(PATTERNS); do $(MAKE) --no-print-directory -C $$pattern models || exit 1; done

demo: setup  ## the tour: train, start each pattern, send its requests, print a summary
	$(PYTHON) -m tests.support.demo

test: setup  ## every test suite, one pytest process per pattern; ends with `N passed, N failed`
	$(PYTHON) tests/support/run_tests.py $(TESTS)

lint: $(VENV_STAMP)  ## ruff (lint + format check) and mypy, pattern by pattern
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PYTHON) tests/support/run_mypy.py

fmt: $(VENV_STAMP)  ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup  ## every pattern's benchmark (bounded, loopback only); tables go into the READMEs
	@for pattern in $(PATTERNS); do \
		if [ -f $$pattern/locustfile.py ]; then $(MAKE) --no-print-directory -C $$pattern bench || exit 1; fi; \
	done

build_all:  ## docker images of every pattern (needs a Docker engine)
	@for pattern in $(PATTERNS); do $(MAKE) --no-print-directory -C $$pattern build || exit 1; done

requirements: $(VENV_STAMP)  ## re-export every requirements/*.txt (template skeleton too) from the lock
	@for file in $$(find chapter* -path '*/requirements/*.txt' -not -path '*/.venv/*' | sort); do \
		export_command=$$(sed -n 's/^# \(pipenv requirements .*\)/\1/p' $$file | head -1); \
		{ grep '^#' $$file; eval "python3 -m $$export_command"; } > $$file.new && mv $$file.new $$file; \
		echo "$$file: $$export_command"; \
	done

clean:  ## remove the environment and everything trained or written at run time
	rm -rf $(VENV) .test-results
	find chapter* -maxdepth 2 -type d \( -name models -o -name var -o -name data -o -name runs \) -prune -exec rm -rf {} +
