# Sluice developer entry points. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION := v0.22.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GENERATED = $(sort $(wildcard api/*/zz_generated.*.go config/crd/bases/*.yaml config/rbac/role.yaml charts/sluice/crds/*.yaml charts/sluice/files/role.yaml))
CHART := charts/sluice
KUBECONFIG ?= $(CURDIR)/.local/kubeconfig
export KUBECONFIG

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: demo
demo: deps cluster traefik ## the playground: local control plane, Traefik, Prometheus, traffic, the controller; a release promoted and one rolled back
	bash hack/demo.sh $(if $(SCENARIO),--scenario $(SCENARIO))

.PHONY: test
test: deps cluster harness verify ## everything CI runs: static checks, unit and integration tests on the local control plane, real traffic end to end, the playground
	$(GO) test -count=1 -timeout 45m $$($(GO) list ./... | grep -v -e /test/e2e -e /test/demo -e /test/image -e /test/walkthrough)
	@# Real traffic and the image (its build is the one slow step) last, one
	@# package at a time, on a quiet machine.
	$(GO) test -count=1 -timeout 30m -p 1 ./test/e2e ./test/demo ./test/image ./test/walkthrough

.PHONY: harness
harness: traefik ## build what the tests need besides: bin/rulecheck and bin/traefik (below), bin/istiocheck (Istio's own validation) from hack/istio, bin/imagebuild (make image) from hack/image and bin/helm (Helm v4) from hack/helm, if their sources changed
	bash hack/istio.sh build
	bash hack/image.sh build
	bash hack/helm.sh build

.PHONY: traefik
traefik: ## build bin/rulecheck (Traefik's own rule parser) and bin/traefik (a real Traefik v3.6.12) from hack/traefik, if their sources changed (all make demo needs)
	bash hack/traefik.sh build

.PHONY: e2e
e2e: deps cluster harness ## real requests end to end (Traefik, Prometheus, a load generator): one table per scenario
	$(GO) test -count=1 -timeout 20m -v -run TestEndToEnd ./test/e2e | grep -v -e '^=== RUN' -e '^=== PAUSE' -e '^=== CONT'

# The benchmark runs its own local control plane (state in .local-bench,
# other ports), started empty and stopped at the end, without the
# EndpointSlice controllers: Sluice reads no Endpoints, and at 10,000
# Canaries they would keep 30,000 slices up to date on the same two cores.
BENCH_CLUSTER := SLUICE_LOCAL_DIR=$(CURDIR)/.local-bench
BENCH_CONTROLLERS := *,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller

.PHONY: bench-scale
bench-scale: deps ## scale benchmark: N Canaries on one controller, idle and releasing (SLUICE_BENCH_SIZES=100,1000,10000; more knobs in docs/performance.md)
	$(BENCH_CLUSTER) bash hack/cluster.sh down >/dev/null
	trap '$(BENCH_CLUSTER) bash hack/cluster.sh down' EXIT; \
	  $(BENCH_CLUSTER) bash hack/cluster.sh up --api-port 17443 --etcd-port 13379 --nodes 1 --controllers='$(BENCH_CONTROLLERS)' --apiserver-profiling; \
	  $(BENCH_CLUSTER) SLUICE_BENCH=1 $(GO) test -count=1 -timeout 120m -run TestScale -v ./test/scale | grep --line-buffered -v '^=== RUN'

# The chaos run: releases under faults drawn from a seed, on a local
# control plane of its own (state in .local-chaos, other ports), since it
# kills that apiserver. SLUICE_CHAOS_SEED replays a run,
# SLUICE_CHAOS_ROUND one round of it; SLUICE_CHAOS_ROUNDS and
# SLUICE_CHAOS_APPS size it (docs/chaos.md).
CHAOS_CLUSTER := SLUICE_LOCAL_DIR=$(CURDIR)/.local-chaos

.PHONY: chaos
chaos: deps harness ## releases under killed controllers and leaders, a killed apiserver, route conflict storms, a dead metric provider, failing webhooks and canaries turning not-Ready, invariants checked all along (SLUICE_CHAOS_SEED, _ROUNDS, _APPS, _ROUND, _TRAFFIC)
	$(CHAOS_CLUSTER) bash hack/cluster.sh down >/dev/null
	trap '$(CHAOS_CLUSTER) bash hack/cluster.sh down >/dev/null' EXIT; \
	  $(CHAOS_CLUSTER) bash hack/cluster.sh up --api-port 18443 --etcd-port 14379 --nodes 1 || exit 1; \
	  $(CHAOS_CLUSTER) SLUICE_CHAOS=1 SLUICE_CHAOS_APISERVER=1 $(GO) test -count=1 -timeout 600m -run TestChaos -v ./test/chaos | grep --line-buffered -v '^=== RUN'

# The peer benchmark: Sluice, Flagger and Argo Rollouts (built from their
# modules by hack/peers.sh), each alone on a fresh bench cluster whose
# audit log attributes each tool's apiserver requests, then one report.
COMPARE_TOOLS ?= sluice flagger argo-rollouts
COMPARE_CLUSTER := --api-port 17443 --etcd-port 13379 --nodes 1 --controllers='$(BENCH_CONTROLLERS)' --apiserver-profiling --audited-users sluice,flagger,argo-rollouts

