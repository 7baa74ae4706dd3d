#!/usr/bin/env bash
# Installs what drop-packet needs on a fresh Debian/Ubuntu machine, idempotently,
# and never removes a package: system packages (BCC, FUSE, kernel headers, tools)
# and a virtualenv in .venv that sees the system's BCC.
# Usage: scripts/setup.sh [--test | --bench]   test tools too; or the benchmarks' (iperf3, bpftool, pyroute2)
#        scripts/setup.sh --print-plan [--test]  print the FUSE binding and the install command, change nothing
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv"
other_venv="$here/.venv-other-fuse"  # --test: the FUSE tests run on the other binding too
print_plan=0
[ "${1:-}" = "--print-plan" ] && { print_plan=1; shift; }
mode="${1:-}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# FUSE: Debian 12+ and Ubuntu 22.04+ ship fuse3, which Breaks/Replaces fuse (2):
# installing one removes the other and what depends on it. So libfuse3 through
# mfusepy wherever fuse 2 is not installed already; fuse 2 through fusepy where it is.
if installed fuse3 || ! installed fuse; then
  binding=fuse3 module=mfusepy fuse_packages=(fuse3 libfuse3-3) other=fuse2 other_module=fuse
else
  binding=fuse2 module=fuse fuse_packages=(fuse libfuse2) other=fuse3 other_module=mfusepy
fi
wanted=(python3-bpfcc libbpfcc "${fuse_packages[@]}" python3-venv python3-pip iproute2 kmod)
# the other binding's library only (libfuse2 and libfuse3-3 install side by side); gcc: a unit
# test compiles bpf/packet.h natively
[ "$mode" = "--test" ] && wanted+=(gcc nftables bpftool ethtool jq prometheus prometheus-node-exporter libfuse2 libfuse3-3)
[ "$mode" = "--bench" ] && wanted+=(iperf3 bpftool python3-pyroute2)

missing=()
for p in "${wanted[@]}"; do
  installed "$p" || missing+=("$p")
done
# --no-remove: apt fails rather than take a package away
install=(apt-get install -y -qq --no-remove)

if [ "$print_plan" = 1 ]; then
  echo "binding: $binding ($module)"
  echo "install: ${install[*]} ${missing[*]}"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "setup: run as root (sudo)" >&2; exit 1; }

# Headers only satisfy BCC's compiler (layouts come from BTF): the running
# kernel's if they exist, else the distribution's generic ones.
release="$(uname -r)"
need_headers=0
if [ ! -d "/lib/modules/$release/build/include" ] && [ ! -e /sys/kernel/kheaders.tar.xz ] &&
   ! ls -d /usr/src/linux-headers-*-common >/dev/null 2>&1; then
  need_headers=1
fi

if [ "${#missing[@]}" -gt 0 ] || [ "$need_headers" = 1 ]; then
  echo "setup: installing ${missing[*]} $([ "$need_headers" = 1 ] && echo headers)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ "${#missing[@]}" -gt 0 ] && "${install[@]}" "${missing[@]}" >/dev/null
  if [ "$need_headers" = 1 ]; then
    "${install[@]}" "linux-headers-$release" >/dev/null 2>&1 ||
      "${install[@]}" "linux-headers-$(dpkg --print-architecture)" >/dev/null 2>&1 ||
      "${install[@]}" linux-headers-generic >/dev/null
  fi
fi

# BCC is Debian's and imports only under the system python: a virtualenv made
# from /usr/bin/python3 sees its site-packages. One FUSE binding per virtualenv
# (procfs_fuse/fuse_binding.py takes mfusepy where it is importable).
make_venv() {  # DIR BINDING MODULE OTHER_MODULE EXTRAS
  local dir="$1" probe="import bcc, $3"
  [ "$mode" = "--test" ] && probe="$probe, pytest, hypothesis"
  if ! "$dir/bin/python" -c "$probe" 2>/dev/null; then
    echo "setup: virtualenv $dir ($2)"
    /usr/bin/python3 -m venv --system-site-packages "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -e "$here[$2$5]"
  fi
  if "$dir/bin/python" -c "import $4" 2>/dev/null; then
    "$dir/bin/pip" uninstall -q -y "$([ "$4" = fuse ] && echo fusepy || echo mfusepy)"
  fi
  "$dir/bin/python" -c "$probe"
}
if [ "$mode" = "--test" ]; then
  make_venv "$venv" "$binding" "$module" "$other_module" ",test"
  make_venv "$other_venv" "$other" "$other_module" "$module" ",test"
else
  make_venv "$venv" "$binding" "$module" "$other_module" ""
fi
