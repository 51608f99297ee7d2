# dfdetect developer commands. `make setup` is idempotent: a second run only checks a stamp file.
PYTHON ?= python3
VENV ?= .venv
# torch first, so pip does not pick a build for us; users with another CUDA set their own pair.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# cpu → onnxruntime; use EXTRAS=gpu,dev for onnxruntime-gpu (the two can't be installed together)
EXTRAS ?= cpu,dev
BIN := $(VENV)/bin
export WANDB_MODE ?= offline

.PHONY: setup test lint demo starter-model clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# onnxruntime-node for the Node consumer test (tests/js). --ignore-scripts: its install script fetches
# GPU libraries from outside the registry; the CPU binary ships inside the package.
node_modules/.installed: package.json package-lock.json
	if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Node consumer test will be skipped"; fi
	mkdir -p node_modules && touch $@

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q tests

demo: setup
	$(BIN)/dfdetect demo --out runs/demo

# Rebuild the shipped starter model (dfdetect/model/starter, a package resource) from the bundled real faces
# (CPU: see dfdetect/model/starter/MODEL_CARD.md). With the development set of real deepfakes built in
# DEVSET (benchmarks/realworld_bench.py), the new model replaces the shipped one only if its video AUC on
# the set's val part is not lower; the test part is measured for the model card.
DEVSET ?= runs/devset
starter-model: setup
	@gate=""; if [ -d "$(DEVSET)" ]; then \
	  $(BIN)/python benchmarks/realworld_bench.py --devset $(DEVSET) --part val --labels-only --out runs/starter/dev-val && \
	  $(BIN)/python benchmarks/realworld_bench.py --devset $(DEVSET) --part test --labels-only --out runs/starter/dev-test && \
	  gate="--gate-labels runs/starter/dev-val/labels.csv --report-labels runs/starter/dev-test/labels.csv"; \
	else echo "no development set in $(DEVSET): building without the real-deepfake gate"; fi; \
	$(BIN)/python -m dfdetect.recipes.starter --work runs/starter --out dfdetect/model/starter $$gate

clean:
	rm -rf runs .pytest_cache .ruff_cache
