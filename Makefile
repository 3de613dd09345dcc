# Everything a fresh machine needs: `make serve` starts the service on intents/,
# `make serve-zh` on the Chinese intents/zh/ with the multilingual model,
# `make test` runs every check (format, lint, types, proto freshness, tests);
# `make test-fast` runs the tests that need no model (a fake encoder), without pulling it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve serve-zh test test-fast check model lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

model: $(STAMP)
	$(BIN)/intent-router model pull --model minilm --if-missing
	$(BIN)/intent-router model pull --model use-multilingual --if-missing

serve: model
	$(BIN)/intent-router serve --intents intents --host 127.0.0.1 --port 50051

serve-zh: model
	$(BIN)/intent-router serve --intents intents/zh --model use-multilingual --host 127.0.0.1 --port 50051

lint: $(STAMP)
	$(BIN)/ruff format --check router tests bench
	$(BIN)/ruff check router tests bench
	$(BIN)/mypy

test check: lint model
	$(BIN)/pytest -q

# no `model` prerequisite: this lane must pass on a machine without the model
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not model"

bench: model
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
