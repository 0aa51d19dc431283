"""`az network bastion file upload / download` end to end: the real az runs the real scp over its tunnel to a
real sshd through the emulator. After success and failure no Bastion session and no temp file is left."""

import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

SIZE = 5 * 1024 * 1024


@pytest.fixture
def run_dirs(tmp_path):
    """A TMPDIR per test (our private temp files would land there) and a known_hosts file of its own."""
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    return {'TMPDIR': str(tmp), 'known_hosts': str(tmp_path / 'known_hosts')}


def _file(az, run_dirs, direction, vm, *args, prefix=(), env_extra=None):
    argv = [*prefix, az.executable, 'network', 'bastion', 'file', direction, '-g', RG, '-n', HOST,
            '--target-resource-id', vm.vm_id, *args,
            # ssh reads ~ from the passwd entry, not $HOME: keep host keys in the test's own file
            '--', '-o', f"UserKnownHostsFile={run_dirs['known_hosts']}"]
    env = dict(az.env, TMPDIR=run_dirs['TMPDIR'], **(env_extra or {}))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _key_login(vm, ssh_key):
    return ['--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key)]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _assert_clean(emulator, run_dirs):
    assert sessions_drain(emulator)
    assert os.listdir(run_dirs['TMPDIR']) == []


def test_upload_then_download_5_mb_keeps_the_bytes(az, emulator, sshd_linux_vm, ssh_key, run_dirs, tmp_path):
    original = tmp_path / 'random.bin'
    original.write_bytes(os.urandom(SIZE))
    remote = f'file-transfer-{os.getpid()}.bin'
    up = _file(az, run_dirs, 'upload', sshd_linux_vm, *_key_login(sshd_linux_vm, ssh_key),
               '--source', str(original), '--destination', remote)
    assert up.returncode == 0, up.stderr[-2000:]
    assert up.stdout == ''
    assert re.search(rf'^Uploaded {SIZE} bytes in [0-9.]+ s', up.stderr, re.MULTILINE), up.stderr
    _assert_clean(emulator, run_dirs)

    downloads = tmp_path / 'downloads'
    downloads.mkdir()
    down = _file(az, run_dirs, 'download', sshd_linux_vm, *_key_login(sshd_linux_vm, ssh_key),
                 '--source', remote, '--destination', str(downloads))
    assert down.returncode == 0, down.stderr[-2000:]
    assert re.search(rf'^Downloaded {SIZE} bytes in [0-9.]+ s', down.stderr, re.MULTILINE), down.stderr
    assert _sha256(downloads / remote) == _sha256(original)
    _assert_clean(emulator, run_dirs)


def test_password_upload_of_a_directory(az, emulator, sshd_linux_vm, run_dirs, tmp_path):
    if sshd_linux_vm.sshd.password is None:
        pytest.skip('password sign-in needs the sshd fixture to run as root (it makes a password user)')
    tree = tmp_path / f'tree-{os.getpid()}'
    (tree / 'sub').mkdir(parents=True)
    (tree / 'a.txt').write_text('alpha\n')
    (tree / 'sub' / 'b.txt').write_text('beta\n')
    up = _file(az, run_dirs, 'upload', sshd_linux_vm, '--auth-type', 'password', '--username',
               sshd_linux_vm.sshd.user, '--source', str(tree), '--destination', '/tmp', '--recursive',
               prefix=['sshpass', '-e'], env_extra={'SSHPASS': sshd_linux_vm.sshd.password})
    assert up.returncode == 0, up.stderr[-2000:]
    assert re.search(r'^Uploaded 11 bytes', up.stderr, re.MULTILINE), up.stderr
    back = tmp_path / 'back'
    down = _file(az, run_dirs, 'download', sshd_linux_vm, '--auth-type', 'password', '--username',
                 sshd_linux_vm.sshd.user, '--source', f'/tmp/{tree.name}', '--destination', str(back), '-r',
                 prefix=['sshpass', '-e'], env_extra={'SSHPASS': sshd_linux_vm.sshd.password})
    assert down.returncode == 0, down.stderr[-2000:]
    assert (back / 'sub' / 'b.txt').read_text() == 'beta\n' and (back / 'a.txt').read_text() == 'alpha\n'
    _assert_clean(emulator, run_dirs)


def test_missing_local_source_is_refused_before_any_request(az, emulator, sshd_linux_vm, ssh_key, run_dirs,
                                                            tmp_path):
    emulator.delete('/_emulator/requests')
    result = _file(az, run_dirs, 'upload', sshd_linux_vm, *_key_login(sshd_linux_vm, ssh_key),
                   '--source', str(tmp_path / 'nope.bin'), '--destination', 'nope.bin')
    assert result.returncode != 0
    assert "--source" in result.stderr and 'no such file or directory' in result.stderr
    assert 'Traceback' not in result.stderr
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests'] if not r['path'].startswith('/_emulator')]
    assert seen == []
    _assert_clean(emulator, run_dirs)


def test_missing_remote_path_returns_scps_exit_code(az, emulator, sshd_linux_vm, ssh_key, run_dirs, tmp_path):
    result = _file(az, run_dirs, 'download', sshd_linux_vm, *_key_login(sshd_linux_vm, ssh_key),
                   '--source', '/no/such/remote/file', '--destination', str(tmp_path / 'x'))
    assert result.returncode == 1, result.stderr[-2000:]       # scp's own exit code for a failed copy
    assert 'No such file' in result.stderr
    assert 'Traceback' not in result.stderr and 'Downloaded' not in result.stderr
    assert not (tmp_path / 'x').exists()
    _assert_clean(emulator, run_dirs)


@pytest.mark.parametrize('reference, env, words', [
    ('https://myvault.vault.azure.net/secrets/sshkey', {}, 'Key Vault'),
    (None, {'ACC_CLOUD': '1'}, 'Cloud Shell'),
])
def test_limitations_refused_before_any_request(az, emulator, sshd_linux_vm, ssh_key, run_dirs, tmp_path,
                                                reference, env, words):
    source = tmp_path / 'small.txt'
    source.write_text('x')
    emulator.delete('/_emulator/requests')
    result = _file(az, run_dirs, 'upload', sshd_linux_vm, '--auth-type', 'ssh-key', '--ssh-key',
                   reference or str(ssh_key), '--source', str(source), '--destination', 'small.txt', env_extra=env)
    assert result.returncode != 0 and words in result.stderr
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests'] if not r['path'].startswith('/_emulator')]
    assert seen == []


def test_ctrl_c_during_a_transfer_leaves_no_session(az, emulator, sshd_linux_vm, ssh_key, run_dirs, tmp_path):
    """scp is slowed to 2 Mbit/s (-l) so the interrupt lands mid-copy."""
    original = tmp_path / 'slow.bin'
    original.write_bytes(os.urandom(SIZE))
    argv = [az.executable, 'network', 'bastion', 'file', 'upload', '-g', RG, '-n', HOST, '--target-resource-id',
            sshd_linux_vm.vm_id, *_key_login(sshd_linux_vm, ssh_key), '--source', str(original),
            '--destination', f'slow-{os.getpid()}.bin', '--', '-l', '2000',
            '-o', f"UserKnownHostsFile={run_dirs['known_hosts']}"]
    process = subprocess.Popen(argv, env=dict(az.env, TMPDIR=run_dirs['TMPDIR']), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not emulator.get('/_emulator/sessions').json() and time.monotonic() < deadline \
                and process.poll() is None:
            time.sleep(0.2)
        assert emulator.get('/_emulator/sessions').json(), 'the transfer never started'
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGINT)       # a terminal's Ctrl+C reaches az and scp (one process group)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert 'Traceback' not in stderr and 'Uploaded' not in stderr
    _assert_clean(emulator, run_dirs)


@pytest.mark.skipif(os.name == 'nt', reason='POSIX terminals')
def test_on_a_terminal_scps_meter_goes_to_stderr_and_stdout_stays_empty(az, emulator, sshd_linux_vm, ssh_key,
                                                                        run_dirs, tmp_path):
    import fcntl
    import pty
    import termios
    original = tmp_path / 'meter.bin'
    original.write_bytes(os.urandom(256 * 1024))
    argv = [az.executable, 'network', 'bastion', 'file', 'upload', '-g', RG, '-n', HOST, '--target-resource-id',
            sshd_linux_vm.vm_id, *_key_login(sshd_linux_vm, ssh_key), '--source', str(original),
            '--destination', f'meter-{os.getpid()}.bin', '--', '-o', f"UserKnownHostsFile={run_dirs['known_hosts']}"]
    controller, terminal = pty.openpty()
    try:
        def own_terminal():     # as in a real terminal: az's session controls it, az's group is in front
            os.setsid()
            fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)
        process = subprocess.Popen(argv, env=dict(az.env, TMPDIR=run_dirs['TMPDIR']), stdout=subprocess.PIPE,
                                   stderr=terminal, stdin=subprocess.DEVNULL,
                                   preexec_fn=own_terminal)  # pylint: disable=subprocess-popen-preexec-fn
        os.close(terminal)
        seen = b''
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:         # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0, seen[-2000:]
    assert stdout == b''
    assert b'meter.bin' in seen and b'100%' in seen        # scp's own progress meter
    assert b'Uploaded' not in seen
    _assert_clean(emulator, run_dirs)
