#!/usr/bin/env bash
# Installs the Debian packages Sluice's tests and playground need, when they
# are missing. Idempotent; quiet when everything is present.
set -euo pipefail
need=()
[[ -x /usr/bin/prometheus ]] || need+=(prometheus)
if (( ${#need[@]} )); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package enables a system service; the tests run their own servers.
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
