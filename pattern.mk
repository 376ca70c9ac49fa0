# Recipes every pattern Makefile shares. A pattern Makefile sets nothing and writes:
#     include ../../pattern.mk
# then adds its own `models` recipe (and anything else only it has).
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include $(ROOT)/env.mk

PATTERN_DIR := $(CURDIR)
PATTERN_REL := $(patsubst $(ROOT)/%,%,$(PATTERN_DIR))
LAUNCHER := cd $(ROOT) && $(PYTHON) -m tests.support.launcher
JOBS := $(shell [ -f Procfile.jobs ] && sed -nE 's/^([a-z][a-z0-9_]*):.*/\1/p' Procfile.jobs)

.PHONY: help dev request test bench build run down deploy delete $(JOBS)

help:
	@echo "make dev | request | test | bench | models | build | run | down | deploy | delete"
	@[ -z "$(JOBS)" ] || echo "one-shot steps (Procfile.jobs): $(JOBS)"

dev: $(VENV_STAMP)  ## system services + jobs, then every Procfile process (honcho); Ctrl-C stops all
	$(LAUNCHER) dev $(PATTERN_REL)

# A pattern with its own `request` recipe (template_pattern: no process to send requests to)
# sets OWN_REQUEST := 1 before the include.
ifndef OWN_REQUEST
request: $(VENV_STAMP)  ## the sample requests of pattern.toml against a running `make dev`
	$(LAUNCHER) request $(PATTERN_REL)
endif

$(JOBS): $(VENV_STAMP)
	$(LAUNCHER) job $(PATTERN_REL) $@

test: $(VENV_STAMP)
	$(PYTHON) $(ROOT)/tests/support/run_tests.py $(ROOT)/tests/$(PATTERN_REL)

bench: $(VENV_STAMP)
	cd $(ROOT) && $(PYTHON) -m tests.support.bench $(PATTERN_REL)

# `make build DRY_RUN=1` prints the docker commands (with their tags) and runs none.
build:  ## every image of this pattern, tagged as pattern.toml says (needs a Docker engine)
	$(LAUNCHER) build $(PATTERN_REL) $(if $(DRY_RUN),--dry-run)

run:
	docker compose up --detach --wait

down:
	docker compose down --volumes

deploy:
	kubectl apply -k manifests/

delete:
	kubectl delete -k manifests/ --ignore-not-found
