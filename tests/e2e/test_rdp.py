"""Issue 7 end to end, Linux client: `az network bastion rdp` opens a tunnel to the VM's 3389 and starts a local
RDP client - a real xfreerdp (under Xvfb, /auth-only) against a real xrdp when they are installed - or, with none
installed, keeps the tunnel open and says how to connect. No Bastion session or temp file is left behind.
The Windows path (gateway .rdp file + mstsc) is covered by tests/unit/test_rdp.py."""

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

pytestmark = pytest.mark.e2e

RG = 'demo-rg'
BASTION = 'demo-bastion'
WIN_VM = 'win-vm'
RDP_TOOLS = {'xrdp': shutil.which('xrdp') or ('/usr/sbin/xrdp' if os.path.exists('/usr/sbin/xrdp') else None),
             'xfreerdp': shutil.which('xfreerdp'), 'xvfb-run': shutil.which('xvfb-run')}


@pytest.fixture
def run_dirs(tmp_path):
    home, tmp, bin_dir = tmp_path / 'home', tmp_path / 'tmp', tmp_path / 'bin'
    for directory in (home, tmp, bin_dir):
        directory.mkdir()
    return {'HOME': str(home), 'TMPDIR': str(tmp), 'BIN': str(bin_dir)}


def _rdp_args(emulator, *extra):
    return ['network', 'bastion', 'rdp', '-g', RG, '-n', BASTION, '--target-resource-id',
            emulator.resource_id('Microsoft.Compute/virtualMachines', WIN_VM), *extra]


def _env(az, run_dirs, path, **extra):
    env = dict(az.env, HOME=run_dirs['HOME'], TMPDIR=run_dirs['TMPDIR'], PATH=path)
    env.update(extra)
    return env


