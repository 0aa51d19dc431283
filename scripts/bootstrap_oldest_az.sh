#!/usr/bin/env bash
# Set up (or refresh) the second virtualenv the compatibility smoke set (tests/compat/) runs through: the oldest
# azure-cli release this extension supports (azext_metadata.json's azext.minCliCoreVersion), installed as users
# install it, with nothing of this repo in it. The extension goes in later, per test run, the way a user adds it:
# `az extension add --source <wheel>`.
#
#   - .venv-az-oldest (or $BASTION_NATIVE_OLDEST_AZ_VENV), same Python as .venv;
#   - azure-cli at the minimum, and azure-core at the oldest release azure-mgmt-network 33.x accepts (through
#     azure-mgmt-core 1.6's azure-core>=1.32.0): an older az ships an older azure-core, and the az's copy is the one
#     the extension imports (azure-cli appends the extension's folder to sys.path behind its own packages).
#
# Cached by a stamp of the pins: a second run with nothing changed takes well under a second, under a minute the
# first time. Called by scripts/test.sh; BASTION_NATIVE_SKIP_OLDEST_AZ=1 skips it (the smoke set then skips).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BASTION_NATIVE_OLDEST_AZ_VENV:-$repo/.venv-az-oldest}"
log="$repo/.bootstrap-oldest-az.log"

say() { printf '[bootstrap-oldest-az] %s\n' "$*" >&2; }

if [ "${BASTION_NATIVE_SKIP_OLDEST_AZ:-}" = "1" ]; then
  say "skipped (BASTION_NATIVE_SKIP_OLDEST_AZ=1)"
  exit 0
fi

oldest="$(sed -n 's/.*"azext.minCliCoreVersion": *"\([^"]*\)".*/\1/p' "$repo/azext_bastion_native/azext_metadata.json")"
[ -n "$oldest" ] || { say "no azext.minCliCoreVersion in azext_metadata.json"; exit 1; }
pins=("azure-cli==$oldest" "azure-core==1.32.0")

# The main venv's interpreter (its real executable, so both venvs run the same Python).
main_python="${BASTION_NATIVE_VENV:-$repo/.venv}/bin/python"
py="${PYTHON:-python3}"
if [ -x "$main_python" ]; then
  py="$("$main_python" -c 'import sys; print(sys._base_executable)')"
fi

stamp="$venv/.bastion-native-oldest-az-stamp"
want_stamp="$(printf '%s\n' "${pins[@]}" "$("$py" -c 'import sys; print(sys.version)')" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -x "$venv/bin/az" ]; then
  say "ready: $venv (azure-cli $oldest)"
  exit 0
fi

: > "$log"
rm -rf "$venv"
# uv (installed into the main venv by scripts/bootstrap.sh) takes under a minute; pip, the fallback, a few.
# --seed: the venv gets pip, which `az extension add` runs.
uv="$(dirname "$main_python")/uv"
say "installing azure-cli $oldest into $venv"
if ! { [ -x "$uv" ] && "$uv" venv -q --seed -p "$py" "$venv" >>"$log" 2>&1 \
         && "$uv" pip install -q --python "$venv/bin/python" --compile-bytecode "${pins[@]}" >>"$log" 2>&1; }; then
  say "uv could not (see $log); pip does instead, a few minutes"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}" >>"$log" 2>&1 \
    || { say "pip install failed; see $log"; tail -20 "$log" >&2; rm -rf "$venv"; exit 1; }
fi
installed="$("$venv/bin/python" -c 'from azure.cli.core import __version__; print(__version__)' 2>>"$log")" \
  || { say "the installed azure-cli does not import; see $log"; tail -20 "$log" >&2; exit 1; }
[ "$installed" = "$oldest" ] || { say "pip installed azure-cli-core $installed, not $oldest"; exit 1; }
echo "$want_stamp" > "$stamp"
say "ready: $venv (azure-cli $oldest)"
