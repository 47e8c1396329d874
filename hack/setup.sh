#!/usr/bin/env bash
# The one idempotent set-up step every Make target runs first. On a fresh machine it installs
# everything; on a warm one it checks stamps and returns in about a second.
#   hack/setup.sh [python] [binaries] [debian]     (default: all three)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
what=("$@"); [[ ${#what[@]} -eq 0 ]] && what=(python binaries debian)

python_env() {
  local py="${PYTHON:-python3}" stamp=.venv/.stamp
  local want; want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then return; fi
  echo ">> setup: Python environment (.venv)" >&2
  [[ -x .venv/bin/python ]] || "$py" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip >&2
  .venv/bin/pip install --quiet -e '.[runtime,pipelines,test,dev]' >&2
  echo "$want" > $stamp
}

debian() {
  # Prometheus drives the drift trigger in tests (a real one, scraping a real runtime).
  command -v prometheus >/dev/null && return
  echo ">> setup: Debian packages (prometheus)" >&2
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
}

for w in "${what[@]}"; do
  case $w in
    python) python_env ;;
    binaries) bash hack/build-binaries.sh >/dev/null ;;
    debian) debian ;;
    *) echo "unknown setup part: $w" >&2; exit 2 ;;
  esac
done
