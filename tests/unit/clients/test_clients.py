"""clients/: ssh argv, private temp files, the Entra SSH certificate, the foreground process runner."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from azext_bastion_native.clients import entra_cert, launch, ssh, tempfiles
from azext_bastion_native.clients.ssh import SshLogin

VM_ID = '/subscriptions/S1/resourceGroups/My-RG/providers/Microsoft.Compute/virtualMachines/Vm-1'


# -- ssh argv ------------------------------------------------------------------------------------------
def test_password_login_offers_nothing_but_password():
    argv = ssh.ssh_argv('/usr/bin/ssh', 40022, SshLogin('password', 'azureuser'), 'bastion.vm', name='bastion-vm-1')
    assert argv[:7] == ['/usr/bin/ssh', '-o', 'HostName=127.0.0.1', '-p', '40022', '-l', 'azureuser']
    assert 'PreferredAuthentications=password,keyboard-interactive' in argv
    assert 'PubkeyAuthentication=no' in argv
    assert '-i' not in argv
    assert argv[-1] == 'bastion-vm-1'


def test_key_login_uses_only_the_given_key():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('ssh-key', 'u', key_path='/k/id'), 'a')
    assert argv[argv.index('-i') + 1] == '/k/id'
    assert 'IdentitiesOnly=yes' in argv


def test_aad_login_passes_key_and_certificate():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('aad', 'alice', '/t/id_rsa', '/t/id_rsa-cert.pub'), 'a')
    assert argv[argv.index('-i') + 1] == '/t/id_rsa'
    assert 'CertificateFile=/t/id_rsa-cert.pub' in argv
    assert argv[argv.index('-l') + 1] == 'alice'


def test_user_arguments_follow_the_destination_verbatim():
    extra = ['-L', '8080:localhost:80', 'uptime', '&&', 'echo "a b"']
    argv = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'alias', extra, name='bastion-vm-1')
    assert argv[-len(extra) - 1:] == ['bastion-vm-1'] + extra
    assert '-l' not in argv      # no user: ssh's own default applies


def test_host_key_options_pin_the_vm_unless_the_user_overrides_them():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'bastion.vm')
    assert 'HostKeyAlias=bastion.vm' in argv and 'StrictHostKeyChecking=accept-new' in argv
    overridden = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'bastion.vm',
                              ['-o', 'stricthostkeychecking no', '-oHostKeyAlias=mine'])
    assert 'StrictHostKeyChecking=accept-new' not in overridden
    assert 'HostKeyAlias=bastion.vm' not in overridden
    assert overridden[-3:] == ['-o', 'stricthostkeychecking no', '-oHostKeyAlias=mine']


def test_the_destination_is_named_per_target_and_routed_by_our_options():
    """ssh is given a name per VM, never 127.0.0.1 (a user's `Host 127.0.0.1` block and %h/%C ControlPaths would
    apply to every VM); the route to the tunnel is on the command line, where it beats any ssh_config."""
    argv = ssh.ssh_argv('ssh', None, SshLogin('password'), 'bastion.vm', name='bastion-vm-1',
                        proxy_command='python -I proxy.py /run/s')
    assert argv[1:3] == ['-o', 'ProxyCommand=python -I proxy.py /run/s']
    assert argv[-1] == 'bastion-vm-1' and '127.0.0.1' not in ' '.join(argv)
    assert 'ControlPersist=no' in argv and argv.index('ControlPersist=no') < argv.index('bastion-vm-1')


def test_connection_name_differs_per_target_host_and_port_and_stays_short():
    host = 'bst-1.bastion.azure.com'
    first = ssh.connection_name(VM_ID, host, VM_ID, 22)
    assert first == ssh.connection_name(VM_ID.upper(), host.upper(), VM_ID.upper(), 22)     # ids: any case
    assert first.startswith('bastion-vm-1-') and len(first) <= 40
    others = {ssh.connection_name(VM_ID.replace('Vm-1', 'Vm-2'), host, VM_ID.replace('Vm-1', 'Vm-2'), 22),
              ssh.connection_name(VM_ID, host, VM_ID, 2222), ssh.connection_name(VM_ID, 'other.host', VM_ID, 22)}
    assert first not in others and len(others) == 3
    ip_target = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/bh-hostConnect/10.0.0.4'
    assert ssh.connection_name('10.0.0.4', host, ip_target, 22).startswith('bastion-10-0-0-4-')
    scale_set = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/' \
                'virtualMachines/3'
    assert ssh.connection_name(scale_set, host, scale_set, 22).startswith('bastion-web-3-')
    long_name = VM_ID.replace('Vm-1', 'a-very-long-virtual-machine-name-indeed')
    assert len(ssh.connection_name(long_name, host, long_name, 22)) <= 40


@pytest.mark.parametrize('args, found', [
    (['-f', '-N', '-L', '8080:localhost:80'], '-f'),
    (['-NfL', '8080:localhost:80'], '-NfL'),
    (['-L8080:localhost:80', '-fN'], '-fN'),
    (['-o', 'ControlPersist=yes'], '-o ControlPersist=yes'),
    (['-oControlPersist 10m'], '-o ControlPersist 10m'),
    (['-o', 'forkafterauthentication=yes'], '-o forkafterauthentication=yes'),
    (['-N', '-L', '8080:localhost:80'], None),
    (['-o', 'ControlPersist=no', '-o', 'ControlMaster=auto'], None),
    (['-l', '-f', 'uptime'], None),                     # '-f' is -l's value
    (['-F', 'cfg', 'tail', '-f', '/var/log/syslog'], None),      # the remote command's -f
    (['--', '-f'], None),
])
def test_background_options_are_found_among_the_options_only(args, found):
    assert ssh.background_option(args) == found


def test_host_key_alias_is_stable_per_vm_and_safe():
    alias = ssh.host_key_alias(VM_ID)
    assert alias == ssh.host_key_alias(VM_ID.upper())    # resource ids are case-insensitive
    assert alias != ssh.host_key_alias(VM_ID.replace('Vm-1', 'Vm-2'))
    assert alias.startswith('bastion.') and all(c.isalnum() or c in '.-_' for c in alias)
    assert ssh.host_key_alias('10.0.0.4') == 'bastion.10.0.0.4'
    assert ' ' not in ssh.host_key_alias('weird name,with comma')
    assert ',' not in ssh.host_key_alias('weird name,with comma')


def test_unknown_auth_type_is_an_error():
    with pytest.raises(ValueError):
        ssh.auth_options(SshLogin('kerberos'))


def test_missing_ssh_client_is_reported():
    with pytest.raises(ssh.SshClientNotFound):
        ssh.find_ssh(which=lambda _: None)
    assert ssh.find_ssh(which=lambda name: f'/opt/{name}') == '/opt/ssh'


# -- private temp files ------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_private_directory_is_0700_with_0600_files_and_is_removed():
    with tempfiles.private_directory() as directory:
        path = tempfiles.write_private_file(os.path.join(directory, 'secret'), 'data')
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, encoding='utf-8') as handle:
            assert handle.read() == 'data'
    assert not os.path.exists(directory)


def test_private_directory_is_removed_when_interrupted():
    with pytest.raises(KeyboardInterrupt):
        with tempfiles.private_directory() as directory:
            tempfiles.write_private_file(os.path.join(directory, 'key'), b'k')
            raise KeyboardInterrupt
    assert not os.path.exists(directory)


def test_private_file_never_overwrites_or_follows(tmp_path):
    existing = tmp_path / 'existing'
    existing.write_text('keep')
    with pytest.raises(FileExistsError):
        tempfiles.write_private_file(str(existing), 'new')
    assert existing.read_text() == 'keep'


# -- Entra SSH certificate ----------------------------------------------------------------------------------
def _ca_signing_fetcher(principals=(b'alice@contoso.com', b'second'), seen=None, cert_type=None):
    """A stand-in for Entra: signs the JWK's key with a throwaway CA, as the token endpoint does."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import SSHCertificateBuilder, SSHCertificateType
    import base64
    ca = ed25519.Ed25519PrivateKey.generate()

    def fetch(scopes, data):
        if seen is not None:
            seen.append((scopes, data))
        jwk = json.loads(data['req_cnf'])

        def number(value):
            return int.from_bytes(base64.urlsafe_b64decode(value + '=' * (-len(value) % 4)), 'big')
        public_key = rsa.RSAPublicNumbers(number(jwk['e']), number(jwk['n'])).public_key()
        now = int(time.time())
        builder = SSHCertificateBuilder().public_key(public_key).serial(1) \
            .type(cert_type or SSHCertificateType.USER).key_id(b'k').valid_after(now - 60).valid_before(now + 600)
        builder = builder.valid_principals(list(principals)) if principals else builder.valid_for_all_principals()
        return builder.sign(ca).public_bytes().split()[1].decode()
    return fetch


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_certificate_is_written_next_to_an_ephemeral_key(tmp_path):
    seen = []
    credentials = entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(seen=seen), 'AzureCloud')
    assert credentials.principal == 'alice@contoso.com'
    scopes, data = seen[0]
    assert scopes == ['https://pas.windows.net/CheckMyAccess/Linux/.default']
    assert data['token_type'] == 'ssh-cert'
    jwk = json.loads(data['req_cnf'])
    assert jwk['kty'] == 'RSA' and data['key_id'] == jwk['kid'] and set(jwk) == {'kty', 'n', 'e', 'kid'}
    certificate = open(credentials.certificate_path, encoding='ascii').read()
    assert certificate.startswith('ssh-rsa-cert-v01@openssh.com ')
    assert credentials.certificate_path == credentials.private_key_path + '-cert.pub'
    for path in (credentials.private_key_path, credentials.certificate_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = serialization.load_ssh_private_key(open(credentials.private_key_path, 'rb').read(), None)
    assert key.public_key().public_numbers().n == int.from_bytes(
        __import__('base64').urlsafe_b64decode(jwk['n'] + '=' * (-len(jwk['n']) % 4)), 'big')


@pytest.mark.skipif(not __import__('shutil').which('ssh-keygen'), reason='ssh-keygen not installed')
def test_openssh_accepts_the_written_certificate(tmp_path):
    credentials = entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(), 'AzureCloud')
    listing = subprocess.run(['ssh-keygen', '-L', '-f', credentials.certificate_path], capture_output=True,
                             text=True, check=True).stdout
    assert 'user certificate' in listing and 'alice@contoso.com' in listing


