//go:build tools

// Package tools pins the node commands this module builds, so `go mod tidy` keeps them.
// A module of their own: adding them to hack/k8s would change the control plane's cache key
// and force everyone to rebuild it.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
