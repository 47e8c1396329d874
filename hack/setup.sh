#!/usr/bin/env bash
# The one idempotent set-up step every Make target runs first. On a fresh machine it installs
# everything; on a warm one it checks stamps and returns in about a second.
#   hack/setup.sh [python] [binaries] [node] [images]     (default: the first three)
#
# Each step that has work to do prints one line when it starts and one when it ends (with its
# elapsed time), and a progress line at least every 30 s while it runs; its whole output goes
# to a log file under $MLOPS_CACHE_DIR/logs/, whose path is printed, and is shown only when the
# step fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
what=("$@"); [[ ${#what[@]} -eq 0 ]] && what=(python binaries node)
cache="${MLOPS_CACHE_DIR:-$HOME/.cache/mlops-operator}"
logs="$cache/logs"
mkdir -p "$logs"
sudo=""; [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && sudo=sudo

# step NAME PROGRESS-FN COMMAND...: run COMMAND with its output in a log file; PROGRESS-FN
# LOG prints what it is doing now (one line) for the 30-second progress lines.
step() {
  local name="$1" progress="$2"; shift 2
  local log; log="$logs/$name-$(date +%Y%m%d-%H%M%S).log"
  local t0=$SECONDS
  echo ">> setup: $name (log: $log)" >&2
  "$@" >"$log" 2>&1 &
  local pid=$! last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - last >= 30 )); then
      last=$SECONDS
      echo "   setup: $name, $(( SECONDS - t0 ))s: $("$progress" "$log")" >&2
    fi
  done
  local rc=0; wait "$pid" || rc=$?
  if (( rc != 0 )); then
    echo ">> setup: $name FAILED after $(( SECONDS - t0 ))s (exit $rc); the end of $log:" >&2
    tail -n 60 "$log" >&2
    exit "$rc"
  fi
  echo ">> setup: $name done in $(( SECONDS - t0 ))s" >&2
}

last_line() { tail -n 1 "$1" | cut -c1-120; }
pip_progress() { echo "$(grep -c -E '^(Downloading| \+ )' "$1" || true) packages downloaded or installed; $(last_line "$1")"; }
go_progress() { # go build -v prints each package it compiles; hack/build-binaries.sh says which build
  local what; what="$(grep -E '^>> building' "$1" | tail -n 1 | cut -c4- | sed -E 's/ into .*//')"
  echo "${what:-checking}; $(grep -c -v -E '^(>>|go: )' "$1" || true) packages compiled, now $(last_line "$1")"
}

python_env() {
  local py="${PYTHON:-python3}" stamp=.venv/.stamp
  # the recipe's name in the key: a .venv an older recipe made is made again
  local want; want="$( { cat pyproject.toml constraints.txt; echo "uv, bytecode"; } | sha256sum | cut -c1-16)"
  if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then return; fi
  python_install() {
    [[ -x .venv/bin/python ]] || "$py" -m venv .venv
    # uv links each package from its cache: the ~200 packages install in about 27 s on a 2-core
    # machine, where pip took 164 s. --compile-bytecode, because these machines set
    # PYTHONDONTWRITEBYTECODE=1: without .pyc files written here every process of the tests
    # (each pipeline task, server, worker) would compile what it imports from source, again and
    # again (a CI run without them was 10-40% slower per test). constraints.txt pins every
    # version, for .venv and the images alike (images/), uv's own included.
    .venv/bin/pip install -q -c constraints.txt uv
    UV_SYSTEM_CERTS=1 .venv/bin/uv pip install --compile-bytecode --python .venv/bin/python \
      -c constraints.txt -e '.[runtime,pipelines,test,dev]'
  }
  step python-env pip_progress python_install
  echo "$want" > $stamp
}

binaries() {
  # a warm cache answers in well under a second; only a build is worth a step line
  if bash hack/build-binaries.sh --check >/dev/null 2>&1; then return; fi
  step go-binaries go_progress bash hack/build-binaries.sh
}

apt_install() { # packages...
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -q --no-install-recommends "$@"
}

# The real kubelet node (hack/realnode.py) and image builds without Docker (hack/images.sh).
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack
               buildah mmdebstrap gcc libc6-dev)
node() {
  local missing=() p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -ne 0 && -z $sudo ]]; then
    echo ">> setup: no root and no sudo: skipping the real node's packages (${missing[*]}); the cluster runs kwok nodes only" >&2
    return
  fi
  step debian-node last_line apt_install "${missing[@]}"
}

# the runtime and operator images (hack/images.sh), for the real node; `make images`, `make test`
images() {
  if bash hack/images.sh --check >/dev/null 2>&1; then return; fi
  step images last_images_line bash hack/images.sh
}
last_images_line() { grep -E '^\[images\]' "$1" | tail -n 1 | cut -c1-120; }

for w in "${what[@]}"; do
  case $w in
    python) python_env ;;
    binaries) binaries ;;
    node) node ;;
    images) images ;;
    *) echo "unknown setup part: $w" >&2; exit 2 ;;
  esac
done
