#!/usr/bin/env bash
# Builds helm from the Go module proxy (no prebuilt download) and caches it, keyed by version, under
# ${GATEHOUSE_CACHE_DIR:-$HOME/.cache/gatehouse}/helm/. Prints the path of the binary on its last line.
set -euo pipefail
version="${GATEHOUSE_HELM_VERSION:-v3.22.0}"
dir="${GATEHOUSE_CACHE_DIR:-$HOME/.cache/gatehouse}/helm/$version"
if [[ ! -x "$dir/helm" ]]; then
  echo "building helm $version from the Go module proxy (first run only)" >&2
  mkdir -p "$dir"
  GOWORK=off CGO_ENABLED=0 GOBIN="$dir" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$version" >&2
fi
echo "$dir/helm"
