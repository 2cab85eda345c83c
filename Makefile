# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LS_VENV ?= .venv-label-studio
LS_STAMP := $(LS_VENV)/.installed
LABEL_STUDIO_VERSION ?= 1.23.2

.PHONY: install demo test test-fast bench clean label-studio

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The test extra brings a setuptools that reads SPDX license strings (the
# packaging tests load pyproject.toml with this environment's setuptools).
# PyTorch runs the PyTorch backend tests: the "+cpu" pin takes a local CPU
# wheel and never lets pip fetch a CUDA build; without one those tests skip.
TORCH ?= torch==2.13.0+cpu

$(STAMP): $(BIN)/python pyproject.toml serving/pyproject.toml
	$(BIN)/pip install --quiet -e ./serving[ray] -e .[test]
	$(BIN)/pip install --quiet "$(TORCH)" \
	    || echo "$(TORCH) not installed: the PyTorch backend tests skip"
	touch $(STAMP)

install: $(STAMP)

# Label Studio gets its own virtual environment: its pins clash with
# TensorFlow's. Label Studio 1.23.2 does not pin sentry-sdk, and 3.0 refuses
# the options it starts with, so the server would not start. A failed install (no network) leaves no stamp, only the log;
# the integration test then skips and prints the log's last line.
$(LS_STAMP):
	-$(PYTHON) -m venv $(LS_VENV) >$(LS_VENV).log 2>&1 && \
	    $(LS_VENV)/bin/pip install --quiet label-studio==$(LABEL_STUDIO_VERSION) \
	    "sentry-sdk<3" \
	    >>$(LS_VENV).log 2>&1 && touch $(LS_STAMP)

label-studio: $(LS_STAMP)

# The kerasll commands keep TensorFlow's C++ start-up notices off the terminal
# themselves (kerasll_cli/notices.py); Python errors still show.
demo: install
	$(BIN)/kerasll demo --out demo-output

test: install label-studio
	$(BIN)/pytest

# The fast tier: no tests marked slow, ray or cifar (markers in setup.cfg).
test-fast: install
	$(BIN)/pytest -m "not slow and not ray and not cifar"

bench: install
	$(BIN)/python benchmarks/run.py --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) demo-output benchmarks/output $(LS_VENV) $(LS_VENV).log
