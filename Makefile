# Everything a fresh machine needs: `make serve` starts the service on intents/,
# `make serve-zh` on the Chinese intents/zh/ with the multilingual model,
# `make test` runs every check (format, lint, types, proto freshness, the deploy/ and
# proto/ checks, tests);
# `make test-fast` runs the tests that need no model (a fake encoder), without pulling it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve serve-zh test test-fast check model lint check-deploy check-proto proto-baseline bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

model: $(STAMP)
	$(BIN)/intent-router model pull --model minilm --if-missing
	$(BIN)/intent-router model pull --model minilm-int8 --if-missing
	$(BIN)/intent-router model pull --model use-multilingual --if-missing

serve: model
	$(BIN)/intent-router serve --intents intents --host 127.0.0.1 --port 50051

serve-zh: model
	$(BIN)/intent-router serve --intents intents/zh --model use-multilingual --host 127.0.0.1 --port 50051

lint: $(STAMP)
	$(BIN)/ruff format --check router tests bench
	$(BIN)/ruff check router tests bench
	$(BIN)/mypy

# deploy/: every manifest valid for the oldest Kubernetes the manifests need and the
# newest the schemas know, strictly (unknown fields fail; so does any warning but the
# two kinds that have no schema there: tests/test_deploy.py checks those); the Dockerfile
# with hadolint; both with checkov. deploy/ACCEPTED.md lists each accepted finding.
K8S_VERSIONS := 1.30.0 1.37.0
NO_SCHEMA    := -e "find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1 " \
                -e "find schema for kind Kustomization with api version kustomize.config.k8s.io/v1beta1 "
check-deploy: $(STAMP)
	@for v in $(K8S_VERSIONS); do \
	  out=$$($(BIN)/kubernetes-validate --strict --quiet -k $$v deploy/k8s/*.yaml 2>&1); rc=$$?; \
	  if [ $$rc -ne 0 ] || printf '%s\n' "$$out" | grep -v -e '^$$' $(NO_SCHEMA) | grep -q .; then \
	    printf '%s\n' "$$out"; exit 1; fi; \
	done; echo "kubernetes-validate --strict: deploy/k8s/*.yaml valid for $(K8S_VERSIONS)"
	$(BIN)/hadolint --config deploy/hadolint.yaml deploy/Dockerfile
	$(BIN)/checkov --config-file deploy/checkov.yaml

# the API contract: buf lint, and no breaking change against proto/baseline.binpb
check-proto: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/buf breaking proto --against proto/baseline.binpb

# deliberately: the proto as it stands becomes the contract `check-proto` holds it to
proto-baseline: $(STAMP)
	$(BIN)/buf build proto -o proto/baseline.binpb

test check: lint check-deploy check-proto model
	$(BIN)/pytest -q

# no `model` prerequisite: this lane must pass on a machine without the model
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not model"

bench: model
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
