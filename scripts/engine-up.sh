#!/usr/bin/env bash
# Bring up a Docker engine for pytest-slimimage, only if none answers.
#
#   bash scripts/engine-up.sh            # idempotent; says what it did
#
# - If `docker info` answers (DOCKER_HOST honoured), nothing is touched.
# - Otherwise, on a Debian-like machine as root: install Debian's docker.io if
#   dockerd is missing, start dockerd detached (setsid, log in a file, stdin from
#   /dev/null), and wait (bounded) until it answers.
# - When it starts a daemon, it writes the daemon's pid to $SLIMIMAGE_ENGINE_PIDFILE
#   (default: .slimimage/dockerd.pid) so a caller such as .ci/run can stop exactly it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="${SLIMIMAGE_STATE_DIR:-$here/.slimimage}"
pidfile="${SLIMIMAGE_ENGINE_PIDFILE:-$state/dockerd.pid}"
logfile="${SLIMIMAGE_ENGINE_LOG:-$state/dockerd.log}"
wait_s="${SLIMIMAGE_ENGINE_WAIT:-60}"

say() { printf 'engine-up: %s\n' "$*" >&2; }

# Debian's own client speaks to the engine it ships; a newer client found first on
# PATH works too for `info`, so any docker client will do here.
docker_cli() {
  if command -v docker >/dev/null 2>&1; then docker "$@"; elif [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else return 127; fi
}

if docker_cli info >/dev/null 2>&1; then
  say "a Docker engine already answers (${DOCKER_HOST:-unix:///var/run/docker.sock}); leaving it alone"
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
  say "DOCKER_HOST=$DOCKER_HOST does not answer, and it is not a local socket this script could start."
  say "Start that engine, or unset DOCKER_HOST to let this script start a local one."
  exit 1
fi

if [ "$(id -u)" != 0 ]; then
  say "no Docker engine answers and this script is not running as root, so it cannot start one."
  say "Install and start Docker Engine (https://docs.docker.com/engine/install/), or run this as root on Debian."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no Docker engine answers and this is not a Debian-like machine (no apt-get)."
    say "Install Docker Engine with your system's package manager and start it, then run this again."
    exit 1
  fi
  say "installing Debian's docker.io (dockerd is missing)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

mkdir -p "$state"
say "starting dockerd (log: $logfile)"
# setsid + redirected std streams: the daemon must never hold a caller's output open.
setsid dockerd >"$logfile" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

deadline=$((SECONDS + wait_s))
until docker_cli info >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then
    say "dockerd exited before answering; the end of its log:"
    tail -n 30 "$logfile" >&2 || true
    rm -f "$pidfile"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "dockerd did not answer within ${wait_s}s; the end of its log:"
    tail -n 30 "$logfile" >&2 || true
    exit 1
  fi
  sleep 0.5
done
say "dockerd is up (pid $pid, storage $(docker_cli info --format '{{.Driver}}' 2>/dev/null || echo '?'))"
