#!/usr/bin/env bash
# Operator scale (issue 7): builds the release binaries, then runs gatehouse-operator-scale, which starts
# a private kube-apiserver (tests/control-plane), the operator and the token server on SQLite, measures
# the idle single-client apply-to-Secret latency, and creates N OAuthClients per run, timing until all are
# Ready and reading peak RSS and the operator's apiserver requests per client. Prints Markdown tables.
#
#   bash bench/operator-scale.sh                      1,000 then 10,000 clients
#   bash bench/operator-scale.sh --clients 100 --samples 5   a quick look
#
# Extra flags go to gatehouse-operator-scale (see its --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[operator-scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "kube-apiserver and etcd (built from the Go modules once, then cached)"
GATEHOUSE_CONTROL_PLANE_BIN="$(bash tests/control-plane/build.sh | tail -n 1)"
export GATEHOUSE_CONTROL_PLANE_BIN

log "cargo build --release (operator, server, gatehouse-operator-scale)"
cargo build --release -q -p gatehouse-operator -p gatehouse-server -p gatehouse-tests --bin gatehouse-operator \
  --bin gatehouse-server --bin gatehouse-operator-scale
target="${CARGO_TARGET_DIR:-$root/target}/release"

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$target/gatehouse-operator-scale" --bin-dir "$target" "$@"
