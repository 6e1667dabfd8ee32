#!/usr/bin/env bash
# Builds the harness module hack/traefik into bin/ when its sources change:
#   bin/traefik    a real Traefik v3.6.12 (end-to-end tests, the playground)
#   bin/rulecheck  Traefik's own rule parser and matcher, for the rule fuzz test
#   hack/traefik.sh build [rulecheck|traefik]   (default: both)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/hack/traefik"

stamp() {
  (cd "$mod" && cat go.mod go.sum rulecheck/*.go ../traefik.sh | sha256sum | cut -d' ' -f1)
}

build_one() {
  local name=$1 pkg=$2 want
  want=$(stamp)
  local out="$root/bin/$name"
  if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
    return 0
  fi
  mkdir -p "$root/bin"
  local t0=$SECONDS
  echo "building bin/$name (first build of traefik takes ~10 min on 2 cores)..." >&2
  (cd "$mod" && go build -trimpath -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "$want" > "$out.stamp"
  echo "built bin/$name in $((SECONDS - t0))s" >&2
}

case "${1:-build}" in
  build)
    case "${2:-all}" in
      rulecheck) build_one rulecheck ./rulecheck ;;
      traefik) build_one traefik github.com/traefik/traefik/v3/cmd/traefik ;;
      all)
        build_one rulecheck ./rulecheck
        build_one traefik github.com/traefik/traefik/v3/cmd/traefik
        ;;
      *) echo "usage: $0 build [rulecheck|traefik]" >&2; exit 2 ;;
    esac
    ;;
  *) echo "usage: $0 build [rulecheck|traefik]" >&2; exit 2 ;;
esac
