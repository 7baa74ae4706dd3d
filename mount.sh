#!/usr/bin/env bash
# Sets up what is missing, then mounts drop-packet in the background and
# returns once mnt/mooc/net/drop-packet is ready.
#   sudo ./mount.sh [--allow-other [--private]] [--node-root PATH] [MOUNTPOINT]
#        mount (default: mnt/ beside this script); only root may use it, unless
#        --allow-other: then others may read the report (not with --private), never write;
#        --node-root: the node's files that name pods and containers are under PATH (/)
#   sudo ./mount.sh -u [MOUNTPOINT]   unmount; the daemon detaches every hook and exits
#   sudo ./mount.sh --install-service   a systemd unit that mounts at /run/drop-packet/mnt
#        and activates with /etc/drop-packet/drop-packet.conf, from boot; started now
#   sudo ./mount.sh --remove-service    stops and removes it (the config file stays)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
unit=/etc/systemd/system/drop-packet.service

# deploy/drop-packet.service with this checkout's path
service_unit() { sed "s|@REPO@|$here|g" "$here/deploy/drop-packet.service"; }

unmount=0
daemon_options=()
while [ $# -gt 0 ]; do
  case "$1" in
    -u) unmount=1 ;;
    --allow-other|--private) daemon_options+=("$1") ;;
    --node-root) daemon_options+=("$1" "$(realpath -m "$2")"); shift ;;  # the daemon runs in $here
    --print-service) service_unit; exit 0 ;;
    --install-service)
      [ "$(id -u)" -eq 0 ] || { echo "mount.sh: run as root (sudo)" >&2; exit 1; }
      "$here/scripts/setup.sh"  # the virtualenv the unit runs
      service_unit > "$unit"
      mkdir -p /etc/drop-packet
      [ -e /etc/drop-packet/drop-packet.conf ] || cp "$here/deploy/drop-packet.conf" /etc/drop-packet/
      systemctl daemon-reload
      systemctl enable --now drop-packet.service
      echo "mount.sh: drop-packet.service runs; its filters: /etc/drop-packet/drop-packet.conf"
      exit 0 ;;
    --remove-service)
      [ "$(id -u)" -eq 0 ] || { echo "mount.sh: run as root (sudo)" >&2; exit 1; }
      systemctl disable --now drop-packet.service 2>/dev/null || true
      rm -f "$unit"
      systemctl daemon-reload
      echo "mount.sh: drop-packet.service removed (/etc/drop-packet/drop-packet.conf stays)"
      exit 0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "mount.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
mnt="$(realpath -m "${1:-$here/mnt}")"
run="$here/.run"
state="$run/$(echo "$mnt" | tr / _)"   # one pid and log per mount point
entry="$mnt/mooc/net/drop-packet"

[ "$(id -u)" -eq 0 ] || { echo "mount.sh: run as root (sudo)" >&2; exit 1; }

# fuse3's fusermount3 or fuse 2's fusermount, whichever the host has; root can umount
unmount_fuse() {  # [-z] MOUNTPOINT
  local lazy=()
  [ "$1" = "-z" ] && { lazy=(-z); shift; }
  if command -v fusermount3 >/dev/null; then fusermount3 -u "${lazy[@]}" "$1"
  elif command -v fusermount >/dev/null; then fusermount -u "${lazy[@]}" "$1"
  else umount ${lazy:+-l} "$1"
  fi
}

daemon_alive() { [ -f "$state.pid" ] && kill -0 "$(cat "$state.pid")" 2>/dev/null; }

wait_daemon_gone() {
  for _ in $(seq 100); do daemon_alive || return 0; sleep 0.1; done
  echo "mount.sh: daemon $(cat "$state.pid") still running" >&2; return 1
}

# A mount whose daemon died answers "Transport endpoint is not connected".
clear_stale() {
  if ! stat "$mnt" >/dev/null 2>&1 && mount | grep -q " $mnt "; then
    echo "mount.sh: clearing stale mount at $mnt"
    unmount_fuse -z "$mnt" 2>/dev/null || umount -l "$mnt"
  fi
}

if [ "$unmount" = 1 ]; then
  clear_stale
  if mountpoint -q "$mnt"; then unmount_fuse "$mnt"; fi
  wait_daemon_gone
  rm -f "$state.pid"
  exit 0
fi

"$here/scripts/setup.sh"
clear_stale
if mountpoint -q "$mnt"; then
  echo "mount.sh: already mounted at $mnt"; exit 0
fi
mkdir -p "$mnt" "$run"
# in $here: `python -m` imports the package of the caller's directory first, this checkout's only from here
(cd "$here" && MALLOC_ARENA_MAX=2 exec setsid "$here/.venv/bin/python" -m procfs_fuse mount "${daemon_options[@]}" \
  "$mnt" >>"$state.log" 2>&1 < /dev/null) &
echo $! > "$state.pid"
for _ in $(seq 300); do
  [ -e "$entry" ] && { echo "mount.sh: $entry ready (log: $state.log)"; exit 0; }
  daemon_alive || break
  sleep 0.1
done
echo "mount.sh: mount failed; the daemon's log says:" >&2
tail -n 20 "$state.log" >&2
exit 1