@pytest.mark.parametrize('cloud, host', [('AzureCloud', 'https://pas.windows.net'),
                                         ('AzureChinaCloud', 'https://pas.chinacloudapi.cn'),
                                         ('AzureUSGovernment', 'https://pasff.usgovcloudapi.net')])
def test_certificate_scope_follows_the_cloud(cloud, host):
    assert entra_cert.ssh_certificate_scope(cloud) == host + '/CheckMyAccess/Linux/.default'


def test_an_unknown_cloud_is_refused_not_given_a_guessed_scope(tmp_path):
    """As Microsoft's ssh extension (custom.py _get_and_write_certificate): another cloud is an error, not
    pas.windows.net; nothing is generated or asked for."""
    asked = []
    with pytest.raises(entra_cert.Refused) as refused:
        entra_cert.obtain_certificate(str(tmp_path), lambda *args: asked.append(args), 'MyStackHub')
    assert "'MyStackHub'" in refused.value.message and 'azurecloud' in refused.value.message
    assert 'bastion_native.ssh_certificate_scope' in refused.value.recommendation
    assert asked == [] and list(tmp_path.iterdir()) == []


def test_a_configured_scope_is_used_for_any_cloud():
    scope = 'https://pas.example.test/CheckMyAccess/Linux/.default'
    assert entra_cert.ssh_certificate_scope('MyStackHub', scope) == scope


