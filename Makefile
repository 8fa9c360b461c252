# Two entry points on a fresh machine (Python 3.11 + pip, nothing else installed):
#   make retrain   - run the retraining flow on the default data source
#   make test      - lint and run the default test suite
#   make stack-up / make stack-down - the local Prefect server, workers and deployments
# Both bootstrap a pinned uv into .tools/ and the locked environment into .venv/.

UV_VERSION := 0.13.8
PYTHON ?= python3
UV := .tools/bin/uv
ARGS ?=

.PHONY: retrain test bench lint clean stack-up stack-down gpu-worker

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled once here: every process the suite and the stack start (servers,
# workers, flow runs) would otherwise compile Prefect, pandas and TensorFlow from source
# again where bytecode is not written (PYTHONDONTWRITEBYTECODE).
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	touch $@

retrain: .venv/.synced
	$(UV) run --frozen lstm-pipeline retrain $(ARGS)

lint: .venv/.synced
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

test: lint
	$(UV) run --frozen pytest

stack-up: .venv/.synced
	$(UV) run --frozen python -m deployments.stack up $(ARGS)

stack-down: .venv/.synced
	$(UV) run --frozen python -m deployments.stack down $(ARGS)

# A worker for the gpu pool: the GPU environment (the locked gpu group: PyTorch with CUDA),
# the backend it trains with, what the machine offers (lstm-pipeline doctor), then the
# worker. PREFECT_API_URL names the server, PREFECT_API_AUTH_STRING signs in to it: doctor
# stops here, naming the variable, when the server refuses. On a machine without a usable
# GPU it runs all the same, and doctor says that training will run on the CPU.
GPU_BACKEND ?= torch
gpu-worker: $(UV)
	$(UV) sync --frozen --group gpu --compile-bytecode
	touch .venv/.synced  # synced, so other targets do not sync again without the gpu group
	KERAS_BACKEND=$(GPU_BACKEND) $(UV) run --frozen --no-sync lstm-pipeline doctor
	KERAS_BACKEND=$(GPU_BACKEND) $(UV) run --frozen --no-sync prefect worker start \
		--pool gpu --type process --name "gpu-$$(hostname)" $(ARGS)

bench: .venv/.synced
	$(UV) run --frozen python benchmarks/data_pipeline.py $(ARGS)

clean:
	rm -rf .venv .tools artifacts
