#!/usr/bin/env bash
# Installs the Debian 12 packages grapevine needs to build, test and run.
# As root it runs apt-get itself; otherwise it prints the command to run.
# Usage: scripts/install-deps.sh [build|test|bench]   (default: test)
set -euo pipefail

profile="${1:-test}"

build_pkgs=(
  build-essential cmake pkg-config make git
  libuv1-dev libflatbuffers-dev flatbuffers-compiler libspdlog-dev doctest-dev
  libh2o-dev nlohmann-json3-dev libsodium-dev libcli11-dev libtomlplusplus-dev libldns-dev
)
# The web UI's packages (viz/package-lock.json) are installed with `npm ci` at
# build time: Debian's nodejs and npm, unless an npm is already on PATH.
if ! command -v npm >/dev/null 2>&1; then
  build_pkgs+=(nodejs npm)
fi
# make test: dig (bind9-dnsutils) asks the agents' DNS endpoint; the web UI's
# browser test drives Debian's chromium (headless) with playwright-core.
test_pkgs=(bind9-dnsutils chromium)
# make bench-cluster: wrk drives the HTTP GET figure, serf is the gossip reference.
bench_pkgs=(wrk serf)

pkgs=("${build_pkgs[@]}")
case "$profile" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "install-deps: unknown profile '$profile' (use build, test or bench)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