@pytest.mark.parametrize('answer', ['', 'not-base64!', 'AAAA'])
def test_unusable_answer_is_a_certificate_error(tmp_path, answer):
    with pytest.raises(entra_cert.CertificateError):
        entra_cert.obtain_certificate(str(tmp_path), lambda *_: answer, 'AzureCloud')


def test_certificate_without_principal_is_refused(tmp_path):
    with pytest.raises(entra_cert.CertificateError, match='principal'):
        entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(principals=()), 'AzureCloud')


def test_host_certificate_is_refused(tmp_path):
    from cryptography.hazmat.primitives.serialization import SSHCertificateType
    with pytest.raises(entra_cert.CertificateError, match='host certificate'):
        entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(cert_type=SSHCertificateType.HOST),
                                      'AzureCloud')


def test_certificate_for_another_key_is_refused(tmp_path):
    other_dir = tmp_path / 'other'
    other_dir.mkdir()
    foreign = _ca_signing_fetcher()
    stolen = {}

    def fetch_for_other_key(scopes, data):
        _, other_key = entra_cert.generate_key_pair(str(other_dir))
        stolen['body'] = foreign(scopes, entra_cert.certificate_request_data(entra_cert.public_jwk(other_key)))
        return stolen['body']
    with pytest.raises(entra_cert.CertificateError, match='different key'):
        entra_cert.obtain_certificate(str(tmp_path), fetch_for_other_key, 'AzureCloud')


