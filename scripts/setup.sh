#!/usr/bin/env bash
# Installs what drop-packet needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (BCC, FUSE, kernel headers, tools) and a virtualenv in .venv
# that sees the system's BCC.
# Usage: scripts/setup.sh [--test | --bench]  (test tools too; or the benchmark's: iperf3, bpftool)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv"
mode="${1:-}"

[ "$(id -u)" -eq 0 ] || { echo "setup: run as root (sudo)" >&2; exit 1; }

wanted=(python3-bpfcc libbpfcc fuse libfuse2 python3-venv python3-pip iproute2 kmod)
[ "$mode" = "--test" ] && wanted+=(nftables bpftool ethtool prometheus prometheus-node-exporter libfuse3-3)
[ "$mode" = "--bench" ] && wanted+=(iperf3 bpftool)

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
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
  # --no-remove: never take a package away (fuse Breaks fuse3); fail instead
  [ "${#missing[@]}" -gt 0 ] && apt-get install -y -qq --no-remove "${missing[@]}" >/dev/null
  if [ "$need_headers" = 1 ]; then
    apt-get install -y -qq --no-remove "linux-headers-$release" >/dev/null 2>&1 ||
      apt-get install -y -qq --no-remove "linux-headers-$(dpkg --print-architecture)" >/dev/null 2>&1 ||
      apt-get install -y -qq --no-remove linux-headers-generic >/dev/null
  fi
fi

# BCC is Debian's and imports only under the system python: the venv is made
# from /usr/bin/python3 and sees its site-packages.
probe="import bcc, fuse"
extra=""
if [ "$mode" = "--test" ]; then probe="$probe, pytest, hypothesis"; extra="[test]"; fi
if ! "$venv/bin/python" -c "$probe" 2>/dev/null; then
  echo "setup: virtualenv $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$here$extra"
fi
"$venv/bin/python" -c "$probe"
