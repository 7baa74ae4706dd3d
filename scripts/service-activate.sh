#!/usr/bin/env bash
# The service's start (deploy/drop-packet.service, ExecStartPost): once the
# mount is ready, writes each command of the config file (# comments, blank
# lines skipped), then `activate`. A command the file refuses fails the start
# and leaves it inactive.   service-activate.sh MOUNTPOINT CONFIG
set -euo pipefail
entry="$1/mooc/net/drop-packet" conf="$2"
for _ in $(seq 300); do [ -e "$entry" ] && break; sleep 0.1; done
[ -e "$entry" ] || { echo "drop-packet: $entry did not appear" >&2; exit 1; }
if [ -f "$conf" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    command="$(echo "${line%%#*}" | xargs)"  # without the comment and the spaces around
    [ -n "$command" ] || continue
    if ! echo "$command" > "$entry"; then
      echo "drop-packet: $conf: '$command': $(sed -n 's/^  last-error: //p' "$entry")" >&2
      exit 1
    fi
  done < "$conf"
fi
echo activate > "$entry"
