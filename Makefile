# minimind: the book's commands. Every target works on a fresh machine that reaches only the
# package registries. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first and exactly: an unpinned torch pulls a multi-GB CUDA build.
# Elsewhere, point TORCH_INDEX at the CPU wheel index of your choice to keep it small.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=

.PHONY: help setup test sync lab demo quiz build clean-venv

help:
	@echo "make setup   create .venv: torch==$(TORCH_VERSION) first, then the book and its tools (editable)"
	@echo "make test    notebooks clean + library/README in sync, then every notebook runs as a test"
	@echo "make demo    tokenizer -> pretraining -> SFT on the book's data (~5 min on 2 CPU cores), report in runs/demo"
	@echo "make lab     open the book in JupyterLab"
	@echo "make quiz    drill interview questions in the terminal"
	@echo "make sync    regenerate the library (nbdev-export), clean notebooks, regenerate README.md"
	@echo "make build   build the wheel into dist/"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

sync: setup
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	$(BIN)/python tools/readme.py

test: setup
	$(BIN)/python tools/check_sync.py
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 nbs tests -q

demo: setup
	$(BIN)/minimind demo --out runs/demo
	@echo "open runs/demo/report.md; talk to the model: $(BIN)/minimind chat --model runs/demo/sft/model"

quiz: setup
	$(BIN)/minimind quiz

lab: setup
	$(BIN)/jupyter lab nbs

build: setup
	$(BIN)/python -m build --wheel --outdir dist .

clean-venv:
	rm -rf $(VENV)
