# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   -- create .venv from the pinned requirements if missing, reproduce the paper, print results
#   make test   -- same bootstrap, then the test suite
#   make readme -- run every example of README.md and docs/*.md as written (minutes: the demo, the searches, the benchmarks)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dse-installed

.PHONY: demo test readme bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python sweeps/paper_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

readme: $(STAMP)
	$(BIN)/python tests/readme_runner.py

bench: $(STAMP)
	$(BIN)/python benchmarks/kernel_throughput.py

clean:
	rm -rf $(VENV) outputs multirun
