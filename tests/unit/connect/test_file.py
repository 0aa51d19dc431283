"""connect/file.py: scp's command line, local checks, the summary line, and the command's refusals and
clean-up with a stand-in tunnel and scp (no network)."""
import io
import os
import stat
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import (ArgumentUsageError, InvalidArgumentValueError, RequiredArgumentMissingError,
                                       UnclassifiedUserFault, ValidationError)

from azext_bastion_native import capabilities
from azext_bastion_native.connect import resolve
from azext_bastion_native.connect.environment import Environment
from azext_bastion_native.connect import file as file_transfer
from azext_bastion_native.clients.ssh import SshLogin, host_key_alias
from azext_bastion_native.connect.file import DOWNLOAD, UPLOAD, Transfer
from azext_bastion_native.dataplane.protocol import Endpoint, Target
from tests.unit.boundary import raises_as

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'


@pytest.mark.parametrize('client', ['windows', 'linux', 'other'])
def test_the_tables_tunnel_row_offers_file_transfer_on_every_client(client):
    row = capabilities.decide(client, None, 'tunnel', file_transfer=True)
    assert row.method == 'tunnel' and row.file_transfer


def test_scp_argv_for_a_key_upload():
    argv = file_transfer.scp_argv('/usr/bin/scp', 40022, SshLogin('ssh-key', 'azureuser', '/k/id'), 'bastion.vm',
                                  Transfer(UPLOAD, 'a:b.txt', '/tmp/x', recursive=True), ['-l', '800'],
                                  name='bastion-vm-1')
    assert argv[:6] == ['/usr/bin/scp', '-o', 'HostName=127.0.0.1', '-P', '40022', '-r']
    assert argv.index('ControlPersist=no') < argv.index('-l')       # before the user's: it holds
    assert argv[argv.index('-i') + 1] == '/k/id'
    assert 'User=azureuser' in argv and 'IdentitiesOnly=yes' in argv
    # The user's arguments come before the host-key pinning (the first value wins: theirs can override it).
    assert argv.index('-l') < argv.index('HostKeyAlias=bastion.vm')
    assert argv.index('PreferredAuthentications=publickey') < argv.index('-l')
    assert argv[-2:] == [os.path.join('.', 'a:b.txt'), 'bastion-vm-1:/tmp/x']     # not read as host "a"


def test_scp_argv_for_a_password_download():
    argv = file_transfer.scp_argv('scp', None, SshLogin('password', None), 'alias',
                                  Transfer(DOWNLOAD, 'logs/app.log', '/home/me/app.log'), name='bastion-vm-1',
                                  proxy_command='proxy /run/s')
    assert argv[1:3] == ['-o', 'ProxyCommand=proxy /run/s'] and '-P' not in argv
    assert 'PubkeyAuthentication=no' in argv and '-r' not in argv
    assert not any(arg.startswith('User=') for arg in argv)
    assert argv[-2:] == ['bastion-vm-1:logs/app.log', '/home/me/app.log']


def test_local_checks(tmp_path):
    with pytest.raises(file_transfer.TransferRefused, match='no such file'):
        file_transfer.check_local_paths(Transfer(UPLOAD, str(tmp_path / 'nope'), 'x'))
    with pytest.raises(file_transfer.TransferRefused) as refused:
        file_transfer.check_local_paths(Transfer(UPLOAD, str(tmp_path), 'x'))
    assert '--recursive' in refused.value.recommendation
    file_transfer.check_local_paths(Transfer(UPLOAD, str(tmp_path), 'x', recursive=True))
    with pytest.raises(file_transfer.TransferRefused, match='does not exist'):
        file_transfer.check_local_paths(Transfer(DOWNLOAD, 'x', str(tmp_path / 'no' / 'file')))
    file_transfer.check_local_paths(Transfer(DOWNLOAD, 'x', str(tmp_path / 'new-file')))
    file_transfer.check_local_paths(Transfer(DOWNLOAD, 'x', str(tmp_path)))