def _assert_clean(emulator, run_dirs):
    assert emulator.get('/_emulator/sessions').json() == []
    assert os.listdir(run_dirs['TMPDIR']) == []


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def xrdp_server(tmp_path_factory):
    """A real xrdp on a loopback port, with its own config and log (Debian's recipe)."""
    missing = [name for name, path in RDP_TOOLS.items() if not path]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install xrdp freerdp2-x11 xvfb)")
    workdir = tmp_path_factory.mktemp('xrdp')
    port = _free_port()
    log_path = workdir / 'xrdp.log'
    config = []
    for line in open('/etc/xrdp/xrdp.ini', encoding='utf-8').read().splitlines():
        if line.startswith('port=3389'):
            line = f'port=tcp://127.0.0.1:{port}'
        elif line.startswith('fork='):
            line = 'fork=false'          # one process to stop; each test makes one connection
        elif line.startswith('LogFile='):
            line = f'LogFile={log_path}'
        elif line.startswith('EnableSyslog='):
            line = 'EnableSyslog=false'
        config.append(line)
    (workdir / 'xrdp.ini').write_text('\n'.join(config) + '\n')
    process = subprocess.Popen([RDP_TOOLS['xrdp'], '--nodaemon', '--config', str(workdir / 'xrdp.ini')],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.skip('xrdp did not start listening')
    yield port, log_path
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()


def test_real_freerdp_completes_rdp_through_the_tunnel(az, emulator, xrdp_server, run_dirs):
    """az starts the first xfreerdp on PATH with /v:127.0.0.1:<tunnel port>; this one is a wrapper that adds
    what a headless test needs (Xvfb, /auth-only, throwaway credentials) and runs the real client."""
    port, log_path = xrdp_server
    emulator.set_vm_endpoint(WIN_VM, 3389, '127.0.0.1', port)
    wrapper = os.path.join(run_dirs['BIN'], 'xfreerdp')
    with open(wrapper, 'w', encoding='utf-8') as handle:
        handle.write(f'#!/bin/sh\nexec {RDP_TOOLS["xvfb-run"]} -a {RDP_TOOLS["xfreerdp"]} /auth-only "$@" '
                     '/u:nobody /p:not-a-password /cert:ignore\n')
    os.chmod(wrapper, 0o755)
    log_before = log_path.read_text(errors='replace') if log_path.exists() else ''
    # a desktop session's DISPLAY (the wrapper's xvfb-run opens its own)
    result = subprocess.run([az.executable, *_rdp_args(emulator)], capture_output=True, text=True, timeout=120,
                            env=_env(az, run_dirs, f"{run_dirs['BIN']}:/usr/bin:/bin", DISPLAY=':0'), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    server_log = log_path.read_text(errors='replace')[len(log_before):]
    # xrdp saw a whole RDP connection sequence: the client's capability sets arrive after TLS and MCS.
    assert 'xrdp_caps_process' in server_log, server_log[-2000:]
    _assert_clean(emulator, run_dirs)


def _read_lines(stream, lines):
    for line in stream:
        lines.put(line)


def test_without_rdp_client_the_tunnel_stays_open_and_says_how(az, emulator, echo_server, run_dirs):
    _tunnel_stays_open_with_the_hint(az, emulator, echo_server, run_dirs, 'No RDP client was found',
                                     _env(az, run_dirs, run_dirs['BIN'], DISPLAY=':0'))


def test_without_a_display_no_rdp_client_is_started_and_the_tunnel_stays_open(az, emulator, echo_server, run_dirs):
    """Over ssh to a Linux machine (no DISPLAY, no WAYLAND_DISPLAY) with FreeRDP installed: starting it would only
    end in "failed to open display"; the documented fallback instead."""
    started = os.path.join(run_dirs['HOME'], 'xfreerdp-started')
    for program in ('xfreerdp', 'wlfreerdp'):
        path = os.path.join(run_dirs['BIN'], program)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(f'#!/bin/sh\necho "$0" >> {started}\necho "failed to open display" >&2\nexit 131\n')
        os.chmod(path, 0o755)
    env = _env(az, run_dirs, f"{run_dirs['BIN']}:/usr/bin:/bin")
    for variable in ('DISPLAY', 'WAYLAND_DISPLAY'):
        env.pop(variable, None)
    _tunnel_stays_open_with_the_hint(az, emulator, echo_server, run_dirs, 'No display here', env)
    assert not os.path.exists(started)


def _tunnel_stays_open_with_the_hint(az, emulator, echo_server, run_dirs, words, env):
    emulator.set_vm_endpoint(WIN_VM, 3389, echo_server.host, echo_server.port)
    process = subprocess.Popen([az.executable, *_rdp_args(emulator)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True).start()
    try:
        hint = ''
        deadline = time.monotonic() + 60
        while words not in hint and time.monotonic() < deadline:
            try:
                hint = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, 'az exited before opening the tunnel'
        assert 'xfreerdp /v:127.0.0.1:' in hint
        port = int(re.search(r'127\.0\.0\.1:(\d+)', hint).group(1))
        with socket.create_connection(('127.0.0.1', port), timeout=10) as conn:
            conn.sendall(b'rdp-bytes')
            received = b''
            while len(received) < 9:
                chunk = conn.recv(64)
                assert chunk, 'the tunnel closed the connection'
                received += chunk
        assert received == b'rdp-bytes'
        process.send_signal(signal.SIGINT)      # the hint says: Ctrl+C closes the tunnel
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    _assert_clean(emulator, run_dirs)


def test_entra_rdp_from_linux_is_refused_naming_the_row(az, emulator, run_dirs):
    result = subprocess.run([az.executable, *_rdp_args(emulator, '--auth-type', 'aad')], capture_output=True,
                            text=True, timeout=60, env=_env(az, run_dirs, '/usr/bin:/bin'), check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'Linux native client' in result.stderr and 'Entra ID' in result.stderr
    # what to do instead fits rdp (whose --auth-type is password or aad), and the table is named by its page
    assert 'ssh-key' not in result.stderr and 'drop --auth-type aad' in result.stderr
    assert 'Configure Bastion for native client connections' in result.stderr and 'seed' not in result.stderr


def test_rdp_refused_in_cloud_shell(az, emulator, run_dirs):
    result = subprocess.run([az.executable, *_rdp_args(emulator)], capture_output=True, text=True, timeout=60,
                            env=_env(az, run_dirs, '/usr/bin:/bin', ACC_CLOUD='1'), check=False)
    assert result.returncode != 0
    assert 'Cloud Shell' in result.stderr and 'portal' in result.stderr
