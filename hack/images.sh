#!/usr/bin/env bash
# `make images`: the runtime image and the operator image (with the pipelines extra, which the
# local backend needs), from the unchanged images/*.Dockerfile.
#
# - With a Docker engine: docker build, as a Docker user would.
# - Without one (our machines): buildah on a Python base image made here with mmdebstrap (no
#   registry is reachable), then loaded into the real node's containerd (hack/realnode.py)
#   under the names that `make deploy` and the runtime-image setting use. containerd reads a
#   bare `mlops-operator/runtime:dev` as `docker.io/mlops-operator/runtime:dev`, so that is
#   the name the images get.
#
# Cached by content: the base by its recipe, each image by the files it is built from (stamps
# under $MLOPS_CACHE_DIR/images); buildah's layer cache keeps the dependency layer, so a code
# change rebuilds only the thin layer with the project's own code. A warm run with nothing
# changed does no build and no import.
#   hack/images.sh [--check]   --check: exit 1 when an image would be built, build nothing
#   MLOPS_IMAGES_FORCE=1   build even when the stamps match
set -euo pipefail
check=false; [[ "${1:-}" == "--check" ]] && check=true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${MLOPS_CACHE_DIR:-$HOME/.cache/mlops-operator}/images"
mkdir -p "$cache"
RUNTIME=docker.io/mlops-operator/runtime:dev
OPERATOR=docker.io/mlops-operator/operator:dev-pipelines
say() { echo "[images] $*" >&2; }
t0=$SECONDS
# one build at a time on this machine (the tests call this too)
exec 9>"$cache/.lock"
flock 9

# load NAME ARCHIVE KEY: import into the real node's containerd when it runs and lacks this build
load() {
  local name="$1" archive="$2" key="$3"
  local sock="${MLOPS_NODE_HOST_DIR:-/run/mlops-operator-node}/containerd/containerd.sock"
  local ctr=(ctr --address "$sock" --namespace k8s.io)
  # a node ended without its `down` (a killed session) leaves the socket file behind: only a
  # containerd that answers counts as running (the tests load again once their node is up)
  if [[ ! -S $sock ]] || ! timeout 10 "${ctr[@]}" version >/dev/null 2>&1; then
    say "$name: no real node running here; not loaded (make cluster-up, then make images)"
    return
  fi
  local loaded="$cache/$(echo "$name" | tr '/:' '__').loaded"
  if [[ -f $loaded && "$(cat "$loaded")" == "$key" ]] && "${ctr[@]}" images ls -q | grep -qx "$name"; then
    return
  fi
  local t=$SECONDS tries=1 err="$cache/.import-err"
  # containerd's garbage collector can remove a parent snapshot while an import unpacks onto
  # it ("parent snapshot ... does not exist: not found", containerd/containerd#3787; seen once
  # here, loading right after a rebuild): the import is idempotent, so try again
  until "${ctr[@]}" images import "$archive" >/dev/null 2>"$err"; do
    if (( tries >= 3 )); then cat "$err" >&2; return 1; fi
    say "$name: import failed ($(tail -n 1 "$err" | cut -c1-160)); trying again"
    tries=$(( tries + 1 )); sleep 2
  done
  echo "$key" > "$loaded"
  say "$name: loaded into the node's containerd in $(( SECONDS - t ))s"
}

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  $check && exit 1  # docker's own layer cache makes a warm build quick
  say "Docker engine found: docker build"
  docker build -f images/runtime.Dockerfile -t mlops-operator/runtime:dev .
  docker build -f images/operator.Dockerfile -t mlops-operator/operator:dev .
  docker build -f images/operator.Dockerfile --build-arg EXTRAS=pipelines -t mlops-operator/operator:dev-pipelines .
  # a real node runs its own containerd, which does not see Docker's images: hand them over
  if [[ -S ${MLOPS_NODE_HOST_DIR:-/run/mlops-operator-node}/containerd/containerd.sock ]]; then
    for name in "$RUNTIME" "$OPERATOR"; do
      short="${name#docker.io/}"
      archive="$cache/$(echo "$name" | tr '/:' '__').docker.tar"
      docker save -o "$archive" "$short"
      load "$name" "$archive" "$(docker image inspect -f '{{.Id}}' "$short")"
      rm -f "$archive"
    done
  fi
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  say "no Docker engine, and buildah/mmdebstrap as root are not available here: no images built"
  exit 0
fi

# ---- the base: Debian's python3 (the Dockerfiles' `python` needs a `python` on PATH)
BASE_RECIPE="mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm; python -> python3"
base_key="$(echo "$BASE_RECIPE" | sha256sum | cut -c1-12)"
BASE="localhost/mlops/python-base:$base_key"
if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  $check && exit 1
  tar="$cache/base-$base_key.tar"
  if [[ ! -f $tar ]]; then
    say "making the base image with mmdebstrap (cold: about 3 minutes)"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
      --customize-hook='chroot "$1" ln -sf python3 /usr/bin/python' \
      bookworm "$tar.tmp" >&2
    mv "$tar.tmp" "$tar"
  fi
  c="$(buildah from scratch)"
  buildah add --quiet "$c" "$tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /usr/bin/python3 "$c"
  buildah commit --quiet "$c" "$BASE" >/dev/null
  buildah rm "$c" >/dev/null
  say "base image $BASE"
fi

# The build reaches PyPI the way this machine does: its CA bundle and pip configuration.
mounts=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[[ -f /etc/pip.conf ]] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)

# image NAME DOCKERFILE [BUILD-ARG...]: build (when its inputs changed) and load into the node
image() {
  local name="$1" file="$2"; shift 2
  local args=(--build-arg "PYTHON_IMAGE=$BASE")
  for a in "$@"; do args+=(--build-arg "$a"); done
  local key
  key="$( { echo "$BASE $*"; cat "$file" constraints.txt pyproject.toml README.md;
            find operator -type f ! -path "*/__pycache__/*" -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)"
  local stamp="$cache/$(echo "$name" | tr '/:' '__').stamp"
  local archive="$cache/$(echo "$name" | tr '/:' '__').oci.tar"
  if [[ "${MLOPS_IMAGES_FORCE:-}" != 1 && -f $stamp && "$(cat "$stamp")" == "$key" && -f $archive ]]; then
    $check && return
    say "$name: up to date"
  else
    $check && exit 1
    local t=$SECONDS
    say "$name: building from $file"
    buildah bud --quiet --layers --isolation chroot "${mounts[@]}" "${args[@]}" \
      -f "$file" -t "$name" . >&2
    rm -f "$archive"
    buildah push --quiet "$name" "oci-archive:$archive:$name" >&2
    echo "$key" > "$stamp"
    say "$name: built in $(( SECONDS - t ))s ($(du -m "$archive" | cut -f1) MB)"
  fi
  $check || load "$name" "$archive" "$key"
}

image "$RUNTIME" images/runtime.Dockerfile
image "$OPERATOR" images/operator.Dockerfile EXTRAS=pipelines
$check || say "done in $(( SECONDS - t0 ))s"
