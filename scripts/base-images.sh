#!/usr/bin/env bash
# Make the base images the example project and the tests build FROM, offline.
#
#   bash scripts/base-images.sh        # idempotent: an image that exists is never rebuilt
#
# Each image is tagged with the name a user with a registry would pull, so the example
# Dockerfiles read exactly as such a user writes them. For each image: present locally ->
# nothing; else pullable -> pulled; else made here from Debian's packages:
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm, imported
#   gcc:latest            FROM debian:bookworm-slim + gcc, libc6-dev
#   busybox:latest        FROM scratch + Debian's busybox-static, applets installed
#   arm64v8/busybox:latest  the same for linux/arm64 (busybox-static:arm64), built with BuildKit
#                         under QEMU emulation (scripts/emulation.sh); Docker Hub's name for it
# Every image made here carries the label io.github.pytest-slimimage.base=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
label="io.github.pytest-slimimage.base=1"
say() { printf 'base-images: %s\n' "$*" >&2; }

# The legacy builder: Debian's client (engine-matched) when present, BuildKit off
# (a newer client without buildx refuses to build with BuildKit on).
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_BUILDKIT=0

need_root_apt() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "cannot make $1 here: it needs root and apt-get (Debian). Pull or build $1 yourself, then run this again."
    exit 1
  fi
}

apt_install() {  # apt_install CMD PACKAGE: install PACKAGE if CMD is missing
  command -v "$1" >/dev/null 2>&1 && return 0
  need_root_apt "$2"
  say "installing Debian's $2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# 0: present or pulled; 1: must be made here.
have_or_pull() {
  if present "$1"; then say "$1: present"; return 0; fi
  if timeout 120 "$DOCKER" pull -q "$1" >/dev/null 2>&1; then say "$1: pulled"; return 0; fi
  return 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! have_or_pull debian:bookworm-slim; then
  need_root_apt debian:bookworm-slim
  apt_install debootstrap debootstrap
  say "debian:bookworm-slim: debootstrap minbase bookworm (about 30 s)"
  debootstrap --variant=minbase bookworm "$tmp/rootfs" >"$tmp/debootstrap.log" 2>&1 || {
    tail -n 20 "$tmp/debootstrap.log" >&2; exit 1; }
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
  tar -C "$tmp/rootfs" -c . | "$DOCKER" import \
    --change "LABEL $label" --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$tmp/rootfs"
  say "debian:bookworm-slim: made"
fi

if ! have_or_pull gcc:latest; then
  say "gcc:latest: FROM debian:bookworm-slim + gcc libc6-dev (about 20 s)"
  mkdir -p "$tmp/gcc"
  cat >"$tmp/gcc/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
CMD ["bash"]
DOCKERFILE
  "$DOCKER" build -q --label "$label" -t gcc:latest "$tmp/gcc" >/dev/null
  say "gcc:latest: made"
fi

if ! have_or_pull busybox:latest; then
  # Debian's busybox-static ships a statically linked /bin/busybox (the plain `busybox`
  # package is dynamic and would not run in scratch).
  if ! dpkg -s busybox-static >/dev/null 2>&1; then
    need_root_apt busybox:latest
    say "installing Debian's busybox-static"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  fi
  say "busybox:latest: FROM scratch + busybox-static"
  mkdir -p "$tmp/busybox"
  cp /bin/busybox "$tmp/busybox/busybox"
  cat >"$tmp/busybox/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
DOCKERFILE
  "$DOCKER" build -q --label "$label" -t busybox:latest "$tmp/busybox" >/dev/null
  say "busybox:latest: made"
fi

if ! have_or_pull arm64v8/busybox:latest; then
  # BuildKit looks a base up by name and platform: an arm64 stage needs an arm64 image, which
  # the engine's store (one image per tag) keeps under its own name, as Docker Hub does.
  need_root_apt arm64v8/busybox:latest
  bash "$here/scripts/emulation.sh"  # the RUN step below runs the arm64 busybox
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding Debian's arm64 architecture (packages for linux/arm64 images)"
    dpkg --add-architecture arm64
  fi
  mkdir -p "$tmp/busybox-arm64"
  ( cd "$tmp/busybox-arm64"
    # the download lands in this private folder: apt's sandbox user could not write there
    get() { apt-get download -qq -o APT::Sandbox::User=root busybox-static:arm64 >/dev/null; }
    get 2>/dev/null || { apt-get update -qq; get; }
    dpkg-deb -x busybox-static_*_arm64.deb root
    cp root/bin/busybox busybox )
  cat >"$tmp/busybox-arm64/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
DOCKERFILE
  say "arm64v8/busybox:latest: FROM scratch + busybox-static:arm64 (BuildKit, --platform linux/arm64)"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --platform linux/arm64 --label "$label" \
    -t arm64v8/busybox:latest -f "$tmp/busybox-arm64/Dockerfile" "$tmp/busybox-arm64" >/dev/null
  say "arm64v8/busybox:latest: made"
fi
