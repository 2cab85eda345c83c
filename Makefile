# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml serving/pyproject.toml
	$(BIN)/pip install --quiet -e ./serving[ray] -e .[test]
	touch $(STAMP)

install: $(STAMP)

# TensorFlow's C++ start-up notices are silenced; Python errors still show.
demo: install
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/kerasll demo --out demo-output

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/run.py --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) demo-output benchmarks/output
