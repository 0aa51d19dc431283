#!/usr/bin/env bash
# Set up (or refresh) everything the demo and the tests need, on a fresh Debian-like machine:
#   - system packages: openssh-server (sshd for end-to-end tests), sshpass, netcat-openbsd, chromium (forward's
#     SOCKS5 end-to-end; BASTION_NATIVE_SKIP_BROWSER=1 leaves it out), xrdp + freerdp2-x11 + xvfb (RDP
#     end-to-end), installed with apt-get when running as root; otherwise the tests that need them skip
#     and say why;
#   - a virtualenv (.venv, or $BASTION_NATIVE_VENV) with azure-cli and the dev requirements;
#   - the emulator package (editable) and the extension as an azure-cli dev extension (egg-info in the repo,
#     found through AZURE_EXTENSION_DEV_SOURCES).
# Idempotent: a second run with nothing changed takes a second or two.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BASTION_NATIVE_VENV:-$repo/.venv}"
log="$repo/.bootstrap.log"
: > "$log"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
UV_VERSION=0.13.8       # the installer of both venvs (this one's and scripts/bootstrap_oldest_az.sh's)

want_pkgs=()
# Debian's python3 makes virtualenvs only with python3-venv (ensurepip's wheels).
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ] && command -v dpkg >/dev/null 2>&1; then
  dpkg -s python3-venv >/dev/null 2>&1 || want_pkgs+=(python3-venv)
fi
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || want_pkgs+=(openssh-server)
command -v ssh >/dev/null 2>&1 || want_pkgs+=(openssh-client)
command -v sshpass >/dev/null 2>&1 || want_pkgs+=(sshpass)
[ -x /bin/nc.openbsd ] || want_pkgs+=(netcat-openbsd)     # nc -X 5: ssh through forward's SOCKS5 (e2e)
if [ "${BASTION_NATIVE_SKIP_BROWSER:-}" != "1" ]; then     # headless Chromium through forward's SOCKS5 (e2e)
  command -v chromium >/dev/null 2>&1 || want_pkgs+=(chromium)
fi
if [ "${BASTION_NATIVE_SKIP_RDP:-}" != "1" ]; then
  [ -x /usr/sbin/xrdp ] || want_pkgs+=(xrdp)
  command -v xfreerdp >/dev/null 2>&1 || want_pkgs+=(freerdp2-x11)
  command -v xvfb-run >/dev/null 2>&1 || want_pkgs+=(xvfb)
fi
if [ "${#want_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${want_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${want_pkgs[@]}"; } >>"$log" 2>&1; then
      say "apt-get could not install ${want_pkgs[*]} (see $log); the tests that need them will skip"
    fi
  else
    say "not root: cannot install ${want_pkgs[*]}; the tests that need them will skip and say why"
  fi
fi

# The interpreter: $PYTHON, else the distribution's /usr/bin/python3, else python3 on PATH. The tests are mostly
# az start-ups, and Debian's build starts az about a third faster than a plain source build (pyenv's) here.
if [ -n "${PYTHON:-}" ]; then py="$PYTHON"
elif [ -x /usr/bin/python3 ]; then py=/usr/bin/python3
else py=python3
fi
base="$("$py" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
if [ -x "$venv/bin/python" ] \
   && [ "$("$venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')" != "$base" ]; then
  say "recreating $venv on $base"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv $venv"
  "$py" -m venv "$venv" >>"$log" 2>&1 \
    || { say "$py -m venv failed (on Debian: apt-get install python3-venv); see $log"; exit 1; }
fi
stamp="$venv/.bastion-native-stamp"
want_stamp="$(cat "$repo/requirements-dev.txt" "$repo/setup.py" "$repo/emulator/pyproject.toml" \
              "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ]; then
  say "installing Python packages (azure-cli 2.91.0 and the dev requirements; under a minute the first time)"
  # uv installs (and compiles) azure-cli's few hundred packages several times faster than pip; pip is the fallback.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >>"$log" 2>&1 || true
  if ! { [ -x "$venv/bin/uv" ] && "$venv/bin/uv" pip install -q --python "$venv/bin/python" --compile-bytecode \
           -r "$repo/requirements-dev.txt" >>"$log" 2>&1; }; then
    say "uv could not install the packages (see $log); pip does instead, a few minutes"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$repo/requirements-dev.txt" >>"$log" 2>&1 \
      || { say "pip install failed; see $log"; tail -20 "$log" >&2; exit 1; }
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$repo/emulator" >>"$log" 2>&1 \
    || { say "installing the emulator failed; see $log"; tail -20 "$log" >&2; exit 1; }
  echo "$want_stamp" > "$stamp"
fi
# The extension as a dev extension: azure-cli finds it through the egg-info beside setup.py.
(cd "$repo" && "$venv/bin/python" setup.py -q egg_info >>"$log" 2>&1) \
  || { say "setup.py egg_info failed; see $log"; exit 1; }
say "ready: $venv"
