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
PROFILE ?= cpu
RUN := $(FAST_MALLOC) $(VENV)/bin/python
.PHONY: help install test demo corruption-demo bench bench-train model train-long record-long reproduce-fig3 reproduce-fig4 \
	reproduce-fig5 reproduce-fig8 reproduce-damage reproduce-sites reproduce-calibration reproduce-normalisation \
	reproduce-norm-statistics reproduce-all clean

help: ## List the targets, one line each
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install the package with its dev extras (CPU torch without a GPU)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e ".[dev,wandb]"
	touch $@

test: install ## Lint (ruff), then run the test suite
	$(VENV)/bin/ruff check src tests experiments
	$(PY) -m pytest -q

demo: install ## Main job: QC report of the bundled demo scans with the shipped model -> results/qc-demo/
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc qc data/demo --out results/qc-demo

corruption-demo: install ## Corrupt an embedded IXI scan with every artefact -> results/demo/
	$(VENV)/bin/hetero-qc demo

bench: install ## Time our artefacts against TorchIO's -> results/bench/corruption.json, BENCHMARKS.md
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc bench corruption

bench-train: install ## Lightning step vs a bare PyTorch loop, inference per volume -> results/bench/train.json
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc bench train

model: install ## Train (or reuse) multitask_$(PROFILE) (or ARGS="--checkpoint C"), calibrate cut-offs, export to src/hetero_qc/shipped/
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc ship-model --profile $(PROFILE) $(ARGS)

LONG_EXPERIMENT ?= multitask_long
LONG := outputs/$(LONG_EXPERIMENT)
LONG_RECORD := results/training/$(LONG_EXPERIMENT)

train-long: install ## Train (or carry on) multitask_long (or LONG_EXPERIMENT=multitask_finetune) from its last.ckpt: run again to resume
	@if [ ! -f $(LONG)/checkpoints/last.ckpt ] && [ -f $(LONG_RECORD)/last.ckpt ]; then \
		mkdir -p $(LONG)/checkpoints $(LONG)/version_0 && cp $(LONG_RECORD)/last.ckpt $(LONG)/checkpoints/last.ckpt && \
		cp $(LONG_RECORD)/metrics.csv $(LONG)/version_0/metrics.csv && cp $(LONG_RECORD)/chunks.txt $(LONG)/chunks.txt && \
		echo "resuming from the committed $(LONG_RECORD)/last.ckpt (its metrics become version_0, joined by record-long)"; fi
	mkdir -p $(LONG) && echo "chunk started $$(date -u +%FT%TZ) code $$(git rev-parse HEAD)$$(git diff --quiet HEAD || echo +dirty)" >> $(LONG)/chunks.txt
	$(FAST_MALLOC) $(VENV)/bin/hetero-qc train experiment=$(LONG_EXPERIMENT)

record-long: install ## Copy $(LONG_EXPERIMENT)'s checkpoint, config, joined metrics and code version -> results/training/
	mkdir -p $(LONG_RECORD)
	$(PY) -c "from pathlib import Path; from hetero_qc.train import join_chunks; join_chunks(Path('$(LONG)'))"
	cp $(LONG)/config.yaml $(LONG)/metrics.csv $(LONG)/chunks.txt $(LONG)/split.json $(LONG_RECORD)/
	cp $(LONG)/checkpoints/last.ckpt $(LONG_RECORD)/last.ckpt.tmp && mv $(LONG_RECORD)/last.ckpt.tmp $(LONG_RECORD)/last.ckpt
	$(PY) -c "import torch; c = torch.load('$(LONG_RECORD)/last.ckpt', map_location='cpu', weights_only=True); print('global_step', c['global_step'])" > $(LONG_RECORD)/step.txt
	echo "recorded $$(date -u +%FT%TZ) from the checkpoint of $$(date -u -r $(LONG)/checkpoints/last.ckpt +%FT%TZ)" >> $(LONG_RECORD)/step.txt

# every figure: PROFILE=cpu|paper|long, CHECKPOINT= a model to score instead of the profile's, ARGS= more options
FIGURE_ARGS = --profile $(PROFILE) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(ARGS)

reproduce-fig3: install ## Fig 3: sigma vs error over 41 noise levels -> results/fig3/ (PROFILE=cpu|paper)
	$(RUN) experiments/fig3.py $(FIGURE_ARGS)

reproduce-fig4: install ## Fig 4: sigma of clean vs artefacted test scans, AUROC -> results/fig4/
	$(RUN) experiments/fig4.py $(FIGURE_ARGS)

reproduce-fig5: install ## Fig 5 and 7: map panels -> results/fig5/, results/fig7/
	$(RUN) experiments/fig5.py $(FIGURE_ARGS)

reproduce-fig8: install ## Fig 8: partial noise raises sigma_r, not sigma_s -> results/fig8/
	$(RUN) experiments/fig8.py $(FIGURE_ARGS)

reproduce-damage: install ## sigma_r/sigma_s against the damage done, verdicts -> results/damage/ (CHECKPOINT=, default: shipped; ARGS= more options)
	$(RUN) experiments/damage.py $(FIGURE_ARGS)

reproduce-sites: install ## Other sites and scanners (../shared/data/other-sites, read in place) -> results/sites/
	$(RUN) experiments/sites.py $(FIGURE_ARGS)

reproduce-normalisation: install ## What one corruption does to the whole scan's scale, per intensity anchor -> results/normalisation/
	$(RUN) experiments/normalisation.py $(FIGURE_ARGS)

reproduce-norm-statistics: install ## Does noise outside the brain reach the cortex through the instance norms? -> results/norm_statistics/
	$(RUN) experiments/norm_statistics.py $(FIGURE_ARGS)

reproduce-calibration: install ## Beyond the paper: sparsification, UCE, coverage, sigma scaling -> results/calibration/
	$(RUN) experiments/calibration.py $(FIGURE_ARGS)

reproduce-all: reproduce-fig3 reproduce-fig4 reproduce-fig5 reproduce-fig8 reproduce-damage reproduce-calibration ## Every figure

clean: ## Remove caches and the demo output (keeps .venv and committed results)
	rm -rf .pytest_cache results/demo .cache
