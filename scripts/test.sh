#!/usr/bin/env bash
# The project's test suite: unit, plugin (pytester) and integration tests on a real engine.
#   bash scripts/test.sh [pytest args...]
# The engine is required: if it cannot be reached, the engine-backed tests error, not skip.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/bootstrap.sh"
cd "$here"
exec .venv/bin/python -m pytest --slimimage-require-engine "$@"
