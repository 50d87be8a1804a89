#!/usr/bin/env bash
# Runs every libFuzzer target built in FUZZ_DIR/fuzz for SECONDS each, with its
# seed corpus from fuzz/corpus/<name>/ when present. Fails on the first crash.
# Usage: scripts/fuzz.sh FUZZ_DIR SECONDS [TARGET...]   (no TARGET: every target)
set -euo pipefail
fuzz_dir="${1:?usage: scripts/fuzz.sh FUZZ_DIR SECONDS}"
seconds="${2:-600}"
root="$(cd "$(dirname "$0")/.." && pwd)"
shopt -s nullglob
if [[ $# -gt 2 ]]; then
  targets=()
  for name in "${@:3}"; do
    if [[ ! -x "$fuzz_dir/fuzz/$name" ]]; then
      echo "fuzz.sh: no fuzz target $name in $fuzz_dir/fuzz (see ls $fuzz_dir/fuzz/*_fuzz)" >&2
      exit 1
    fi
    targets+=("$fuzz_dir/fuzz/$name")
  done
else
  targets=("$fuzz_dir"/fuzz/*_fuzz)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz targets in $fuzz_dir/fuzz (was it configured with -DGV_FUZZ=ON and clang?)" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  name="$(basename "$t")"
  work="$fuzz_dir/corpus/$name"
  mkdir -p "$work" "$fuzz_dir/artifacts"
  seeds=()
  [[ -d "$root/fuzz/corpus/$name" ]] && seeds+=("$root/fuzz/corpus/$name")
  echo "fuzz.sh: $name for ${seconds}s"
  "$t" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$fuzz_dir/artifacts/$name-" \
    "$work" "${seeds[@]}"
done
echo "fuzz.sh: all targets ran clean"
