#!/usr/bin/env bash
# Sets up what is missing (as mount.sh does, plus test tools), then runs every
# test, in two lanes:
#   1. this machine's kernel: unit (no root), FUSE (real mount, fake session; on
#      both FUSE bindings, fusepy/libfuse2 and mfusepy/libfuse3), kernel (real BPF, namespaces);
#   2. Debian's stock kernel (kprobes on) under QEMU: the kernel accounting tests.
# Usage: sudo ./test.sh            both lanes
#        sudo ./test.sh PYTEST_ARGS   lane 1 only, with those arguments
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/setup.sh" --test || exit 1
cd "$here"
if [ $# -gt 0 ]; then
  exec "$here/.venv/bin/python" -m pytest -v -rs -p no:cacheprovider "$@"
fi
echo "=== lane 1: this machine's kernel ($(uname -r))"
SECONDS=0
"$here/.venv/bin/python" -m pytest -v -rs -p no:cacheprovider tests
host=$?
other="$here/.venv-other-fuse/bin/python"
echo "=== lane 1, the FUSE tests again on the other binding: $("$other" -c \
  'from procfs_fuse import fuse_binding; print(fuse_binding.describe())')"
"$other" -m pytest -v -rs -p no:cacheprovider tests/fuse || host=1
host_time=$SECONDS
echo "=== lane 2: Debian's stock kernel under QEMU"
SECONDS=0
"$here/.venv/bin/python" tests/qemu/lane.py
guest=$?
echo "=== lane 1 exit $host ($host_time s), lane 2 exit $guest ($SECONDS s)"
[ "$host" = 0 ] && [ "$guest" = 0 ]
