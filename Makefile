# minimind: the book's commands. Every target works on a fresh machine that reaches only the
# package registries. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first and exactly: an unpinned torch pulls a multi-GB CUDA build.
# --no-compile: Python compiles a module's bytecode when it is first imported, so only the modules the book uses are
# compiled, not the tens of thousands that torch, transformers and jupyterlab ship.
# Elsewhere, point TORCH_INDEX at the CPU wheel index of your choice to keep it small.
TORCH_VERSION ?= 2.13.0
# Bytecode is written (on first import, into .venv and the checkout's __pycache__): a sandbox or CI image that exports
# PYTHONDONTWRITEBYTECODE=1 would otherwise make every notebook kernel and every child process compile torch from
# source again (2-3 s each, about 200 s of `make test` on 2 cores).
unexport PYTHONDONTWRITEBYTECODE
TORCH_INDEX ?=

.PHONY: help setup llama test sync lab demo quiz bench build docs docs-check docs-serve clean-venv

help:
	@echo "make setup   create .venv: torch==$(TORCH_VERSION) first, then the book and its tools (editable)"
	@echo "make llama   add the [llama] extra to .venv: llama-cpp-python, compiled from source (15+ min on 2 cores; never part of setup)"
	@echo "make test    notebooks clean + library/README in sync, every notebook runs as a test, then the docs site is built and checked in Chromium"
	@echo "make demo    tokenizer -> pretraining -> SFT -> DPO -> GRPO on the book's data (~3-5 min on 2 CPU cores), report in runs/demo"
	@echo "make lab     open the book in JupyterLab"
	@echo "make quiz    drill interview questions in the terminal"
	@echo "make bench   benchmarks side by side (ours vs transformers, continuous vs static batching, flash vs naive, MoE dispatch)"
	@echo "make sync    regenerate the library (nbdev-export), clean notebooks, regenerate README.md"
	@echo "make build   build the wheel into dist/"
	@echo "make docs    the docs site into _build/docs (reuses the notebooks executed by make test, else runs them)"
	@echo "make docs-check  make docs, then test the site in headless Chromium (installs it if missing)"
	@echo "make docs-serve  make docs, then serve it on http://127.0.0.1:8000 (search snippets need a server)"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-compile --upgrade pip
	$(BIN)/pip install -q --no-compile torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q --no-compile -e '.[dev]'
	@touch $@

# llama.cpp through llama-cpp-python: it builds llama.cpp with cmake and a C++ compiler, so it is an explicit step.
# CMAKE_BUILD_PARALLEL_LEVEL caps the compile jobs (default: all cores).
llama: setup
	$(BIN)/pip install -q -e '.[llama]'

sync: setup
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	$(BIN)/python tools/readme.py

# The notebooks run once: the test run saves them executed (conftest.py, MINIMIND_SAVE_EXECUTED) and the
# docs site is built from those copies, then checked in headless Chromium (tests/test_docs_site.py).
# Two pytest-xdist workers (TEST_WORKERS), one notebook or test file each at a time (--dist loadfile keeps a notebook's
# cells in order on one kernel), each with one torch thread so the two do not fight over the cores; the 25 slowest
# items are listed at the end.
# The browser tests at the end need Chromium: on a machine without it, tools/install_chromium.sh (apt-get: mostly
# download and unpack, 1-2 minutes) starts first and runs in the background while the venv installs and the notebooks
# run; its log is _build/install_chromium.log, and docs-check runs it again (a no-op once installed, its errors shown).
TEST_WORKERS ?= 2
test:
	@mkdir -p _build && rm -f _build/install_chromium.rc
	@(bash tools/install_chromium.sh > _build/install_chromium.log 2>&1; echo $$? > _build/install_chromium.rc) &
	$(MAKE) --no-print-directory setup
	$(BIN)/python tools/check_sync.py
	MINIMIND_SAVE_EXECUTED=_build/executed $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 nbs tests -q \
	  --ignore=tests/test_docs_site.py --ignore=tests/test_chat_page.py -n $(TEST_WORKERS) --dist loadfile --durations=25 \
	  --junitxml=_build/test-times.xml
	@for i in $$(seq 900); do [ -f _build/install_chromium.rc ] && break; sleep 1; done
	$(MAKE) --no-print-directory docs-check DOCS_FLAGS=--require-executed

# The site: chapters with their outputs, API reference, drills, errata, offline search and maths.
docs: setup
	$(BIN)/python docs/build.py --executed _build/executed --out _build/docs $(DOCS_FLAGS)

# The site and minimind serve's chat page as a browser sees them (installs Debian's chromium if missing; screenshots
# in _build/screenshots).
docs-check: docs
	bash tools/install_chromium.sh
	MINIMIND_DOCS_REQUIRED=1 $(BIN)/python -m pytest tests/test_docs_site.py tests/test_chat_page.py -q

demo: setup
	$(BIN)/minimind demo --out runs/demo
	@echo "open runs/demo/report.md; talk to the best stage's model: $(BIN)/minimind chat --model runs/demo/best"

quiz: setup
	$(BIN)/minimind quiz

bench: setup
	$(BIN)/minimind bench --json runs/bench.json

# Jupyter refuses to run as root (Docker's default user) unless told it is intended.
lab: setup
	$(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root)

# The built site over HTTP (search snippets need it: browsers block them on file://).
docs-serve: docs
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/docs 8000

build: setup
	$(BIN)/python -m build --wheel --outdir dist .

clean-venv:
	rm -rf $(VENV)
