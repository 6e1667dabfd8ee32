#!/usr/bin/env bash
# Builds the peers make bench-compare runs next to Sluice, each from its own
# module under hack/peers (their dependency versions never touch Sluice's),
# into bin/ when the module changed:
#   bin/flagger              Flagger v1.41.0 (hack/peers/flagger)
#   bin/rollouts-controller  Argo Rollouts v1.10.1 (hack/peers/argo-rollouts)
# and lists their real CRD files, from the same module versions:
#   hack/peers.sh build [flagger|argo-rollouts]   (default: both)
#   hack/peers.sh crds flagger|argo-rollouts      (one path per line)
# Nothing here is part of make test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

module_of() {
  case "$1" in
    flagger) echo "github.com/fluxcd/flagger" ;;
    argo-rollouts) echo "github.com/argoproj/argo-rollouts" ;;
    *) echo "unknown peer $1 (flagger or argo-rollouts)" >&2; exit 2 ;;
  esac
}

build_one() {
  local peer=$1 name pkg
  case "$peer" in
    flagger) name=flagger; pkg=github.com/fluxcd/flagger/cmd/flagger ;;
    argo-rollouts) name=rollouts-controller; pkg=github.com/argoproj/argo-rollouts/cmd/rollouts-controller ;;
    *) module_of "$peer" >/dev/null ;;
  esac
  local mod="$root/hack/peers/$peer" out="$root/bin/$name" want
  want=$(cd "$mod" && cat go.mod go.sum "$root/hack/peers.sh" | sha256sum | cut -d' ' -f1)
  if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
    return 0
  fi
  mkdir -p "$root/bin"
  local t0=$SECONDS
  echo "building bin/$name (the first build takes several minutes on 2 cores)..." >&2
  # The binary's name is its user agent's first word, which the bench's
  # audit log attributes requests by.
  (cd "$mod" && go build -trimpath -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "$want" > "$out.stamp"
  echo "built bin/$name in $((SECONDS - t0))s" >&2
}

crds() {
  local peer=$1 dir
  dir=$(cd "$root/hack/peers/$peer" && go list -m -f '{{.Dir}}' "$(module_of "$peer")")
  case "$peer" in
    flagger) echo "$dir/artifacts/flagger/crd.yaml" ;;
    argo-rollouts) ls "$dir"/manifests/crds/*-crd.yaml ;;
  esac
}

case "${1:-build}" in
  build)
    case "${2:-all}" in
      all) build_one flagger; build_one argo-rollouts ;;
      *) build_one "$2" ;;
    esac
    ;;
  crds) crds "${2:?usage: $0 crds flagger|argo-rollouts}" ;;
  *) echo "usage: $0 build [flagger|argo-rollouts] | crds flagger|argo-rollouts" >&2; exit 2 ;;
esac
