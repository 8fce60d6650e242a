# hetero_qc — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# A bare `torch` pulls a several-GB CUDA build; machines without a GPU take the pinned CPU build first.
TORCH_CPU := torch==2.13.0
# Keeps glibc from returning large buffers to the OS between steps (no page faults on fresh tensors):
# measured in BENCHMARKS.md; used for the benchmarks and long jobs, never needed for correctness.
FAST_MALLOC := GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=4294967295

.DEFAULT_GOAL := help
.PHONY: help install test demo bench clean

help: ## List the targets, one line each
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install the package with its dev extras (CPU torch without a GPU)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: install ## Run the test suite
	$(PY) -m pytest -q

demo: install ## Main job: corrupt an embedded IXI scan with every artefact -> results/demo/
	$(VENV)/bin/hetero-qc demo

bench: install ## Time our artefacts against TorchIO's -> results/bench/corruption.json, BENCHMARKS.md
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc bench corruption

clean: ## Remove caches and the demo output (keeps .venv and committed results)
	rm -rf .pytest_cache results/demo .cache
