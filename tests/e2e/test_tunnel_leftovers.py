"""What a hard stop leaves behind, end to end with the real az, the emulator and a real sshd: SIGHUP (the terminal
closed) unwinds `az network bastion ssh` like SIGTERM, and after `kill -9` the next run removes the private temp
directory of the dead run, never that of a live one."""

import os
import signal
import subprocess
import time

import pytest

from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

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
