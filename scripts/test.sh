#!/usr/bin/env bash
# Set everything up (scripts/bootstrap.sh, and scripts/bootstrap_oldest_az.sh for the oldest supported azure-cli)
# and run the whole suite: house checks (flake8, pylint, mypy), then pytest (unit, emulator, end to end, and the smoke
# set through the oldest az in tests/compat). Extra arguments go to pytest, e.g. `scripts/test.sh -k tunnel`.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh" || exit 1
bash "$repo/scripts/bootstrap_oldest_az.sh" || exit 1
# The smoke set fails rather than skips when that venv is missing (BASTION_NATIVE_SKIP_OLDEST_AZ=1 skips both).
[ "${BASTION_NATIVE_SKIP_OLDEST_AZ:-}" = "1" ] || export BASTION_NATIVE_REQUIRE_OLDEST_AZ=1
venv="${BASTION_NATIVE_VENV:-$repo/.venv}"
cd "$repo"
status=0
# The house checks (flake8, pylint, mypy) run at low priority beside pytest, using the CPU its workers leave idle;
# their output follows pytest's, and pytest's closing line is repeated last.
checks_log="$(mktemp)"
trap 'rm -f "$checks_log" "$checks_log.pytest"' EXIT
(
  checks=0
  echo "== flake8"
  nice -n 10 "$venv/bin/python" -m flake8 azext_bastion_native || checks=1
  echo "== pylint"
  nice -n 10 "$venv/bin/python" -m pylint --rcfile=pylintrc azext_bastion_native || checks=1
  echo "== mypy"
  nice -n 10 "$venv/bin/python" -m mypy azext_bastion_native || checks=1
  exit "$checks"
) > "$checks_log" 2>&1 < /dev/null &
checks_pid=$!
echo "== pytest (the house checks run beside it)"
# Four workers, each with its own emulator and sshd, on this 2-core machine: an e2e test spends much of its time
# waiting (on az, ssh, a timeout it provokes), so two workers left a third of the CPU idle. A file's tests stay on one
# worker so that its module fixtures are built once. BASTION_NATIVE_TEST_WORKERS=0 runs serially.
workers="${BASTION_NATIVE_TEST_WORKERS:-4}"
if [ "$workers" = "0" ]; then
  "$venv/bin/python" -m pytest "$@" | tee "$checks_log.pytest"
else
  "$venv/bin/python" -m pytest -n "$workers" --dist loadfile "$@" | tee "$checks_log.pytest"
fi
rc=${PIPESTATUS[0]}
# pytest's 5 means "no tests collected": a suite that ran nothing is a failure here.
if [ "$rc" -ne 0 ]; then status=1; fi
wait "$checks_pid" || status=1
cat "$checks_log"
echo "== pytest, again"
tail -n 1 "$checks_log.pytest"
exit "$status"
