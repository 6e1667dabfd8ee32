#!/usr/bin/env bash
# Installs the Debian packages Sluice's tests and playground need, when they
# are missing: Prometheus, and the metric stores of the provider tests
# (internal/testenv/metricstores.go), and Chromium for the dashboard's
# browser tests. Idempotent; quiet when everything is
# present.
set -euo pipefail
need=()
[[ -x /usr/bin/prometheus ]] || need+=(prometheus)
[[ -x /usr/bin/influxd ]] || need+=(influxdb)
[[ -x /usr/bin/victoria-metrics ]] || need+=(victoria-metrics)
# Debian's python3 (not one earlier on PATH) runs graphite-web and whisper.
[[ -x /usr/bin/graphite-manage ]] || /usr/bin/python3 -c 'import graphite' 2>/dev/null || need+=(graphite-web)
/usr/bin/python3 -c 'import whisper' 2>/dev/null || need+=(python3-whisper)
# Headless Chromium drives the dashboard's browser tests (internal/dashboard).
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -d /usr/share/fonts/truetype/liberation ]] || need+=(fonts-liberation)
if (( ${#need[@]} )); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages enable system services; the tests run their own servers.
  for service in prometheus influxdb victoria-metrics; do
    $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
  done
fi
