#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from the official Go modules, plus kwok, helm and the real node's
# kubelet and kube-proxy (hack/node: same Kubernetes version, its own module and key) and the
# tests' kstatus (hack/kstatus), into a cache
# OUTSIDE the repository, keyed by version and by the hash of the module files, so a warm
# run does nothing. Prints the bin directory on stdout.
#
#   hack/build-binaries.sh [--check]   --check: exit 1 when something would be built, build nothing
#   MLOPS_CACHE_DIR   cache root (default ~/.cache/mlops-operator)
set -euo pipefail
check=false; [[ "${1:-}" == "--check" ]] && check=true

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# the version a module's go.mod requires (single-line or block form)
required() { grep -Eo "$2 v[^ ]+" "$here/$1/go.mod" | head -1 | cut -d' ' -f2; }
K8S_VERSION="$(required k8s k8s.io/kubernetes)"
KWOK_VERSION="$(required kwok sigs.k8s.io/kwok)"
HELM_VERSION="$(required helm helm.sh/helm/v3)"
PROM_MODULE_VERSION="$(required prometheus github.com/prometheus/prometheus)"  # v0.316.0 = 3.16.0
# the Prometheus Operator whose PrometheusRule CRD the tests install (spec.slo's alerts)
PROM_OPERATOR_VERSION=v0.85.0
GATEWAY_API_VERSION=v1.6.3  # the HTTPRoute CRD a routed canary writes its weights into
cache="${MLOPS_CACHE_DIR:-$HOME/.cache/mlops-operator}"

key() { cat "$@" | sha256sum | cut -c1-12; }

build_k8s() {
  local out="$cache/k8s-$K8S_VERSION-$(key "$here/k8s/go.mod" "$here/k8s/go.sum" "$here/k8s/cmd/etcd/main.go")"
  if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" \
        && -x "$out/kube-controller-manager" && -x "$out/kube-scheduler" ]]; then
    echo "$out"; return
  fi
  local flags; flags="$(k8s_ldflags)"
  $check && exit 1
  echo ">> building Kubernetes $K8S_VERSION and etcd into $out (cold: tens of minutes on 2 cores)" >&2
  mkdir -p "$out.tmp"
  (cd "$here/k8s" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$flags" -o "$out.tmp/" \
      ./cmd/etcd \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl) >&2
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "$out"
}

k8s_ldflags() {
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
  local flags="-s -w"
  for p in $pkg $cpkg; do
    flags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# kubelet and kube-proxy for the real node: a module of their own, so that adding them did
# not change the control plane's key (hack/k8s) and force a rebuild of it.
build_node() {
  local v; v="$(required node k8s.io/kubernetes)"
  [[ "$v" == "$K8S_VERSION" ]] || { echo "hack/node pins $v, hack/k8s $K8S_VERSION" >&2; exit 2; }
  local out="$cache/node-$K8S_VERSION-$(key "$here/node/go.mod" "$here/node/go.sum")"
  if [[ -x "$out/kubelet" && -x "$out/kube-proxy" ]]; then echo "$out"; return; fi
  $check && exit 1
  echo ">> building kubelet and kube-proxy $K8S_VERSION into $out" >&2
  mkdir -p "$out.tmp"
  (cd "$here/node" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$(k8s_ldflags)" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy) >&2
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "$out"
}

build_one() { # name module-dir package version ldflags [build tags]
  local name="$1" dir="$2" pkg="$3" version="$4" tags="${6:-}"
  local inputs=("$here/$dir/go.mod" "$here/$dir/go.sum")
  [[ -f "$here/$dir/main.go" ]] && inputs+=("$here/$dir/main.go")  # a command of our own
  local out="$cache/$name-$version-$(key "${inputs[@]}")"
  if [[ ! -x "$out/$name" ]]; then
    $check && exit 1
    echo ">> building $name $version into $out" >&2
    mkdir -p "$out.tmp"
    # a failed build must fail the step: inside $(...) errexit alone would carry on
    (cd "$here/$dir" && CGO_ENABLED=0 go build -v -trimpath -tags "$tags" -ldflags "-s -w $5" \
       -o "$out.tmp/$name" "$pkg") >&2 || { echo ">> building $name failed" >&2; exit 1; }
    rm -rf "$out"; mv "$out.tmp" "$out"
  fi
  echo "$out"
}

bin="$cache/bin"
mkdir -p "$bin"
link_all() { $check && return; for f in "$1"/*; do ln -sf "$f" "$bin/$(basename "$f")"; done; }

d="$(build_k8s)"; link_all "$d"
d="$(build_node)"; link_all "$d"
d="$(build_one kwok kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION")"; link_all "$d"
if [[ -n "$HELM_VERSION" ]]; then
  d="$(build_one helm helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION")"; link_all "$d"
fi
# kstatus (sigs.k8s.io/cli-utils), the tests' judge of the objects' health as Flux reads it
d="$(build_one kstatus kstatus . "$(required kstatus sigs.k8s.io/cli-utils)" "")"; link_all "$d"
# Prometheus with only the Kubernetes service discovery (Debian's package has none)
d="$(build_one prometheus prometheus github.com/prometheus/prometheus/cmd/prometheus "$PROM_MODULE_VERSION" \
  "-X github.com/prometheus/common/version.Version=$PROM_MODULE_VERSION -X github.com/prometheus/common/version.Branch=module" \
  remove_all_sd,enable_kubernetes_sd)"; link_all "$d"
# kwok run standalone needs its Stages: take the defaults kwokctl uses (fast node
# initialisation, heartbeat with lease, fast pod lifecycle) from the kwok module itself.
rule_crd="$bin/prometheusrules-crd-$PROM_OPERATOR_VERSION.yaml"
route_crd="$bin/httproutes-crd-$GATEWAY_API_VERSION.yaml"
if $check; then [[ -f "$bin/kwok-stages.yaml" && -f "$rule_crd" && -f "$route_crd" ]]; exit; fi
if [[ ! -f "$route_crd" ]]; then
  # the standard channel's HTTPRoute CRD, as the Gateway API project publishes it
  gw_src="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  cp "$gw_src/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$route_crd.$$.tmp"
  mv "$route_crd.$$.tmp" "$route_crd"
fi
if [[ ! -f "$rule_crd" ]]; then
  # the CRD as the Prometheus Operator publishes it, from its Go module (the module proxy)
  op_src="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  cp "$op_src/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$rule_crd.$$.tmp"
  mv "$rule_crd.$$.tmp" "$rule_crd"
fi
kwok_src="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
{
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$kwok_src/kustomize/stage/$f"
  done
} > "$bin/kwok-stages.yaml.tmp" && mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
echo "$bin"
