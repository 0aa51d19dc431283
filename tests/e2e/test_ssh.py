"""Issue 7 end to end: `az network bastion ssh` with the real az, the emulator and a real sshd.

Each sign-in method runs a remote command and the command's exit code is ssh's. After success, failure and
Ctrl+C, no Bastion session is left in the emulator and no temporary file in the run's TMPDIR. Limitations
(Cloud Shell, Key Vault keys, key files) and the seed's table refuse before any request reaches Azure."""

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from tests.e2e.tunnel_helpers import sessions_drain

pytestmark = pytest.mark.e2e

RG = 'demo-rg'
BASTION = 'demo-bastion'
LINUX_VM_IP = '10.0.0.4'


@pytest.fixture(scope='module')
def vm(sshd_linux_vm):
    if sshd_linux_vm.sshd.password is None:
        pytest.skip('password sign-in needs the sshd fixture to run as root (it makes a password user)')
    return sshd_linux_vm


@pytest.fixture
def run_dirs(tmp_path):
    """A HOME (ssh's known_hosts) and a TMPDIR (where our private temp files go) per test."""
    home, tmp = tmp_path / 'home', tmp_path / 'tmp'
    home.mkdir()
    tmp.mkdir()
    return {'HOME': str(home), 'TMPDIR': str(tmp)}


def _ssh_args(vm, *extra, target=None):
    target = target or ['--target-resource-id', vm.vm_id]
    return ['network', 'bastion', 'ssh', '-g', RG, '-n', BASTION, *target, *extra]


def _known_hosts(run_dirs):
    """ssh args (after --) keeping host keys in the test's own file: ssh reads ~ from the passwd entry, not
    $HOME, so without this the tests would write to the real user's known_hosts."""
    return ['-o', f"UserKnownHostsFile={run_dirs['HOME']}/known_hosts", '-o', 'HashKnownHosts=no']


def _env(az, run_dirs, **extra):
    env = dict(az.env, **run_dirs)
    env.update(extra)
    return env


def _run(az, args, env, prefix=(), timeout=90):
    return subprocess.run([*prefix, az.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _sessions(emulator):
    return emulator.get('/_emulator/sessions').json()


def _assert_clean(emulator, run_dirs):
    assert _sessions(emulator) == []
    assert os.listdir(run_dirs['TMPDIR']) == []


def test_password_runs_remote_command_and_returns_its_exit_code(az, emulator, vm, run_dirs):
    env = _env(az, run_dirs, SSHPASS=vm.sshd.password)
    result = _run(az, _ssh_args(vm, '--auth-type', 'password', '--username', vm.sshd.user, '--',
                                *_known_hosts(run_dirs), 'echo signed-in-as-$(whoami); exit 7'), env,
                  prefix=['sshpass', '-e'])
    assert result.returncode == 7, result.stderr
    assert f'signed-in-as-{vm.sshd.user}' in result.stdout
    _assert_clean(emulator, run_dirs)
    # The host key is pinned under the VM's own name, not under 127.0.0.1:<this run's random port>.
    pinned = open(os.path.join(run_dirs['HOME'], 'known_hosts'), encoding='utf-8').read()
    assert pinned.startswith('bastion.') and 'linux-vm' in pinned and '127.0.0.1' not in pinned
    assert vm.sshd.host_key_pub.split()[1] in pinned


def test_changed_host_key_of_the_vm_is_refused(az, emulator, vm, run_dirs, ssh_key, tmp_path):
    """Pinned per VM: a different key under the VM's alias stops ssh, whatever local port the tunnel has."""
    other = tmp_path / 'other_host_key'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(other)], check=True)
    alias = 'bastion.' + vm.vm_id.lower().replace('/', '-').strip('-')
    with open(os.path.join(run_dirs['HOME'], 'known_hosts'), 'w', encoding='utf-8') as handle:
        handle.write(f"{alias} {(tmp_path / 'other_host_key.pub').read_text().split(' ')[0]} "
                     f"{(tmp_path / 'other_host_key.pub').read_text().split(' ')[1]}\n")
    result = _run(az, _ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key),
                                '--', *_known_hosts(run_dirs), 'echo should-not-run'), _env(az, run_dirs))
    assert result.returncode == 255
    assert 'should-not-run' not in result.stdout
    assert 'HOST IDENTIFICATION HAS CHANGED' in result.stderr
    _assert_clean(emulator, run_dirs)