.PHONY: bench-compare
bench-compare: deps ## the same releases under Sluice, Flagger v1.41.0 and Argo Rollouts v1.10.1: memory, CPU, apiserver requests, step lag, side by side (SLUICE_BENCH_SIZES=100,1000; COMPARE_TOOLS)
	bash hack/peers.sh build
	trap '$(BENCH_CLUSTER) bash hack/cluster.sh down >/dev/null' EXIT; \
	  for tool in $(COMPARE_TOOLS); do \
	    $(BENCH_CLUSTER) bash hack/cluster.sh down >/dev/null; \
	    $(BENCH_CLUSTER) bash hack/cluster.sh up $(COMPARE_CLUSTER) || exit 1; \
	    $(BENCH_CLUSTER) SLUICE_BENCH=1 SLUICE_COMPARE_TOOL=$$tool $(GO) test -count=1 -timeout 180m -run 'TestCompare$$' -v ./test/scale | grep --line-buffered -v '^=== RUN' || exit 1; \
	  done
	SLUICE_BENCH=1 SLUICE_COMPARE_REPORT=1 $(GO) test -count=1 -run TestCompareReport -v ./test/scale | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS' -e '^ok'

.PHONY: test-unit
test-unit: ## unit tests only (no cluster)
	$(GO) test -short -count=1 ./...

.PHONY: verify
verify: $(CONTROLLER_GEN) ## gofmt, go vet, and generated files up to date
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' | grep -v '^hack/localcluster/')); \
	  if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@before=$$(cat $(GENERATED) 2>/dev/null | sha256sum); $(MAKE) --no-print-directory generate >/dev/null; \
	  after=$$(cat $(GENERATED) 2>/dev/null | sha256sum); \
	  if [[ "$$before" != "$$after" ]]; then echo "generated files were stale: 'make generate' rewrote them; commit the result"; exit 1; fi

.PHONY: generate
generate: $(CONTROLLER_GEN) ## regenerate deepcopy, CRD YAML and RBAC from api/ and the markers (controller-gen), and the chart's copies of them
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=sluice-manager paths="{./internal/controller/...,./internal/router/...}" output:rbac:artifacts:config=config/rbac
	@# The chart ships the same CRDs and ClusterRole rules (test/chart checks).
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/role.yaml

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/controller-gen $@

# What `sluice --version` and `kubectl sluice version` print: the source the
# binaries were built from. The date is the commit's, in UTC, not the
# build's, so the same commit links the same bytes.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
COMMIT_DATE ?= $(shell TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD 2>/dev/null)
VERSION_PKG := github.com/sluice-dev/sluice/internal/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(COMMIT_DATE)
COMMIT_EPOCH ?= $(shell git show -s --format=%ct HEAD 2>/dev/null)
PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_OUT ?= $(BIN)/image

.PHONY: release
release: ## the release archives: kubectl-sluice and sluice for linux and darwin on amd64 and arm64, SHA256SUMS and the krew manifest (sluice.yaml), in bin/release
	$(GO) run ./hack/release -out '$(BIN)/release' -version '$(VERSION)' -epoch '$(COMMIT_EPOCH)' -ldflags '$(LDFLAGS)'

.PHONY: image
image: ## build the controller's image without a container engine: an OCI layout in bin/image/oci (linux/amd64 and arm64; PLATFORMS=...), an SPDX SBOM beside it; prints the digest (the same commit gives the same digest)
	@bash hack/image.sh build
	@$(BIN)/imagebuild -root . -out '$(IMAGE_OUT)' -version '$(VERSION)' -commit '$(COMMIT)' -epoch '$(COMMIT_EPOCH)' -ldflags '$(LDFLAGS)' -platforms '$(PLATFORMS)'

.PHONY: build
build: ## build bin/sluice (the controller), bin/kubectl-sluice (the kubectl plugin) and bin/sluice-playground (make demo), stamped with the version and commit
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/sluice ./cmd/sluice
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-sluice ./cmd/kubectl-sluice
	$(GO) build -o $(BIN)/sluice-playground ./cmd/sluice-playground

.PHONY: chart
chart: ## package the Helm chart (charts/sluice) into bin/charts/sluice-<version>.tgz, after helm lint
	bash hack/helm.sh build
	$(BIN)/helm lint --strict $(CHART)
	$(BIN)/helm package $(CHART) --destination $(BIN)/charts

.PHONY: install
install: ## apply Sluice's CRDs (config/crd/bases, as checked in: no network needed) to the cluster in $$KUBECONFIG (default .local/kubeconfig)
	bash hack/cluster.sh kubectl apply --server-side --force-conflicts -f config/crd/bases

.PHONY: run
run: build ## run the controller locally against $$KUBECONFIG (default .local/kubeconfig)
	$(BIN)/sluice --kubeconfig "$(KUBECONFIG)" --metrics-bind-address 127.0.0.1:18080 --health-probe-bind-address 127.0.0.1:18081

.PHONY: deps
deps: ## install the Debian packages the tests need (prometheus, influxdb, victoria-metrics, graphite-web, python3-whisper), if missing
	bash hack/deps.sh

.PHONY: cluster
cluster: ## start the local control plane in the background (idempotent); kubeconfig in .local/kubeconfig
	bash hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## stop the local control plane and delete its state
	bash hack/cluster.sh down

.PHONY: kubectl
kubectl: ## kubectl for the local cluster: make kubectl ARGS="get pods -A"
	bash hack/cluster.sh kubectl $(ARGS)
