#!/usr/bin/env bash
# Set everything up (scripts/bootstrap.sh) and run the demo against the local emulator: start the emulator and
# a real sshd, log the real `az` in, and walk through the extension's commands. Everything stops at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh"
venv="${BASTION_NATIVE_VENV:-$repo/.venv}"
exec "$venv/bin/python" "$repo/scripts/demo.py" "$@"
