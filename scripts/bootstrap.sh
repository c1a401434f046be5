#!/usr/bin/env bash
# Everything the example and the test suite need, each step skipped when already done:
#   1. a virtual env in .venv with this package (editable) and its dev tools,
#   2. a Docker engine (scripts/engine-up.sh),
#   3. QEMU emulation for linux/arm64 images (scripts/emulation.sh: qemu-user-static, binfmt_misc),
#   4. the base images the Dockerfiles build FROM (scripts/base-images.sh),
#   5. Debian's skopeo, with which the tests copy images to OCI image layouts (as CI makes them).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
python=${PYTHON:-python3}
stamp=.venv/.slimimage-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Debian's python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv .venv
    else
      say "cannot create a virtual env with $python; install python3-venv (or set PYTHON)"; exit 1
    fi
  fi
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pytest-slimimage and its dev tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" >"$stamp"
else
  say ".venv is up to date"
fi

bash scripts/engine-up.sh
bash scripts/emulation.sh
bash scripts/base-images.sh

if ! command -v skopeo >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's skopeo (the archive tests make OCI image layouts with it)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo >/dev/null
  else
    say "skopeo is missing and cannot be installed here (needs root and apt-get): the OCI-layout tests will fail"
  fi
fi
