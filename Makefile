# The two commands of the README: `make book` (build the whole book, executing every page) and
# `make test` (package tests, doctests and nbval over every reference notebook). Each creates the
# virtual environment .venv and installs the pinned requirements on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: book test test-site bench refresh pins clean

$(STAMP): requirements.txt code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e ./code
	touch $(STAMP)

# One thread per kernel, as in `make test` and `make refresh`: the printed numbers are those of the
# reference notebooks, and small tensor operations do not fight over the cores.
book: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going .
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadfile

# Browser tests of the built book in Debian's Chromium (installed here if missing; needs root).
test-site: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/python -m pytest --site tests/site -p no:xdist

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

refresh: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python tests/refresh_notebooks.py

# After `pip install` of a new dependency into .venv: re-pin requirements.txt from the environment.
pins:
	$(BIN)/python tools/pin_requirements.py

clean:
	rm -rf _build
