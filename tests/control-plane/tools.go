//go:build tools

// Package tools pins the main packages that build.sh compiles, so that
// `go mod tidy` keeps their whole dependency graph in go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
