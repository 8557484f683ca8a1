#!/usr/bin/env bash
# The README's first command: Gatehouse running locally on its embedded default (SQLite).
# Builds (once) a private kube-apiserver and etcd from the Go modules, starts them with the CRDs, runs the
# operator and the token server as local processes, applies examples/, and prints a working token request.
#   bash examples/quickstart.sh          # runs until Ctrl-C
#   bash examples/quickstart.sh --exit   # stops after the demonstration
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> kube-apiserver and etcd (built from the Go modules on first run: 10-25 minutes; then cached)" >&2
GATEHOUSE_CONTROL_PLANE_BIN="$(bash tests/control-plane/build.sh | tail -n 1)"
export GATEHOUSE_CONTROL_PLANE_BIN

echo "==> building gatehouse (first build: a few minutes)" >&2
cargo build --locked -p gatehouse-operator -p gatehouse-server -p gatehouse-tests --bin gatehouse-operator \
  --bin gatehouse-server --bin gatehouse-local

exec "${CARGO_TARGET_DIR:-target}/debug/gatehouse-local" "$@"