# -- foreground runner ----------------------------------------------------------------------------------------
def test_exit_code_is_the_programs():
    assert launch.run_foreground([sys.executable, '-c', 'raise SystemExit(42)']) == 42
    assert launch.run_foreground([sys.executable, '-c', 'pass']) == 0


@pytest.mark.skipif(os.name == 'nt', reason='POSIX signals')
def test_killed_program_reports_128_plus_signal():
    assert launch.run_foreground([sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)']) \
        == 128 + signal.SIGKILL


class _FakeProcess:
    def __init__(self, ignores_interrupt):
        self.ignores_interrupt = ignores_interrupt
        self.returncode = None
        self.calls = []
        self._first = True

    def wait(self, timeout=None):
        if self._first:
            self._first = False
            raise KeyboardInterrupt
        self.calls.append(('wait', timeout))
        if self.returncode is None and self.ignores_interrupt:
            raise subprocess.TimeoutExpired('x', timeout)
        self.returncode = self.returncode if self.returncode is not None else -2
        return self.returncode

    def poll(self):
        return self.returncode

    def terminate(self):
        self.calls.append(('terminate', None))
        self.returncode = -15

    def kill(self):
        self.calls.append(('kill', None))
        self.returncode = -9


def test_ctrl_c_waits_for_the_program_then_reports_130():
    process = _FakeProcess(ignores_interrupt=False)
    assert launch.run_foreground(['x'], popen=lambda *a, **k: process, grace=0.01) == 130
    assert ('terminate', None) not in process.calls


def test_ctrl_c_terminates_a_program_that_does_not_stop():
    process = _FakeProcess(ignores_interrupt=True)
    assert launch.run_foreground(['x'], popen=lambda *a, **k: process, grace=0.01) == 130
    assert ('terminate', None) in process.calls


@pytest.mark.skipif(os.name == 'nt', reason='POSIX signals')
def test_sigterm_unwinds_instead_of_killing():
    code = [sys.executable, '-c', 'import time; time.sleep(30)']
    before = signal.getsignal(signal.SIGTERM)
    with launch.termination_unwinds():
        import threading
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        started = time.monotonic()
        assert launch.run_foreground(code, grace=2) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 10
    assert signal.getsignal(signal.SIGTERM) is before


# -- programs are never taken from the current directory ---------------------------------------------------
def _windows_files(*paths):
    """isfile() of a Windows machine holding ``paths`` (case-insensitive, as NTFS)."""
    present = {path.lower() for path in paths}
    return lambda path: path.lower() in present


WINDOWS_PATH = r'C:\Windows\System32;C:\Windows\System32\OpenSSH\;"C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin"'


@pytest.mark.parametrize('name, found', [
    ('ssh', r'C:\Windows\System32\OpenSSH\ssh.exe'),
    ('scp', r'C:\Windows\System32\OpenSSH\scp.exe'),
    ('mstsc', r'C:\Windows\System32\mstsc.exe'),
    ('az', r'C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin\az.cmd'),
    ('wlfreerdp', None),
])
def test_windows_programs_come_from_path_never_from_the_current_directory(name, found):
    """A checked-out repository holding ssh.exe, scp.exe, mstsc.exe, wlfreerdp.exe and az.bat is the current
    directory (and '.' is on PATH): shutil.which() on Windows would pick those first."""
    planted = [rf'.\{program}' for program in ('ssh.exe', 'scp.exe', 'mstsc.exe', 'wlfreerdp.exe', 'az.bat')]
    planted += [rf'C:\src\repo\{program}' for program in ('ssh.exe', 'scp.exe', 'mstsc.exe', 'wlfreerdp.exe',
                                                          'az.bat')]
    isfile = _windows_files(*planted, r'C:\Windows\System32\OpenSSH\ssh.exe', r'C:\Windows\System32\OpenSSH\scp.exe',
                            r'C:\Windows\System32\mstsc.exe',
                            r'C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin\az.cmd')
    environ = {'PATH': '.;;repo;' + WINDOWS_PATH, 'PATHEXT': '.COM;.EXE;.BAT;.CMD'}
    assert launch.find_program(name, 'nt', environ, isfile=isfile) == found


def test_windows_program_names_with_an_extension_and_without_pathext():
    isfile = _windows_files(r'C:\Windows\System32\mstsc.exe')
    assert launch.find_program('mstsc.exe', 'nt', {'PATH': r'C:\Windows\System32'}, isfile=isfile) \
        == r'C:\Windows\System32\mstsc.exe'
    assert launch.find_program('mstsc', 'nt', {'Path': r'C:\Windows\System32'}, isfile=isfile) \
        == r'C:\Windows\System32\mstsc.exe'
    assert launch.find_program(r'.\mstsc.exe', 'nt', {'PATH': r'C:\Windows\System32'}, isfile=isfile) is None


def test_posix_relative_path_entries_are_skipped():
    files = {'./ssh', 'bin/ssh', '/usr/bin/ssh'}
    environ = {'PATH': '.::bin:/usr/bin'}
    assert launch.find_program('ssh', 'posix', environ, isfile=files.__contains__,
                               access=lambda *_: True) == '/usr/bin/ssh'
    assert launch.find_program('ssh', 'posix', {'PATH': '.:bin'}, isfile=files.__contains__,
                               access=lambda *_: True) is None


def test_every_client_lookup_uses_find_program_by_default():
    import inspect
    from azext_bastion_native.clients import rdp
    from azext_bastion_native.connect.environment import Environment
    assert Environment().which is launch.find_program
    assert inspect.signature(ssh.find_ssh).parameters['which'].default is launch.find_program
    assert inspect.signature(rdp.find_launcher).parameters['which'].default is launch.find_program


def test_mstsc_not_on_path_is_started_from_system32_not_by_bare_name():
    from azext_bastion_native.clients import rdp
    launcher = rdp.find_launcher('windows', lambda _: None, environ={'SystemRoot': r'D:\Windows'})
    assert launcher.program == r'D:\Windows\System32\mstsc.exe'


def test_scp_is_looked_up_with_find_program(monkeypatch):
    from azext_bastion_native.connect import file as file_transfer
    monkeypatch.setattr(launch, 'find_program', lambda name: rf'C:\OpenSSH\{name}.exe')
    assert file_transfer.find_scp() == r'C:\OpenSSH\scp.exe'


@pytest.mark.skipif(not launch.find_program('ssh'), reason='needs OpenSSH ssh')
def test_ssh_dash_g_shows_our_options_winning_over_a_users_loopback_and_wildcard_blocks(tmp_path):
    """`ssh -G` prints the configuration ssh would use: a user's `Host 127.0.0.1 localhost` block that turns
    pinning off does not apply, and a `Host *` ControlPersist / StrictHostKeyChecking loses to our command line."""
    config = tmp_path / 'config'
    config.write_text('Host 127.0.0.1 localhost\n    UserKnownHostsFile /dev/null\n    StrictHostKeyChecking no\n'
                      '    HostKeyAlias loopback\n'
                      'Host *\n    ControlMaster auto\n    ControlPath ~/.ssh/cm-%r@%h:%p\n    ControlPersist 60\n'
                      '    StrictHostKeyChecking no\n    ProxyCommand nc %h %p\n')
    name = ssh.connection_name(VM_ID, 'bst-1.bastion.azure.com', VM_ID, 22)
    argv = ssh.ssh_argv(launch.find_program('ssh'), None, SshLogin('password', 'u'), ssh.host_key_alias(VM_ID),
                        ['-F', str(config), 'uptime'], name=name, proxy_command='proxy /run/s')
    shown = subprocess.run([argv[0], '-G', *argv[1:]], capture_output=True, text=True, check=True).stdout
    effective = dict(line.split(' ', 1) for line in shown.splitlines() if ' ' in line)
    assert effective['hostname'] == name
    assert effective['userknownhostsfile'] != '/dev/null'
    assert effective['stricthostkeychecking'] == 'accept-new'
    assert effective['hostkeyalias'] == ssh.host_key_alias(VM_ID)
    assert effective['controlpersist'] == 'no' and effective['controlmaster'] == 'auto'
    assert effective['proxycommand'] == 'proxy /run/s'
