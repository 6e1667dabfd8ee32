#!/usr/bin/env bash
# Local control plane for Sluice: build, start (in the background), stop.
#   hack/cluster.sh build        build bin/localcluster if its sources changed
#   hack/cluster.sh up           build, start, wait until ready (idempotent)
#   hack/cluster.sh down         stop and delete the state folder
#   hack/cluster.sh status       exit 0 when a ready cluster answers
#   hack/cluster.sh kubectl ...  kubectl (same Kubernetes version) on the local cluster
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/bin/localcluster"
state="${SLUICE_LOCAL_DIR:-$root/.local}"
kubeconfig="$state/kubeconfig"
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}k8s.io"

stamp() {
  (cd "$root/hack/localcluster" && cat go.mod go.sum ./*.go ../cluster.sh | sha256sum | cut -d' ' -f1)
}

build() {
  local want
  want=$(stamp)
  if [[ -x "$bin" && -f "$bin.stamp" && "$(cat "$bin.stamp")" == "$want" ]]; then
    return 0
  fi
  echo "building bin/localcluster (Kubernetes v1.37.2; the first build takes ~12 min on 2 cores)..." >&2
  mkdir -p "$root/bin"
  local t0=$SECONDS
  local v=v1.37.2 ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
  done
  (cd "$root/hack/localcluster" && go build -ldflags "$ld" -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
  echo "$want" > "$bin.stamp"
  echo "built bin/localcluster in $((SECONDS - t0))s" >&2
}

pid() { cat "$state/localcluster.pid" 2>/dev/null || true; }

healthy() {
  local p
  p=$(pid)
  [[ -n "$p" && -f "$state/ready" ]] && kill -0 "$p" 2>/dev/null &&
    "$bin" kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

up() {
  build
  if healthy; then
    echo "local cluster already running: KUBECONFIG=$kubeconfig"
    return 0
  fi
  local p
  p=$(pid)
  if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  fi
  mkdir -p "$state/logs"
  rm -f "$state/ready"
  setsid nohup "$bin" up --dir "$state" "${LOCALCLUSTER_FLAGS[@]}" >>"$state/logs/up.log" 2>&1 < /dev/null &
  local sup=$! t0=$SECONDS
  while [[ ! -f "$state/ready" ]]; do
    if ! kill -0 "$sup" 2>/dev/null || (( SECONDS - t0 > ${CLUSTER_START_TIMEOUT:-300} )); then
      echo "local cluster did not become ready; last log lines:" >&2
      tail -n 20 "$state/logs/up.log" >&2 || true
      for f in "$state"/logs/*.log; do echo "--- $f" >&2; tail -n 5 "$f" >&2; done
      kill "$sup" 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  echo "local cluster ready in $((SECONDS - t0))s: KUBECONFIG=$kubeconfig"
}

down() {
  local p g=""
  p=$(pid)
  if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
    g=$(ps -o pgid= -p "$p" | tr -d ' ')
    kill "$p"
    # A large cluster (the scale benchmark's) takes a while to stop.
    for _ in $(seq 1 180); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  fi
  # Whatever is left of its process group (it was started with setsid):
  # an etcd still writing would make the folder impossible to delete.
  if [[ -n "$g" && "$g" != "$(ps -o pgid= -p $$ | tr -d ' ')" ]]; then
    kill -9 -- "-$g" 2>/dev/null || true
    for _ in $(seq 1 20); do pgrep -g "$g" >/dev/null || break; sleep 0.5; done
  fi
  rm -rf "$state"
  echo "local cluster stopped"
}

LOCALCLUSTER_FLAGS=()
cmd="${1:-up}"
shift || true
case "$cmd" in
  build) build ;;
  up) LOCALCLUSTER_FLAGS=("$@"); up ;;
  down) down ;;
  status) healthy ;;
  kubectl) build; exec "$bin" kubectl --kubeconfig "${KUBECONFIG:-$kubeconfig}" "$@" ;;
  *) echo "usage: $0 build|up|down|status|kubectl" >&2; exit 2 ;;
esac
