//go:build tools

// Package tools pins Prometheus, built here because Debian's package leaves out the
// Kubernetes service discovery that finds the model pods; hack/build-binaries.sh builds it
// with only that discovery (remove_all_sd,enable_kubernetes_sd).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
