#!/usr/bin/env bash
# Builds bin/istiocheck from the harness module hack/istio when its sources
# change: Istio's own conversion and validation of VirtualServices and
# DestinationRules, for the Istio router's tests (about 3 min the first
# time on 2 cores, modules downloaded; seconds after).
#   hack/istio.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/istio"
source "$root/hack/stamped.sh"

case "${1:-build}" in
  build)
    want=$(cd "$mod" && cat go.mod go.sum istiocheck/*.go ../istio.sh | sha256sum | cut -d' ' -f1)
    out="$root/bin/istiocheck"
    stamped_build "$out" "$want" bash -c "cd '$mod' && go build -trimpath -o '$out.tmp' ./istiocheck"
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