def test_password_auth_offers_no_public_key(az, emulator, vm, run_dirs, ssh_key):
    """With a key ssh would find by default, --auth-type password still signs in with the password only."""
    ssh_dir = os.path.join(run_dirs['HOME'], '.ssh')
    os.makedirs(ssh_dir)
    shutil.copyfile(ssh_key, os.path.join(ssh_dir, 'id_ed25519'))
    os.chmod(os.path.join(ssh_dir, 'id_ed25519'), 0o600)
    env = _env(az, run_dirs, SSHPASS='wrong-password')
    result = _run(az, _ssh_args(vm, '--auth-type', 'password', '--username', vm.sshd.user, '--',
                                *_known_hosts(run_dirs), 'true'), env,
                  prefix=['sshpass', '-e'])
    assert result.returncode != 0      # the authorised default key was not offered, the wrong password failed
    _assert_clean(emulator, run_dirs)


def test_ssh_key_runs_remote_command(az, emulator, vm, run_dirs, ssh_key):
    result = _run(az, _ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key),
                                '--', *_known_hosts(run_dirs), 'echo key-ok; exit 3'), _env(az, run_dirs))
    assert result.returncode == 3, result.stderr
    assert 'key-ok' in result.stdout
    _assert_clean(emulator, run_dirs)


def test_ssh_key_by_ip_address(az, emulator, vm, run_dirs, ssh_key):
    result = _run(az, _ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key),
                                '--', *_known_hosts(run_dirs), 'echo ip-ok',
                                target=['--target-ip-address', LINUX_VM_IP]),
                  _env(az, run_dirs))
    assert result.returncode == 0, result.stderr
    assert 'ip-ok' in result.stdout
    _assert_clean(emulator, run_dirs)


def test_aad_signs_in_with_entra_certificate_and_leaks_nothing(az, emulator, vm, run_dirs):
    result = _run(az, _ssh_args(vm, '--auth-type', 'aad', '--debug', '--', *_known_hosts(run_dirs),
                                'echo cert-user=$(whoami); exit 5'),
                  _env(az, run_dirs))
    assert result.returncode == 5, result.stderr[-3000:]
    assert f'cert-user={vm.sshd.cert_user}' in result.stdout
    _assert_clean(emulator, run_dirs)       # ephemeral key and certificate are gone
    secrets = emulator.get('/_emulator/secrets').json()['secrets']
    assert secrets
    leaked = [s for s in secrets if s in result.stderr or s in result.stdout]
    assert leaked == []


def test_failed_sign_in_returns_ssh_exit_code_and_cleans_up(az, emulator, vm, run_dirs, tmp_path):
    stranger = tmp_path / 'stranger_key'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(stranger)], check=True)
    result = _run(az, _ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key',
                                str(stranger), '--', *_known_hosts(run_dirs), 'true'), _env(az, run_dirs))
    assert result.returncode == 255          # ssh's own code for a failed connection
    assert 'Traceback' not in result.stderr
    _assert_clean(emulator, run_dirs)


