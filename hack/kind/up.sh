#!/usr/bin/env bash
# Creates the kind cluster of hack/kind/cluster.yaml and advertises 8 nvidia.com/gpu on each
# GPU worker (kind has no device plugin; capacity is patched into node status, which the
# kubelet keeps for extended resources it does not manage). Needs Docker and kind.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kind get clusters | grep -qx mlops || kind create cluster --config "$here/cluster.yaml"
kubectl config use-context kind-mlops >/dev/null
for node in $(kubectl get nodes -l nvidia.com/gpu.present=true -o name); do
  kubectl patch "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"8"}]'
done
kubectl apply --server-side -f "$here/../../crds/"
kubectl get nodes -L nvidia.com/gpu.product
