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
demo: deps cluster harness ## the playground: local control plane, Traefik, Prometheus, traffic, the controller; a release promoted and one rolled back
	bash hack/demo.sh

.PHONY: test
test: deps cluster harness verify ## everything CI runs: static checks, unit and integration tests on the local control plane, real traffic end to end, the playground
	$(GO) test -count=1 -timeout 45m $$($(GO) list ./... | grep -v -e /test/e2e -e /test/demo)
	@# Real traffic last and one package at a time, on a quiet machine.
	$(GO) test -count=1 -timeout 30m -p 1 ./test/e2e ./test/demo

.PHONY: harness
harness: ## build bin/rulecheck (Traefik's own rule parser) and bin/traefik (a real Traefik v3.6.12) from hack/traefik, bin/istiocheck (Istio's own validation) from hack/istio, and bin/helm (Helm v4) from hack/helm, if their sources changed
	bash hack/traefik.sh build
	bash hack/istio.sh build
	bash hack/helm.sh build

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

.PHONY: build
build: ## build bin/sluice (the controller), bin/kubectl-sluice (the kubectl plugin) and bin/sluice-playground (make demo)
	$(GO) build -o $(BIN)/sluice ./cmd/sluice
	$(GO) build -o $(BIN)/kubectl-sluice ./cmd/kubectl-sluice
	$(GO) build -o $(BIN)/sluice-playground ./cmd/sluice-playground

.PHONY: chart
chart: ## package the Helm chart (charts/sluice) into bin/charts/sluice-<version>.tgz, after helm lint
	bash hack/helm.sh build
	$(BIN)/helm lint --strict $(CHART)
	$(BIN)/helm package $(CHART) --destination $(BIN)/charts

.PHONY: install
install: generate ## apply Sluice's CRDs to the cluster in $$KUBECONFIG (default .local/kubeconfig)
	bash hack/cluster.sh kubectl apply --server-side --force-conflicts -f config/crd/bases

.PHONY: run
run: build ## run the controller locally against $$KUBECONFIG (default .local/kubeconfig)
	$(BIN)/sluice --kubeconfig "$(KUBECONFIG)" --metrics-bind-address 127.0.0.1:18080 --health-probe-bind-address 127.0.0.1:18081

.PHONY: deps
deps: ## install the Debian packages the tests need (prometheus), if missing
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
