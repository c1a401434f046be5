#!/usr/bin/env bash
# The main job: the example project's image tests (the article's five images, checked).
#   bash scripts/example.sh [pytest args...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/bootstrap.sh"
cd "$here/example_project"
exec ../.venv/bin/python -m pytest --slimimage-require-engine "$@"
