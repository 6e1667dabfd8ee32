#!/usr/bin/env bash
# The playground: Sluice releasing a real Deployment on the local control
# plane. `make demo` runs it after starting the cluster.
#
#   1. installs Sluice's CRDs and starts the controller (bin/sluice)
#   2. applies examples/gateway-api/podinfo.yaml and waits for Initialized
#   3. releases a good version: it walks the steps and is promoted
#   4. releases a bad version (its pods never become Ready): it gets no
#      traffic and is rolled back when its progress deadline passes
#   5. prints a summary
#
# Ctrl-C or the end stops the controller it started; the cluster keeps
# running for inspection (make cluster-down stops it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export KUBECONFIG="$root/.local/kubeconfig"
k() { "$root/bin/localcluster" kubectl "$@"; }
ns=podinfo
log="$root/.local/logs/sluice.log"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building and starting the controller (log: $log)"
make --no-print-directory build >/dev/null
make --no-print-directory install >/dev/null
"$root/bin/sluice" --metrics-bind-address 127.0.0.1:18080 --health-probe-bind-address 127.0.0.1:18081 >"$log" 2>&1 &
ctrl_pid=$!
trap 'kill $ctrl_pid 2>/dev/null || true; wait $ctrl_pid 2>/dev/null || true' EXIT

# A clean slate, so the demo can run again. The whole namespace goes, so
# the Canary's hand-back-on-delete finalizer has nothing to protect.
for c in $(k -n "$ns" get canaries -o name 2>/dev/null); do
  k -n "$ns" patch "$c" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
done
k delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
k apply -f examples/gateway-api/podinfo.yaml >/dev/null

# show prints one line per change of the release's state until the phase
# is one of the given final phases.
show() {
  local want="$1" last="" line phase t0=$SECONDS
  while :; do
    line=$(k -n "$ns" get canary podinfo -o jsonpath='{.status.phase}|{.status.currentStep}/{.status.steps}|{.status.canaryWeight}|{.status.reason}|{.status.message}' 2>/dev/null || true)
    route=$(k -n "$ns" get httproute podinfo -o jsonpath='{range .spec.rules[0].backendRefs[*]}{.name}={.weight} {end}' 2>/dev/null || true)
    ready=$(k -n "$ns" get deploy podinfo podinfo-primary -o jsonpath='{range .items[*]}{.metadata.name}:{.status.availableReplicas}/{.spec.replicas} {end}' 2>/dev/null || true)
    cur="$line|$route|$ready"
    if [[ "$cur" != "$last" ]]; then
      IFS='|' read -r phase step weight reason msg <<<"$line"
      printf '%5ss  %-17s step %-5s weight %3s%%  route[%s]  pods[%s]  %s: %s\n' >&2 \
        "$((SECONDS - t0))" "${phase:-?}" "$step" "${weight:-0}" "${route% }" "${ready% }" "$reason" "$msg"
      last="$cur"
    fi
    phase=${line%%|*}
    if [[ " $want " == *" $phase "* ]]; then
      echo "$phase"
      return 0
    fi
    if (( SECONDS - t0 > 180 )); then
      echo "timed out waiting for $want" >&2
      return 1
    fi
    sleep 0.3
  done
}

t_start=$SECONDS
say "initialising: Sluice copies the Deployment to podinfo-primary and moves traffic to it"
show "Initialized" >/dev/null

say "release 1: a good version (6.7.1) walks its steps and is promoted"
t1=$SECONDS
k -n "$ns" set image deployment/podinfo podinfo=ghcr.io/stefanprodan/podinfo:6.7.1 >/dev/null
good=$(show "Succeeded Failed")
good_s=$((SECONDS - t1))

say "release 2: a bad version (6.7.2, its pods never become Ready) gets no traffic and is rolled back"
t2=$SECONDS
k -n "$ns" patch deployment podinfo --type merge -p \
  '{"spec":{"template":{"metadata":{"annotations":{"localcluster.sluice.dev/never-ready":"true"}},"spec":{"containers":[{"name":"podinfo","image":"ghcr.io/stefanprodan/podinfo:6.7.2"}]}}}}' >/dev/null
bad=$(show "Succeeded Failed")
bad_s=$((SECONDS - t2))

primary_image=$(k -n "$ns" get deploy podinfo-primary -o jsonpath='{.spec.template.spec.containers[0].image}')
say "summary"
printf '  good release: %-9s in %3ss\n' "$good" "$good_s"
printf '  bad release:  %-9s in %3ss  (%s)\n' "$bad" "$bad_s" "$(k -n "$ns" get canary podinfo -o jsonpath='{.status.message}')"
printf '  primary now runs %s; total %ss\n' "$primary_image" "$((SECONDS - t_start))"
cat <<EOF

Explore further (the cluster keeps running; make cluster-down stops it):
  export KUBECONFIG=$KUBECONFIG
  bin/localcluster kubectl -n $ns get canary,deploy,svc,httproute
  bin/localcluster kubectl -n $ns get events --field-selector involvedObject.kind=Canary
  make run   # the controller again; then: bin/localcluster kubectl -n $ns set image deployment/podinfo podinfo=ghcr.io/stefanprodan/podinfo:6.8.0
EOF
if [[ "$good" != Succeeded || "$bad" != Failed || "$primary_image" != *:6.7.1 ]]; then
  echo "demo: unexpected outcome (good=$good bad=$bad primary=$primary_image)" >&2
  exit 1
fi
