#!/usr/bin/env bash
# Builds bin/imagebuild from the harness module hack/image when its
# sources change: it assembles Sluice's container image (an OCI layout)
# without a container engine (seconds; its modules are small).
#   hack/image.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/image"

stamp() {
  (cd "$mod" && cat go.mod go.sum imagebuild/*.go ../image.sh | sha256sum | cut -d' ' -f1)
}

case "${1:-build}" in
  build)
    want=$(stamp)
    out="$root/bin/imagebuild"
    if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
      exit 0
    fi
    mkdir -p "$root/bin"
    (cd "$mod" && go build -trimpath -o "$out.tmp" ./imagebuild)
    mv "$out.tmp" "$out"
    echo "$want" > "$out.stamp"
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