def test_sizes_and_where_a_download_lands(tmp_path):
    (tmp_path / 'd' / 'e').mkdir(parents=True)
    (tmp_path / 'd' / 'one').write_bytes(b'1' * 10)
    (tmp_path / 'd' / 'e' / 'two').write_bytes(b'2' * 5)
    assert file_transfer.local_size(str(tmp_path / 'd')) == 15
    assert file_transfer.local_size(str(tmp_path / 'd' / 'one')) == 10
    assert file_transfer.local_size(str(tmp_path / 'absent')) == 0
    transfer = Transfer(DOWNLOAD, '/var/log/app/', str(tmp_path))
    assert file_transfer.downloaded_path(transfer, True) == os.path.join(str(tmp_path), 'app')
    assert file_transfer.downloaded_path(transfer, False) == str(tmp_path)
    assert file_transfer.summary_line(UPLOAD, 2_000_000, 2.0) == 'Uploaded 2000000 bytes in 2.00 s, 1.0 MB/s.'


# -- the command, with stand-ins for Azure, the tunnel and scp -----------------------------------------------
class _Cmd:
    cli_ctx = SimpleNamespace(cloud=SimpleNamespace(name='AzureCloud', suffixes=SimpleNamespace()))

    def __init__(self, name='network bastion file upload'):
        self.name = name


class _Tunnel:
    def __init__(self, events):
        self.events, self.port = events, 50022

    def __enter__(self):
        self.events.append('tunnel open')
        return self

    def __exit__(self, *_):
        self.events.append('tunnel closed')


@pytest.fixture
def source(tmp_path):
    path = tmp_path / 'payload.bin'
    path.write_bytes(b'x' * 1234)
    return path


@pytest.fixture
def machine(monkeypatch):
    """An Environment whose tunnel and scp are recorded; Azure answers with one Linux VM."""
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    events, runs = [], []
    destination = resolve.Destination(endpoint=Endpoint('bst-1.bastion.azure.com'), target=Target(VM_ID, 22),
                                      target_label=VM_ID, get_arm_token=lambda: '', target_os='linux',
                                      admin_username='vmadmin')
    monkeypatch.setattr(resolve, 'resolve_destination', lambda *_: events.append('azure') or destination)

    def run(argv):
        events.append('scp')
        runs.append(argv)
        return machine.exit_code
    machine = SimpleNamespace(events=events, runs=runs, exit_code=0, environment=Environment(
        system='Linux', which=lambda name: f'/usr/bin/{name}', run=run, open_tunnel=lambda _: _Tunnel(events)))
    return machine


def _upload(machine, local, **options):
    arguments = {'target_resource_id': VM_ID, 'auth_type': 'password', 'source': str(local),
                 'destination': 'remote.bin'}
    arguments.update(options)
    file_transfer.file_transfer_command(_Cmd(), 'rg', 'bh', environment=machine.environment, **arguments)


def test_upload_runs_scp_inside_the_tunnel_as_the_vms_admin(machine, source, capsys):
    _upload(machine, source, scp_args=['-C'])
    assert machine.events == ['azure', 'tunnel open', 'scp', 'tunnel closed']
    argv = machine.runs[0]
    assert argv[:5] == ['/usr/bin/scp', '-o', 'HostName=127.0.0.1', '-P', '50022']
    assert 'User=vmadmin' in argv and '-C' in argv
    assert f'HostKeyAlias={host_key_alias(VM_ID)}' in argv      # the same known_hosts name as `ssh`
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('Uploaded 1234 bytes in ')


def test_download_is_the_command_named_download(machine, tmp_path, capsys):
    """upload and download are one function: the direction is the command's name."""
    local = tmp_path / 'app.log'
    file_transfer.file_transfer_command(_Cmd('network bastion file download'), 'rg', 'bh', VM_ID, 'password',
                                        '/var/log/app.log', str(local), environment=machine.environment)
    argv = machine.runs[0]
    assert argv[-2].endswith(':/var/log/app.log') and argv[-1] == str(local)
    assert capsys.readouterr().err.startswith('Downloaded ')


