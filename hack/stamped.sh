# Sourced by the harness build scripts (hack/istio.sh, hack/helm.sh,
# hack/image.sh): build a binary only when its sources changed.
#
#   stamped_build OUT STAMP CMD...
#
# runs CMD, which must write OUT.tmp, unless OUT exists and OUT.stamp
# holds STAMP (a hash of the sources); then moves OUT.tmp to OUT and
# records STAMP. Says what it builds and how long it took.
stamped_build() {
  local out=$1 want=$2
  shift 2
  if [[ -x "$out" && -f "$out.stamp" && "$(cat "$out.stamp")" == "$want" ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  local t0=$SECONDS name
  name=$(basename "$out")
  echo "building bin/$name..." >&2
  "$@"
  mv "$out.tmp" "$out"
  echo "$want" > "$out.stamp"
  echo "built bin/$name in $((SECONDS - t0))s" >&2
}
