#!/usr/bin/env bash
# Builds bin/imagebuild from the harness module hack/image when its
# sources change: it assembles Sluice's container image (an OCI layout)
# without a container engine (seconds; its modules are small).
#   hack/image.sh build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/image"
source "$root/hack/stamped.sh"

case "${1:-build}" in
  build)
    want=$(cd "$mod" && cat go.mod go.sum imagebuild/*.go ../image.sh | sha256sum | cut -d' ' -f1)
    out="$root/bin/imagebuild"
    stamped_build "$out" "$want" bash -c "cd '$mod' && go build -trimpath -o '$out.tmp' ./imagebuild"
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
