#!/usr/bin/env bash
# Builds bin/istiocheck from the harness module hack/istio when its sources
# change: Istio's own conversion and validation of VirtualServices and
# DestinationRules, for the Istio router's tests (about 3 min the first
# time on 2 cores, modules downloaded; seconds after).
#   hack/istio.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/istio"

stamp() {
  (cd "$mod" && cat go.mod go.sum istiocheck/*.go ../istio.sh | sha256sum | cut -d' ' -f1)
}

case "${1:-build}" in
  build)
    want=$(stamp)
    out="$root/bin/istiocheck"
    if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
      exit 0
    fi
    mkdir -p "$root/bin"
    t0=$SECONDS
    echo "building bin/istiocheck (first build takes ~3 min on 2 cores)..." >&2
    (cd "$mod" && go build -trimpath -o "$out.tmp" ./istiocheck)
    mv "$out.tmp" "$out"
    echo "$want" > "$out.stamp"
    echo "built bin/istiocheck in $((SECONDS - t0))s" >&2
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
