#!/usr/bin/env bash
# The playground. Until the controller lands this brings up the local control
# plane and shows that it runs real workloads.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
k() { "$root/bin/localcluster" kubectl --kubeconfig "$root/.local/kubeconfig" "$@"; }
k create namespace demo --dry-run=client -o yaml | k apply -f - >/dev/null
k -n demo create deployment web --image=example.com/web:1 --replicas=3 --dry-run=client -o yaml | k apply -f - >/dev/null
k -n demo rollout status deployment/web --timeout=60s
k get nodes
k -n demo get deployment,pods -o wide