@pytest.mark.parametrize('auth', ['aad', 'ssh-key'])
def test_ctrl_c_leaves_no_session_and_no_temp_file(az, emulator, vm, run_dirs, ssh_key, auth):
    login = ['--auth-type', 'aad'] if auth == 'aad' else \
        ['--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key)]
    process = subprocess.Popen([az.executable, *_ssh_args(vm, *login, '--', *_known_hosts(run_dirs), 'sleep 60')],
                               env=_env(az, run_dirs),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sessions(emulator) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert _sessions(emulator), 'the ssh session never started'
        if auth == 'aad':
            assert os.listdir(run_dirs['TMPDIR']), 'the ephemeral key should exist while ssh runs'
        process.send_signal(signal.SIGINT)      # what Ctrl+C sends az (ssh gets it too from a terminal)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert 'Traceback' not in stderr
    _assert_clean(emulator, run_dirs)


# -- refusals: before any request reaches Azure -----------------------------------------------------------
def _refused_offline(az, emulator, args, env):
    emulator.delete('/_emulator/requests')
    result = _run(az, args, env)
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests']
            if not r['path'].startswith('/_emulator')]
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert seen == [], 'a refusal must come before any network call'
    return result.stderr


def test_cloud_shell_is_refused_with_pointer_to_portal(az, emulator, vm, run_dirs, ssh_key):
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'ssh-key', '--ssh-key', str(ssh_key)),
                              _env(az, run_dirs, ACC_CLOUD='1'))
    assert 'Cloud Shell' in stderr and 'portal' in stderr


@pytest.mark.parametrize('reference', [
    'https://myvault.vault.azure.net/secrets/sshkey',
    '@Microsoft.KeyVault(VaultName=myvault;SecretName=sshkey)',
    'myhsm.managedhsm.azure.net/keys/sshkey',
])
def test_key_vault_key_is_refused(az, emulator, vm, run_dirs, reference):
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'ssh-key', '--ssh-key', reference),
                              _env(az, run_dirs))
    assert 'Key Vault' in stderr and 'az keyvault secret download' in stderr


def test_too_open_key_file_is_refused_with_the_fix(az, emulator, vm, run_dirs, ssh_key):
    ssh_key.chmod(0o644)
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'ssh-key', '--ssh-key', str(ssh_key)),
                              _env(az, run_dirs))
    assert f'chmod 600 {ssh_key}' in stderr


def test_missing_key_file_is_refused(az, emulator, vm, run_dirs, tmp_path):
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'ssh-key', '--ssh-key',
                                                      str(tmp_path / 'nope')), _env(az, run_dirs))
    assert 'no such file' in stderr


def test_aad_with_ip_connect_is_refused(az, emulator, vm, run_dirs):
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'aad',
                                                      target=['--target-ip-address', LINUX_VM_IP]),
                              _env(az, run_dirs))
    assert 'Entra ID' in stderr and 'IP-based connect' in stderr and '--target-resource-id' in stderr


def test_custom_port_with_ip_connect_is_refused(az, emulator, vm, run_dirs):
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'password', '--resource-port', '2222',
                                                      target=['--target-ip-address', LINUX_VM_IP]),
                              _env(az, run_dirs))
    assert '2222' in stderr and 'IP-based connect' in stderr


def test_ssh_to_windows_vm_is_refused_naming_the_table_row(az, emulator, run_dirs):
    win_vm = emulator.resource_id('Microsoft.Compute/virtualMachines', 'win-vm')
    result = _run(az, ['network', 'bastion', 'ssh', '-g', RG, '-n', BASTION, '--target-resource-id', win_vm,
                       '--auth-type', 'password'], _env(az, run_dirs))
    assert result.returncode != 0
    assert 'Windows VM' in result.stderr and 'az network bastion tunnel' in result.stderr
    assert _sessions(emulator) == []


def test_stopped_vm_is_refused_naming_its_power_state(az, emulator, run_dirs):
    stopped = emulator.resource_id('Microsoft.Compute/virtualMachines', 'stopped-vm')
    result = _run(az, ['network', 'bastion', 'ssh', '-g', RG, '-n', BASTION, '--target-resource-id', stopped,
                       '--auth-type', 'password'], _env(az, run_dirs))
    assert result.returncode != 0
    assert 'not running' in result.stderr and 'stopped' in result.stderr and 'az vm start' in result.stderr
    assert _sessions(emulator) == []


