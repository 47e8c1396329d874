# mlops-operator. Every target runs the idempotent set-up it needs first (hack/setup.sh),
# so `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY      := .venv/bin/python
CACHE   := $(or $(MLOPS_CACHE_DIR),$(HOME)/.cache/mlops-operator)
BIN     := $(CACHE)/bin
export PATH := $(CURDIR)/.venv/bin:$(BIN):$(PATH)
PYTEST  := $(PY) -m pytest
PHASE   := hack/phase.sh
# nothing started here reports usage off this machine (MLflow's client and server, DVC)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: help setup setup-python setup-binaries demo demo-down test test-unit test-integration test-chaos \
        lint fmt run cluster-up cluster-down cluster-reset crds pipelines bench bench-runtime \
        bench-reconcile bench-memory bench-canary bench-shadow bench-clients images constraints docs kind-up kind-down kind-load deploy e2e

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: ## install everything (Python env, Go-built binaries, Debian packages); idempotent
	@$(PHASE) setup hack/setup.sh
setup-python:
	@hack/setup.sh python
setup-binaries:
	@$(PHASE) binaries hack/setup.sh binaries

demo: setup ## the main job: local cluster + MLflow + operator + examples, then the loop
	@$(PY) hack/demo.py up

demo-down: setup-python ## stop what `make demo` started
	@$(PY) hack/demo.py down

test: setup ## everything CI runs: lint, unit, images, integration (with the real-node tests)
	@$(PHASE) lint $(MAKE) --no-print-directory lint
	@$(PHASE) unit $(PYTEST) -m unit -q
	@$(PHASE) images hack/setup.sh images
	@$(PHASE) integration $(PYTEST) -m "integration and not slow" -q --durations=30

test-chaos: setup ## every fault-injection scenario (-m chaos), test_chaos.py at full size: 1,000 generated objects from a fresh seed (printed), 60 objects rolled under 9 kills, 6 jobs, the RetrainJob crash points on tabular-train
	@MLOPS_CHAOS_OBJECTS=$${MLOPS_CHAOS_OBJECTS:-1000} MLOPS_CHAOS_SEED=$${MLOPS_CHAOS_SEED:-$$(date +%s)} \
	  MLOPS_CHAOS_ROLLOUT_OBJECTS=$${MLOPS_CHAOS_ROLLOUT_OBJECTS:-60} MLOPS_CHAOS_KILLS=$${MLOPS_CHAOS_KILLS:-9} \
	  MLOPS_CHAOS_RUNS=$${MLOPS_CHAOS_RUNS:-6} MLOPS_CHAOS_CRASH_PIPELINE=$${MLOPS_CHAOS_CRASH_PIPELINE:-tabular-train} \
	  $(PYTEST) -m chaos -s -q

test-unit: setup-python ## pure tests, no servers (seconds)
	@$(PYTEST) -m unit -q

test-integration: setup
	@$(PYTEST) -m integration -q

lint: setup-python ## ruff, mypy and the import-layer contracts (pyproject.toml)
	@$(PY) -m ruff check operator tests pipelines hack bench
	@$(PY) -m ruff format --check operator tests pipelines hack bench
	@# mypy checks a cached module by its content when the mtime differs, so one cache outside
	@# the repo serves every clone (CI's included); keyed by the versions and the settings
	@MYPY_CACHE_DIR=$(CACHE)/mypy-$$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-12) $(PY) -m mypy
	@.venv/bin/lint-imports --no-cache --no-logo

fmt: setup-python
	@$(PY) -m ruff format operator tests pipelines hack
	@$(PY) -m ruff check --fix operator tests pipelines hack

run: setup ## the operator against KUBECONFIG (or the local cluster when unset)
	@if [ -z "$$KUBECONFIG" ]; then $(MAKE) --no-print-directory cluster-up; export KUBECONFIG=$(CURDIR)/.cluster/kubeconfig; fi; \
	  $(PY) -m mlops_operator.cli run

cluster-up: setup ## start the local control plane, kwok nodes and the real node (kubeconfig: .cluster/kubeconfig)
	@$(PY) hack/localcluster.py up

cluster-down: setup-python ## stop it and its real node, restoring the host (state is kept; cluster-reset forgets it)
	@$(PY) hack/localcluster.py down

cluster-reset: setup-python
	@$(PY) hack/localcluster.py reset

