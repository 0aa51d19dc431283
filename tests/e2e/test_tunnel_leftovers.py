"""What a hard stop leaves behind, end to end with the real az, the emulator and a real sshd: SIGHUP (the terminal
closed) unwinds `az network bastion ssh` like SIGTERM, after `kill -9` the next run removes the private temp
directory of the dead run, never that of a live one, and a tunnel or forward deletes the sessions a killed run left
open as it starts listening, not at its first connection."""

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.e2e.tunnel_helpers import HOST, RG, RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e

OWNER_FILE = 'owner.pid'


@pytest.fixture
def run_dirs(tmp_path):
    """The test's own TMPDIR (where our private directories go) and HOME (for ssh's known_hosts)."""
    (tmp_path / 'tmp').mkdir()
    return {'HOME': str(tmp_path), 'TMPDIR': str(tmp_path / 'tmp')}


def _login(az, command, vm, ssh_key):
    return [az.executable, 'network', 'bastion', *command, '-g', RG, '-n', HOST, '--target-resource-id', vm.vm_id,
            '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key)]


def _ssh(az, vm, ssh_key, run_dirs, remote_command):
    return [*_login(az, ['ssh'], vm, ssh_key), '--', '-o', f"UserKnownHostsFile={run_dirs['HOME']}/known_hosts",
            remote_command]


def _slow_upload(az, vm, ssh_key, run_dirs):
    """`file upload` of 2 MB at 100 kbit/s: still copying when the signal comes."""
    source = os.path.join(run_dirs['HOME'], 'two-megabytes.bin')
    with open(source, 'wb') as handle:
        handle.write(os.urandom(2 << 20))
    return [*_login(az, ['file', 'upload'], vm, ssh_key), '--source', source, '--destination', 'slow-upload.bin',
            '--', '-l', '100', '-o', f"UserKnownHostsFile={run_dirs['HOME']}/known_hosts"]


def _start(az, vm, ssh_key, run_dirs, emulator, argv=None):
    """An `az network bastion ssh ... sleep 60` (or ``argv``) in a process group of its own, once its Bastion
    session is up."""
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        argv or _ssh(az, vm, ssh_key, run_dirs, 'sleep 60'), env=dict(az.env, **run_dirs), start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not emulator.get('/_emulator/sessions').json():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-2000:]
        time.sleep(0.2)
    return process


def _private_dirs(run_dirs):
    return sorted(name for name in os.listdir(run_dirs['TMPDIR']) if name.startswith('az-bastion-'))


def _owner(run_dirs, name):
    with open(os.path.join(run_dirs['TMPDIR'], name, OWNER_FILE), encoding='ascii') as handle:
        return int(handle.read())


def _disconnect_every_session(az):
    ids = az('network', 'bastion', 'session', 'list', '-g', RG, '-n', HOST, '--query', '[].sessionId').json
    if ids:
        az('network', 'bastion', 'session', 'disconnect', '-g', RG, '-n', HOST, '--session-ids', *ids)


@pytest.mark.parametrize('command', ['ssh', 'file upload'])
def test_sighup_ends_the_command_with_129_leaving_no_session_or_temp_file(az, emulator, sshd_linux_vm, ssh_key,
                                                                          run_dirs, command):
    argv = _slow_upload(az, sshd_linux_vm, ssh_key, run_dirs) if command == 'file upload' else None
    process = _start(az, sshd_linux_vm, ssh_key, run_dirs, emulator, argv)
    try:
        process.send_signal(signal.SIGHUP)          # what closing the terminal sends az
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 129, stderr[-2000:]
    assert 'Traceback' not in stderr
    assert sessions_drain(emulator)
    assert _private_dirs(run_dirs) == []


def test_the_next_run_removes_a_killed_runs_directory_and_keeps_a_live_ones(az, emulator, sshd_linux_vm, ssh_key,
                                                                            run_dirs):
    killed = _start(az, sshd_linux_vm, ssh_key, run_dirs, emulator)
    try:
        [stale] = _private_dirs(run_dirs)
        assert _owner(run_dirs, stale) == killed.pid
    finally:
        os.killpg(killed.pid, signal.SIGKILL)       # az, ssh and the socket helper: no clean-up runs
        killed.communicate(timeout=30)
        _disconnect_every_session(az)               # the killed run's session: an admin (or idle policy) ends it
    assert _private_dirs(run_dirs) == [stale]       # left behind, as kill -9 leaves it
    foreign = os.path.join(run_dirs['TMPDIR'], 'az-bastion-not-ours')
    os.mkdir(foreign, 0o700)                        # no owner named: cannot be proven dead, stays

    live = _start(az, sshd_linux_vm, ssh_key, run_dirs, emulator)
    try:
        dirs = _private_dirs(run_dirs)
        assert stale not in dirs                    # the live run's start removed the dead run's directory
        [live_dir] = [name for name in dirs if name != 'az-bastion-not-ours']
        assert _owner(run_dirs, live_dir) == live.pid
        finished = subprocess.run(_ssh(az, sshd_linux_vm, ssh_key, run_dirs, 'echo third-run'),
                                  env=dict(az.env, **run_dirs), capture_output=True, text=True, timeout=90,
                                  check=False)
        assert finished.returncode == 0 and finished.stdout.strip() == 'third-run', finished.stderr[-2000:]
        assert live_dir in _private_dirs(run_dirs) and live.poll() is None     # another live run's: untouched
    finally:
        live.send_signal(signal.SIGINT)
        live.communicate(timeout=30)
    assert live.returncode == 130
    assert _private_dirs(run_dirs) == ['az-bastion-not-ours']
    assert sessions_drain(emulator)


def _listening_args(command, vm):
    if command == 'forward':
        return ('-L', f'0:{vm.vm_id}:22')
    return ('--target-resource-id', vm.vm_id, '--resource-port', '22', '--port', '0')


def _listening_port(running):
    return running.port if running.port is not None else running.ready['forwards'][0]['port']


@pytest.mark.parametrize('command', ['tunnel', 'forward'])
def test_a_session_left_by_a_killed_tunnel_is_deleted_by_the_next_one_while_it_waits_for_a_connection(
        az, emulator, sshd_linux_vm, tmp_path, command):
    assert sessions_drain(emulator)
    args = _listening_args(command, sshd_linux_vm)
    killed = RunningTunnel(az.env, *args, command=command, stderr_path=tmp_path / 'killed.err')
    try:
        with socket.create_connection(('127.0.0.1', _listening_port(killed)), timeout=60) as live:
            live.settimeout(60)
            assert live.recv(64).startswith(b'SSH-'), killed.stderr()[-2000:]    # relayed: its session is used
            killed.process.kill()                   # kill -9: no clean-up runs
            killed.process.wait(30)
    finally:
        killed.stop()
    [left] = emulator.get('/_emulator/sessions').json()
    assert not sessions_drain(emulator, timeout=2)  # left on the host by the killed run

    waiting = RunningTunnel(az.env, *args, command=command, stderr_path=tmp_path / 'waiting.err')
    try:
        assert sessions_drain(emulator, timeout=30), (left, waiting.stderr()[-2000:])
        assert waiting.process.poll() is None       # deleted while it listens, never connected to
    finally:
        waiting.stop()
    assert waiting.process.returncode == 130, waiting.stderr()[-2000:]
    journal = os.path.join(az.env['AZURE_CONFIG_DIR'], 'bastion-sessions')
    assert [name for name in os.listdir(journal) if name.startswith('session-')] == []
