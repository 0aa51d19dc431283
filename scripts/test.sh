#!/usr/bin/env bash
# Set everything up (scripts/bootstrap.sh) and run the whole suite: house checks (flake8, pylint), then
# pytest (unit, emulator, end to end). Extra arguments go to pytest, e.g. `scripts/test.sh -k tunnel`.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh" || exit 1
venv="${BASTION_NATIVE_VENV:-$repo/.venv}"
cd "$repo"
status=0
echo "== flake8"
"$venv/bin/python" -m flake8 azext_bastion_native || status=1
echo "== pylint"
"$venv/bin/python" -m pylint --rcfile=pylintrc azext_bastion_native || status=1
echo "== pytest"
"$venv/bin/python" -m pytest "$@"
rc=$?
# pytest's 5 means "no tests collected": a suite that ran nothing is a failure here.
if [ "$rc" -ne 0 ]; then status=1; fi
exit "$status"
