#!/usr/bin/env bash
# Runs every test, after installing and starting what the tests need. This is the README's test
# command, and .ci/run calls it. Idempotent: what is installed, built or running already is reused.
#
#   bash tests/run.sh            # everything
#   bash tests/run.sh -p gatehouse-crds   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "PostgreSQL (Debian package, private cluster under target/postgres)"
pg_url="$(bash tests/services/postgres.sh | tail -n 1)"
export GATEHOUSE_TEST_POSTGRES_URL="$pg_url"

step "Chromium and chromedriver (Debian packages) for the browser test"
GATEHOUSE_CHROMEDRIVER="$(bash tests/services/chromium.sh | tail -n 1)"
export GATEHOUSE_CHROMEDRIVER

step "kube-apiserver and etcd (built from the Go modules once, then cached)"
GATEHOUSE_CONTROL_PLANE_BIN="$(bash tests/control-plane/build.sh | tail -n 1)"
export GATEHOUSE_CONTROL_PLANE_BIN

step "helm (built from the Go module proxy once, then cached)"
GATEHOUSE_HELM="$(bash tests/services/helm.sh | tail -n 1)"
export GATEHOUSE_HELM

step "cargo test --workspace $*"
cargo test --workspace --locked "$@"