crds: setup-python ## regenerate crds/ (and the chart's copy) from the typed models in api/; with the local cluster up, the Kubernetes types they embed too
	@if [ -f .cluster/kubeconfig ] && kubectl --kubeconfig .cluster/kubeconfig get --raw /version >/dev/null 2>&1; then \
	  $(PY) hack/k8s_openapi.py; \
	else echo "local cluster down: the embedded Kubernetes types stay as committed (operator/mlops_operator/api/k8s_openapi.json)"; fi
	@$(PY) -m mlops_operator.api.crdgen crds
	@cp crds/*.yaml charts/mlops-operator/crds/

docs: setup-python ## regenerate the settings tables of docs/settings.md and docs/runtime.md
	@$(PY) -m mlops_operator.settings docs/settings.md
	@$(PY) -m mlops_operator.runtime.config docs/runtime.md

pipelines: setup-python ## compile pipelines/*/pipeline.py into operator/mlops_operator/pipelines/packages/
	@$(PY) -m mlops_operator.pipelines.compile

bench: bench-runtime bench-shadow bench-reconcile bench-canary ## all benchmarks

bench-runtime: setup ## our runtime vs `mlflow models serve`; figures also in bench/results/runtime.json
	@$(PY) bench/bench_runtime.py --json bench/results/runtime.json

bench-shadow: setup ## what copying requests to a shadow candidate costs the stable pods' callers
	@$(PY) bench/bench_shadow.py

bench-clients: setup ## the operator's Kubernetes client vs lightkube, kr8s, kubernetes_asyncio
	@libs=$${MLOPS_CACHE_DIR:-$$HOME/.cache/mlops-operator}/bench-clients; \
	  [ -f $$libs/.done-1 ] || { $(PY) -m pip install -q --target $$libs lightkube==1.0.1 kr8s==0.20.15 kubernetes-asyncio==36.1.0 && touch $$libs/.done-1; }; \
	  [ -n "$$KUBECONFIG" ] || { $(PY) hack/localcluster.py up >/dev/null && export KUBECONFIG=$(CURDIR)/.cluster/kubeconfig; }; \
	  MLOPS_BENCH_CLIENT_LIBS=$$libs $(PY) bench/bench_kube_clients.py

bench-reconcile: setup ## 100 and 1,000 ModelDeployments beside as many Deployments (kube-controller-manager); figures also in bench/results/reconcile.json
	@$(PY) bench/bench_reconcile.py --json bench/results/reconcile.json $(BENCH_RECONCILE_ARGS)

bench-profile: setup ## bench-reconcile at 1,000 objects with py-spy on the operator: where its time goes
	@spy=$${MLOPS_CACHE_DIR:-$$HOME/.cache/mlops-operator}/py-spy; \
	  [ -f $$spy/.done-0.4.3 ] || { $(PY) -m pip install -q --target $$spy py-spy==0.4.3 && touch $$spy/.done-0.4.3; }; \
	  MLOPS_PY_SPY=$$spy/bin/py-spy $(PY) bench/bench_reconcile.py --sizes 1000 --idle 30 --profile bench/results/profile $(BENCH_RECONCILE_ARGS)

bench-memory: setup ## bench-reconcile at 1,000 objects with the operator under tracemalloc: where its memory is
	@$(PY) bench/bench_reconcile.py --sizes 1000 --idle 30 --memory bench/results/memory $(BENCH_RECONCILE_ARGS)

bench-canary: setup ## real pods: alias move -> canary promoted / rolled back, vs a rolling update
	@$(PY) bench/bench_canary.py

images: setup ## the runtime and operator images: Docker if there is an engine, else buildah, loaded into the real node
	@hack/setup.sh images
	@bash hack/images.sh

constraints: setup-python ## regenerate constraints.txt from .venv (after changing pyproject.toml)
	@{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

kind-up: ## a kind cluster whose workers look like the local one (needs Docker)
	bash hack/kind/up.sh

kind-down:
	kind delete cluster --name mlops

kind-load: ## load the images of `make images` into kind
	kind load docker-image --name mlops mlops-operator/runtime:dev mlops-operator/operator:dev-pipelines

deploy: setup ## helm install the operator (the images of `make images`) into KUBECONFIG, or the local cluster's real node
	@if [ -z "$$KUBECONFIG" ]; then \
	  $(MAKE) --no-print-directory cluster-up images && export KUBECONFIG=$(CURDIR)/.cluster/kubeconfig && \
	  extra=(--set-json 'nodeSelector={"mlops.dev/node-kind":"real"}' \
	         --set-json 'tolerations=[{"key":"mlops.dev/real-node","operator":"Exists","effect":"NoSchedule"}]' \
	         --set mlflow.trackingUri=$${MLFLOW_TRACKING_URI:-http://10.88.0.1:5055}); \
	fi; \
	kubectl create namespace mlops-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null && \
	kubectl label namespace mlops-system --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null && \
	helm upgrade --install mlops-operator charts/mlops-operator -n mlops-system \
	  --set image.repository=mlops-operator/operator --set image.tag=dev-pipelines \
	  --set runtime.image=mlops-operator/runtime:dev "$${extra[@]}" --wait --timeout 180s

e2e: setup ## the integration suite against the kind cluster
	MLOPS_TEST_CONTEXT=kind-mlops $(PYTEST) -m integration -q
