#!/usr/bin/env bash
# Builds bin/helm, the real helm CLI (helm.sh/helm/v4, pinned in the harness
# module hack/helm), when that module changes: for the chart's tests and
# make chart (several minutes the first time on 2 cores, modules
# downloaded; seconds after).
#   hack/helm.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/helm"
source "$root/hack/stamped.sh"

# helm version reports the module's version, as Helm's own release builds
# set it.
build() {
  local ver
  ver=$(cd "$mod" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
  (cd "$mod" && go build -trimpath -ldflags "-X helm.sh/helm/v4/internal/version.version=$ver" -o "$root/bin/helm.tmp" helm.sh/helm/v4/cmd/helm)
}

case "${1:-build}" in
  build)
    want=$(cd "$mod" && cat go.mod go.sum ../helm.sh | sha256sum | cut -d' ' -f1)
    stamped_build "$root/bin/helm" "$want" build
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
