#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go modules pinned in go.mod and caches them, keyed by version,
# under ${GATEHOUSE_CACHE_DIR:-$HOME/.cache/gatehouse}/control-plane/ (outside the work tree, so that
# every checkout on the machine, CI's fresh clone included, reuses one build). A second run is a no-op.
# Prints the directory holding the binaries on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$here/go.mod")"
cache="${GATEHOUSE_CACHE_DIR:-$HOME/.cache/gatehouse}"
out="$cache/control-plane/$version-etcd$etcd_version"
bin="$out/bin"

if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" ]]; then
  echo "control plane $version (etcd $etcd_version) is cached in $bin" >&2
  echo "$bin"
  exit 0
fi

export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod
major="${version#v}"; major="${major%%.*}"
minor="${version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version"

mkdir -p "$bin.partial"
cd "$here"
start=$SECONDS
echo "building etcd $etcd_version (first run only; cached afterwards)" >&2
go build -trimpath -ldflags "-s -w" -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3
echo "building kube-apiserver $version (first run only, 10-25 minutes on 2 cores)" >&2
go build -trimpath -ldflags "$ldflags" -o "$bin.partial/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
rm -rf "$bin"
mv "$bin.partial" "$bin"
echo "control plane built in $((SECONDS - start)) s into $bin" >&2
echo "$bin"
