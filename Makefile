# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   -- create .venv from the pinned requirements if missing, reproduce the paper, print results and
#                  the next commands as they run from this shell
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
	@echo
	@echo "Next, from this shell (the commands live in $(BIN)):"
	@echo "  $(BIN)/dse study=paper-fig45-mixtral        # the paper's Fig. 4/5 study: a table, result.nc and a figure"
	@echo "  $(BIN)/dse list                             # every preset: models, systems, GPUs, tiers, links, studies"
	@echo "  $(BIN)/dse --help"
	@echo "or put them on PATH for this shell first, then call them by name:"
	@echo "  . $(BIN)/activate"
	@echo "  dse study=paper-fig45-mixtral"

test: $(STAMP)
	$(BIN)/python -m pytest

readme: $(STAMP)
	$(BIN)/python tests/readme_runner.py

bench: $(STAMP)
	$(BIN)/python benchmarks/kernel_throughput.py

clean:
	rm -rf $(VENV) outputs multirun
