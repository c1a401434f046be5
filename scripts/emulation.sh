#!/usr/bin/env bash
# QEMU user-mode emulation, so that the engine on this machine can run images of other
# platforms (linux/arm64 on an amd64 host) and BuildKit can run their RUN steps.
#
#   bash scripts/emulation.sh            # idempotent; says what it did
#
# The same thing `docker run --privileged tonistiigi/binfmt --install arm64` does, from
# Debian's packages (no registry needed):
#   1. Debian's qemu-user-static and binfmt-support, if qemu-aarch64-static is missing;
#   2. the binfmt_misc file system on /proc/sys/fs/binfmt_misc, if not mounted;
#   3. the qemu-aarch64 handler enabled, with the F (fix-binary) flag: the kernel opens the
#      emulator when the handler is registered, so it works inside containers, whose file
#      systems (scratch) have no /usr/bin/qemu-aarch64-static.
# A handler that is already enabled with the F flag is left as it is. The handler stays
# registered after the session (like the binfmt package's own): it is machine set-up.
set -euo pipefail

say() { printf 'emulation: %s\n' "$*" >&2; }
binfmt=/proc/sys/fs/binfmt_misc
arch=aarch64
entry="$binfmt/qemu-$arch"
emulator=/usr/bin/qemu-$arch-static
# the ELF header of an aarch64 executable (e_ident, e_type, e_machine=0xb7), as Debian registers it
magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

usable() { [ -r "$entry" ] && grep -qx enabled "$entry" && grep -q '^flags: .*F' "$entry"; }

if [ "$(uname -m)" = "$arch" ]; then
  say "this machine is $arch: nothing to emulate"; exit 0
fi
if usable; then
  say "qemu-$arch is registered with binfmt_misc (enabled, fix-binary): nothing to do"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "cannot set up emulation: it needs root (binfmt_misc). Images of linux/arm64 will not run here."
  exit 1
fi
if [ ! -x "$emulator" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "cannot install $emulator here (no apt-get); install QEMU user-mode emulation yourself"; exit 1
  fi
  say "installing Debian's qemu-user-static and binfmt-support"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
fi
if [ ! -e "$binfmt/register" ]; then
  say "mounting binfmt_misc on $binfmt"
  mount -t binfmt_misc binfmt_misc "$binfmt"
fi
if [ -e "$entry" ] && grep -q '^flags: .*F' "$entry"; then
  echo 1 >"$entry"
  say "qemu-$arch: enabled"
else
  if [ -e "$entry" ]; then
    echo -1 >"$entry"  # registered without fix-binary: useless in a container; register it again
  fi
  printf ':qemu-%s:M::%s:%s:%s:FP' "$arch" "$magic" "$mask" "$emulator" >"$binfmt/register"
  say "qemu-$arch: registered ($emulator, flags FP)"
fi
usable || { say "qemu-$arch did not register"; exit 1; }