# -- no loopback port: ssh reaches the tunnel through a private Unix socket ---------------------------------
def _listening_tcp_inodes():
    """Socket inodes of every TCP listener on this machine (IPv4 and IPv6)."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table, encoding='ascii') as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == '0A':                       # TCP_LISTEN
                    inodes.add(fields[9])
    return inodes


def _socket_inodes_of(pid):
    inodes = set()
    for name in os.listdir(f'/proc/{pid}/fd'):
        try:
            link = os.readlink(f'/proc/{pid}/fd/{name}')
        except OSError:
            continue
        if link.startswith('socket:['):
            inodes.add(link[len('socket:['):-1])
    return inodes


def _unix_socket_paths(inodes):
    with open('/proc/net/unix', encoding='utf-8', errors='replace') as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    return {row[7] for row in rows if len(row) > 7 and row[6] in inodes}


@pytest.mark.skipif(not os.path.exists('/proc/net/tcp'), reason='needs Linux /proc')
def test_ssh_reaches_the_tunnel_through_a_private_unix_socket_not_a_port(az, emulator, vm, run_dirs, ssh_key):
    """While ssh runs, az listens on no TCP port; its tunnel is a 0600 socket in a 0700 directory, gone after."""
    process = subprocess.Popen([az.executable, *_ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user,
                                                          '--ssh-key', str(ssh_key), '--', *_known_hosts(run_dirs),
                                                          'echo through-the-socket; sleep 3')],
                               env=_env(az, run_dirs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sessions(emulator) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert _sessions(emulator), 'the ssh session never started'
        az_sockets = _socket_inodes_of(process.pid)
        assert az_sockets & _listening_tcp_inodes() == set(), 'az listens on a TCP port'
        listening = _unix_socket_paths(az_sockets)
        directories = os.listdir(run_dirs['TMPDIR'])
        assert len(directories) == 1
        directory = os.path.join(run_dirs['TMPDIR'], directories[0])
        sockets = [os.path.join(directory, name) for name in os.listdir(directory)
                   if stat.S_ISSOCK(os.stat(os.path.join(directory, name)).st_mode)]     # beside e.g. owner.pid
        assert len(sockets) == 1 and sockets[0] in listening       # az's own listener, in the run's TMPDIR
        assert stat.S_IMODE(os.stat(sockets[0]).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-2000:]
    assert 'through-the-socket' in stdout
    _assert_clean(emulator, run_dirs)           # the socket and its directory are gone, and every session


# -- --ssh-key @FILE: azure-cli hands us the key's text; it must never be echoed ----------------------------
def _key_text_commands(vm, key_argument, tmp_path):
    upload_source = tmp_path / 'upload.txt'
    upload_source.write_text('x\n')
    target = ['-g', RG, '-n', BASTION, '--target-resource-id', vm.vm_id]
    return {
        'ssh': ['network', 'bastion', 'ssh', *target, '--auth-type', 'ssh-key', '--ssh-key', key_argument],
        'ssh-config': ['network', 'bastion', 'ssh-config', *target, '--ssh-key', key_argument],
        'file upload': ['network', 'bastion', 'file', 'upload', *target, '--auth-type', 'ssh-key',
                        '--ssh-key', key_argument, '--source', str(upload_source), '--destination', 'x.txt'],
        'file download': ['network', 'bastion', 'file', 'download', *target, '--auth-type', 'ssh-key',
                          '--ssh-key', key_argument, '--source', 'x.txt', '--destination', str(tmp_path)],
    }


@pytest.mark.parametrize('command, verbosity, key_file', [
    *[(command, verbosity, 'private') for command in ('ssh', 'ssh-config', 'file upload', 'file download')
      for verbosity in ([], ['--debug'])],
    ('ssh', [], 'public'),
])
def test_ssh_key_at_file_is_refused_without_echoing_the_key(az, emulator, vm, run_dirs, ssh_key, tmp_path,
                                                            verbosity, command, key_file):
    """`--ssh-key @~/.ssh/id_ed25519` reaches the extension as the key's text (azure-cli expands @FILE): refused
    with the fix, before any request, and no line of the key shows in stdout or stderr, even with --debug."""
    path = str(ssh_key) if key_file == 'private' else str(vm.sshd.client_key) + '.pub'
    key_lines = [line.strip() for line in open(path, encoding='utf-8').read().split('\n') if len(line.strip()) > 8]
    key_parts = [part for line in key_lines for part in line.split() if len(part) > 16]
    args = _key_text_commands(vm, '@' + path, tmp_path)[command] + verbosity
    emulator.delete('/_emulator/requests')
    result = _run(az, args, _env(az, run_dirs))
    assert [r for r in emulator.get('/_emulator/requests').json()['requests']
            if not r['path'].startswith('/_emulator')] == [], 'a refusal must come before any network call'
    assert result.returncode != 0
    assert 'without @' in result.stderr
    if not verbosity:
        assert 'Traceback' not in result.stderr     # with --debug azure-cli logs every error's traceback
    leaked = [part for part in key_lines + key_parts if part in result.stderr + result.stdout]
    assert leaked == []


# -- two VMs and a user's ssh_config: each VM gets its own name, so nothing of one VM's is used for another ----
def _own_key(vm, tmp_path, name):
    key = tmp_path / name
    shutil.copyfile(vm.sshd.client_key, key)
    key.chmod(0o600)
    return str(key)


def _multiplexing_config(tmp_path, control_directory, known_hosts):
    """A user config common in the wild: a loopback block for Vagrant/containers that turns pinning off, and
    connection sharing for every host (ControlPath with %r, %h and %p, a persisting master)."""
    config = tmp_path / 'ssh_config'
    config.write_text('Host 127.0.0.1 localhost\n'
                      '    UserKnownHostsFile /dev/null\n'
                      '    StrictHostKeyChecking no\n'
                      'Host *\n'
                      '    ControlMaster auto\n'
                      f'    ControlPath {control_directory}/%r@%h:%p\n'
                      '    ControlPersist 60\n'
                      f'    UserKnownHostsFile {known_hosts}\n'
                      '    HashKnownHosts no\n')
    return str(config)


def test_two_vms_with_a_users_control_master_each_run_on_their_own_vm_and_are_pinned(
        az, emulator, vm, sshd_second_linux_vm, run_dirs, tmp_path):
    """While `ssh` to VM A is open, `ssh` and `file upload` to VM B reach B (its marker, its sftp directory), not
    A's shared connection; a `Host 127.0.0.1` block does not turn pinning off; each VM's key is pinned."""
    vm_b = sshd_second_linux_vm
    # ControlPaths must fit a Unix socket path: a short directory of its own, as users keep them (~/.ssh/cm).
    control_directory = tempfile.mkdtemp(prefix='cm', dir='/tmp')
    known_hosts = os.path.join(run_dirs['HOME'], 'known_hosts')
    config = _multiplexing_config(tmp_path, control_directory, known_hosts)
    env = _env(az, run_dirs)
    login_a = ['--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', _own_key(vm, tmp_path, 'key_a')]
    login_b = ['--auth-type', 'ssh-key', '--username', vm_b.sshd.user,
               '--ssh-key', _own_key(vm_b, tmp_path, 'key_b')]
    holder = subprocess.Popen([az.executable, *_ssh_args(vm, *login_a, '--', '-F', config,
                                                         'echo marker-a=$VM_MARKER; sleep 120')],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.listdir(control_directory) and time.monotonic() < deadline and holder.poll() is None:
            time.sleep(0.2)
        masters = os.listdir(control_directory)
        assert len(masters) == 1, f'ssh to A did not start its master: {masters}'
        # The user's connection sharing works, per VM: A's master is named after A, not 127.0.0.1.
        assert '127.0.0.1' not in masters[0] and 'bastion-linux-vm-' in masters[0]

        to_b = _run(az, _ssh_args(vm_b, *login_b, '--', '-F', config, 'echo marker-b=$VM_MARKER'), env)
        assert to_b.returncode == 0, to_b.stderr[-2000:]
        assert f'marker-b={vm_b.marker}' in to_b.stdout

        source = tmp_path / 'for-b.txt'
        source.write_text('for B only\n')
        remote = f'two-vms-{os.getpid()}.txt'
        upload = _run(az, ['network', 'bastion', 'file', 'upload', '-g', RG, '-n', BASTION, '--target-resource-id',
                           vm_b.vm_id, *login_b, '--source', str(source), '--destination', remote,
                           '--', '-F', config], env)
        assert upload.returncode == 0, upload.stderr[-2000:]
        assert (vm_b.sftp_directory / remote).read_text() == 'for B only\n'
        assert holder.poll() is None, 'the ssh to A ended early'
    finally:
        holder.send_signal(signal.SIGINT)
        try:
            holder.communicate(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
            shutil.rmtree(control_directory, ignore_errors=True)
    pinned = open(known_hosts, encoding='utf-8').read()
    for target, sshd in ((vm, vm.sshd), (vm_b, vm_b.sshd)):
        alias = 'bastion.' + target.vm_id.lower().replace('/', '-').strip('-')
        assert f'{alias} {sshd.host_key_pub.split()[0]} {sshd.host_key_pub.split()[1]}' in pinned
    assert '127.0.0.1' not in pinned
    assert sessions_drain(emulator)


# -- nothing of ssh's may outlive the command: its tunnel ends when az returns ------------------------------
@pytest.mark.parametrize('background', [['-f', '-N'], ['-fN'], ['-o', 'ControlPersist=yes', '-N']],
                         ids=['-f', '-fN', 'ControlPersist'])
def test_backgrounding_ssh_is_refused_with_the_lasting_alternatives(az, emulator, vm, run_dirs, ssh_key,
                                                                    background):
    """`ssh -- -f -N -L ...` used to return 0 with the forward already dead (the in-process tunnel had ended)."""
    stderr = _refused_offline(az, emulator, _ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user,
                                                      '--ssh-key', str(ssh_key), '--', *_known_hosts(run_dirs),
                                                      *background, '-L', '18022:localhost:22'),
                              _env(az, run_dirs))
    assert 'az network bastion tunnel' in stderr and 'az network bastion ssh-config' in stderr
    _assert_clean(emulator, run_dirs)


def _parent_pid(pid):
    with open(f'/proc/{pid}/stat', encoding='ascii') as handle:
        return int(handle.read().rsplit(')', 1)[1].split()[1])


def _descends_from(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _parent_pid(pid)
    return False


def _pids_holding_unix_socket(path):
    """ssh binds its control socket under a temporary name (PATH.RANDOM), then renames it: /proc keeps the first."""
    with open('/proc/net/unix', encoding='utf-8', errors='replace') as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    inodes = {row[6] for row in rows if len(row) > 7 and (row[7] == path or row[7].startswith(path + '.'))}
    holders = set()
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if _socket_inodes_of(pid) & inodes:
                holders.add(int(pid))
        except OSError:
            continue
    return holders


@pytest.mark.skipif(not os.path.exists('/proc/net/unix'), reason='needs Linux /proc')
def test_a_users_control_persist_master_stays_in_the_foreground_of_the_command(
        az, emulator, vm, run_dirs, ssh_key, tmp_path):
    """`ControlPersist` in the user's config would fork the master off to the background, where it outlives az
    and the tunnel it runs over: our runs keep the master in the foreground, a child of az, gone with it."""
    control_directory = tempfile.mkdtemp(prefix='cm', dir='/tmp')
    config = _multiplexing_config(tmp_path, control_directory, os.path.join(run_dirs['HOME'], 'known_hosts'))
    process = subprocess.Popen([az.executable, *_ssh_args(vm, '--auth-type', 'ssh-key', '--username', vm.sshd.user,
                                                          '--ssh-key', str(ssh_key), '--', '-F', config,
                                                          'echo done; sleep 5')],
                               env=_env(az, run_dirs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.listdir(control_directory) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        masters = [os.path.join(control_directory, name) for name in os.listdir(control_directory)]
        assert len(masters) == 1, 'no master started'
        holders = _pids_holding_unix_socket(masters[0])
        assert holders and all(_descends_from(pid, process.pid) for pid in holders), 'the master left az'
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(control_directory, ignore_errors=True)
    assert process.returncode == 0, stderr[-2000:]
    assert 'done' in stdout
    _assert_clean(emulator, run_dirs)
