# geogrid's everyday commands. Each target runs scripts/setup first, which is quick
# when nothing changed, so a fresh checkout needs nothing but `make test` or `make demo`.
#
#   make setup   install what is missing, start the private PostgreSQL, migrate
#   make test    setup (with Chromium) and the test suite without slow tests;
#                extra pytest arguments: make test PYTEST_ARGS="-k codes -x"
#   make bench   setup and the benchmarks
#   make demo    setup, load the demo city once, print demo logins, serve the web app
#   make stop    stop the private PostgreSQL cluster
#   make lint    ruff

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: help setup test bench demo stop lint

help:
	@sed -n 's/^#   //p' Makefile

setup:
	scripts/setup

test:
	scripts/setup --browser
	$(VENV)/pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(VENV)/python -m benchmarks

demo: setup
	$(VENV)/geogrid demo build --commit --if-empty
	$(VENV)/geogrid demo users --commit
	$(VENV)/geogrid serve

stop:
	scripts/pgcluster stop

lint:
	@test -x $(VENV)/ruff || { echo "make lint: no $(VENV)/ruff; run make setup first" >&2; exit 1; }
	$(VENV)/ruff check .
