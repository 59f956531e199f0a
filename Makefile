# genlab: the README's commands. `make demo` and `make test` work on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
STAMP   := $(VENV)/.installed

.PHONY: setup demo report-full test test-all lint bench bench-goals clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q -c constraints.txt torch==2.13.0
	$(PIP) install --disable-pip-version-check -q -c constraints.txt -e ".[dev,crosscheck,notebook,ray]"
	touch $(STAMP)

demo: setup  ## fetch the data the labs need, run every lab's quick config, write report/index.html
	$(BIN)/genlab data fetch alice gpt2 mnist rt glove minilm
	$(BIN)/genlab report --quick --reuse --out report

report-full: setup  ## every lab at its report's settings into report-full/ (hours; run again to continue after a stop)
	$(BIN)/genlab data fetch alice gpt2 mnist rt glove minilm
	$(BIN)/genlab report --full --out report-full

test: setup  ## the test suite (fast and CLI tests; `make test-all` adds the slow ones)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup  ## every test; the slow demo tests use the real datasets (fetched first)
	$(BIN)/genlab data fetch alice gpt2 mnist rt glove minilm
	GENLAB_TEST_REAL_DATA=1 $(BIN)/python -m pytest -q

lint: setup  ## ruff's checks and ruff format (line length 120): both must pass
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

bench: setup  ## every benchmark, one JSON object per line
	@for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

GOALS := runs/bench-goals
bench-goals: setup  ## the accuracy goals that take long (14 min on 2 cores): sentiment's best preset, latent few-label
	$(BIN)/genlab data fetch mnist rt glove minilm
	$(BIN)/python benchmarks/sentiment_ablation.py --cells best --seeds 0,1,2 --jobs 2 --out $(GOALS)/sentiment
	test -f $(GOALS)/latent/ae-full/summary.json || \
		$(BIN)/genlab latent ae --preset full --name ae-full --run-dir $(GOALS) --quiet
	$(BIN)/python benchmarks/latent_augment_sweep.py $(GOALS)/latent/ae-full --methods mlp,aug600_mlp8000_b2048

clean:
	rm -rf $(VENV) runs report .pytest_cache .ruff_cache
