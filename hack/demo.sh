#!/usr/bin/env bash
# The playground (`make demo`, after the cluster and bin/traefik are up):
# builds the controller and the playground, installs Sluice's CRDs, and
# runs bin/sluice-playground, which starts Traefik, Prometheus, the service
# responder, the controller and steady traffic, installs a demo app with a
# Canary, and shows a good release promoted and a bad one rolled back.
# From a terminal it keeps everything up afterwards until Ctrl-C; otherwise
# (CI, the test in test/demo) it stops at the end. Either way it stops
# every process it started; the cluster keeps running (make cluster-down).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
make --no-print-directory build install >/dev/null
exec "$root/bin/sluice-playground" --root "$root" "$@"
