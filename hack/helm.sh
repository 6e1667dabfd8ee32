#!/usr/bin/env bash
# Builds bin/helm, the real helm CLI (helm.sh/helm/v4, pinned in the harness
# module hack/helm), when that module changes: for the chart's tests and
# make chart (several minutes the first time on 2 cores, modules
# downloaded; seconds after).
#   hack/helm.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/helm"

stamp() {
  (cd "$mod" && cat go.mod go.sum ../helm.sh | sha256sum | cut -d' ' -f1)
}

case "${1:-build}" in
  build)
    want=$(stamp)
    out="$root/bin/helm"
    if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
      exit 0
    fi
    mkdir -p "$root/bin"
    t0=$SECONDS
    echo "building bin/helm (first build takes several minutes on 2 cores)..." >&2
    # helm version reports the module's version, as Helm's own release
    # builds set it.
    ver=$(cd "$mod" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
    (cd "$mod" && go build -trimpath -ldflags "-X helm.sh/helm/v4/internal/version.version=$ver" -o "$out.tmp" helm.sh/helm/v4/cmd/helm)
    mv "$out.tmp" "$out"
    echo "$want" > "$out.stamp"
    echo "built bin/helm in $((SECONDS - t0))s" >&2
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
