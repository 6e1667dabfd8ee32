# Sluice developer entry points. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION := v0.22.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUBECONFIG ?= $(CURDIR)/.local/kubeconfig
export KUBECONFIG

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: demo
demo: deps cluster ## the playground: local control plane, controller, a release that promotes and one that rolls back
	bash hack/demo.sh

.PHONY: test
test: deps cluster verify ## everything CI runs: static checks, unit and integration tests on the local control plane
	$(GO) test -count=1 -timeout 45m ./...

.PHONY: test-unit
test-unit: ## unit tests only (no cluster)
	$(GO) test -short -count=1 ./...

.PHONY: verify
verify: generate ## gofmt, go vet, and generated files up to date
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/localcluster/')); \
	  if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if ! git diff --quiet -- api config/crd; then \
	  echo "generated files are stale: run 'make generate' and commit the result"; git --no-pager diff --stat -- api config/crd; exit 1; fi
	@if [[ -n "$$(git ls-files --others --exclude-standard -- api config/crd)" ]]; then \
	  echo "generated files are not committed:"; git ls-files --others --exclude-standard -- api config/crd; exit 1; fi

.PHONY: generate
generate: $(CONTROLLER_GEN) ## regenerate deepcopy and CRD YAML from api/ (controller-gen)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/controller-gen $@

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