def test_scps_exit_code_becomes_the_commands_and_no_summary(machine, source, capsys):
    machine.exit_code = 1
    with pytest.raises(SystemExit) as exited:
        _upload(machine, source)
    assert exited.value.code == 1
    assert machine.events[-1] == 'tunnel closed'
    assert 'Uploaded' not in capsys.readouterr().err


def test_terminal_gets_scps_own_meter_and_no_summary(machine, source):
    stderr = io.StringIO()
    stderr.isatty = lambda: True
    login = SshLogin('password', 'u')
    code = file_transfer.run_transfer(resolve.Destination(Endpoint('bst-1.bastion.azure.com'), Target(VM_ID, 22),
                                                          VM_ID, lambda: ''), login,
                                      Transfer(UPLOAD, str(source), 'x'), 'scp', [], machine.environment,
                                      stderr=stderr)
    assert code == 0 and stderr.getvalue() == ''


def test_ctrl_c_still_closes_the_tunnel(machine, source):
    def interrupted(_):
        machine.events.append('scp')
        raise KeyboardInterrupt
    machine.environment.run = interrupted
    with pytest.raises(KeyboardInterrupt):
        _upload(machine, source)
    assert machine.events[-1] == 'tunnel closed'


def test_scp_goes_to_stderr_not_stdout(monkeypatch):
    seen = {}

    def popen(argv, **kwargs):
        seen.update(kwargs, argv=argv)
        return SimpleNamespace(wait=lambda *_: 0)
    monkeypatch.setattr(file_transfer.subprocess, 'Popen', popen)
    assert file_transfer.run_scp(['scp', 'a', 'b'], Environment()) == 0
    assert seen['stdout'] == 2


# -- refusals before any network call -----------------------------------------------------------------------
@pytest.fixture
def offline(machine, monkeypatch):
    def no_network(*_, **__):
        raise AssertionError('a refusal must come before any network call')
    monkeypatch.setattr(resolve, 'resolve_destination', no_network)
    machine.environment.open_tunnel = no_network
    return machine


def test_cloud_shell_refused(offline, source, monkeypatch):
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    with raises_as(ValidationError, match='Cloud Shell'):
        _upload(offline, source)


def test_key_vault_key_refused(offline, source):
    with raises_as(InvalidArgumentValueError, match='Key Vault'):
        _upload(offline, source, auth_type='ssh-key', ssh_key='https://v.vault.azure.net/secrets/k')


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_too_open_key_refused(offline, source, tmp_path):
    key = tmp_path / 'key'
    key.write_text('k')
    key.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IROTH)
    with raises_as(InvalidArgumentValueError, match='group or others'):
        _upload(offline, source, auth_type='ssh-key', ssh_key=str(key))


@pytest.mark.parametrize('options, error', [
    ({'auth_type': 'ssh-key'}, RequiredArgumentMissingError),
    ({'auth_type': 'password', 'ssh_key': '/k'}, ArgumentUsageError),
    ({'local': '/no/such/file'}, InvalidArgumentValueError),
    ({'target_resource_id': 'not-an-id'}, InvalidArgumentValueError),
])
def test_argument_refusals(offline, source, options, error):
    options = dict({'local': source}, **options)
    with raises_as(error):
        _upload(offline, **options)


def test_missing_scp_refused(offline, source):
    offline.environment.which = lambda _: None
    with raises_as(UnclassifiedUserFault, match='scp'):
        _upload(offline, source)


def test_a_table_without_file_transfer_on_the_tunnel_is_refused(offline, source, monkeypatch):
    rows = tuple(row if row.method != 'tunnel' else row.__class__(**dict(row.__dict__, file_transfer=False))
                 for row in capabilities.ALL_ROWS)
    monkeypatch.setattr(capabilities, 'ALL_ROWS', rows)
    with raises_as(ValidationError, match='file transfer is not offered'):
        _upload(offline, source)
