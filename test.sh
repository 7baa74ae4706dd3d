#!/usr/bin/env bash
# Sets up what is missing (as mount.sh does, plus test tools), then runs every
# test layer: unit (no root), FUSE (real mount, fake tracer), kernel (real BPF,
# namespaces). Usage: sudo ./test.sh [pytest args]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/setup.sh" --test
cd "$here"
exec "$here/.venv/bin/python" -m pytest -v -rs -p no:cacheprovider "${@:-tests}"
