# make demo | make test | make lint | make env
# VENV (or MMUNSEG_VENV) chooses the virtual environment; default .venv here.
VENV ?= $(or $(MMUNSEG_VENV),.venv)
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env demo test lint

env:
	bash tools/setup_env.sh "$(VENV)"

demo: env
	PYTHON="$(PYTHON)" bash tools/demo.sh

test: env
	"$(PYTHON)" -m pytest tests $(PYTEST_ARGS)

lint: env
	"$(PYTHON)" -m flake8 mmunseg tools tests configs benchmarks projects
	"$(PYTHON)" -m isort --check-only --diff mmunseg tools tests benchmarks projects
	"$(PYTHON)" -m yapf --diff --recursive mmunseg tools tests benchmarks projects
