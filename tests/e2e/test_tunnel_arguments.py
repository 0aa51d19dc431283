"""Arguments of the connecting commands as scripts use them, through the real az: values checked like ports,
--ids naming the host, several --ids with -o table, the tunnel's ready line in the user's output format and --query,
a --bind-address that is not local, a --target-resource-id that is no VM."""

import json
import select
import signal
import subprocess

import pytest

from bastion_emulator.testing.az_login import az_executable
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

BASIC_HOST = 'basic-bastion'
NATIVE_CLIENT_FIX = f'az network bastion native-client enable -g {RG} -n {BASIC_HOST}'


@pytest.fixture(scope='module')
def vm_id(emulator):
    return emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')


@pytest.fixture(scope='module')
def host_ids(emulator):
    return [emulator.resource_id('Microsoft.Network/bastionHosts', name) for name in (HOST, BASIC_HOST)]


def _refused(result):
    assert result.returncode not in (0, None), result.stdout
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    return result.stderr


def _tunnel_args(vm_id, *extra):
    return ('network', 'bastion', 'tunnel', '-g', RG, '-n', HOST, '--target-resource-id', vm_id,
            '--resource-port', 22, *extra)


# -- values checked like ports ---------------------------------------------------------------------
@pytest.mark.parametrize('args, phrase', [
    (('--port', 70000), '--port 70000 is not a port'),
    (('--port', -1), '--port -1 is not a port'),
    (('--timeout', 0), '--timeout 0 is not a number of seconds above 0'),
    (('--timeout', -5), '--timeout -5 is not a number of seconds above 0'),
    (('--idle-timeout', 0), '--idle-timeout 0 is not a number of seconds above 0'),
    (('--max-connections', 0), '--max-connections 0 would refuse every connection'),
])
def test_tunnel_refuses_values_that_cannot_work_before_listening(az, emulator, vm_id, args, phrase):
    result = az(*_tunnel_args(vm_id, *args), check=False, timeout=60)
    assert phrase in _refused(result)
    assert 'OverflowError' not in result.stderr and 'Tunnel is ready' not in result.stderr
    assert result.stdout == ''
    assert emulator.get('/_emulator/sessions').json() == []


@pytest.mark.parametrize('command', [
    ('tunnel',), ('proxy',), ('ssh', '--auth-type', 'password'), ('rdp',), ('doctor',), ('ssh-config',),
    ('file', 'upload', '--auth-type', 'password', '--source', 'x', '--destination', 'y'),
])
def test_resource_port_0_is_refused_by_every_command(az, vm_id, command):
    result = az('network', 'bastion', *command, '-g', RG, '-n', HOST, '--target-resource-id', vm_id,
                '--resource-port', 0, check=False, timeout=60, input='')
    assert '--resource-port 0 is not a port (1-65535)' in _refused(result)


# -- --ids -----------------------------------------------------------------------------------------
@pytest.mark.parametrize('command', [
    ('tunnel', '--resource-port', 22), ('proxy', '--resource-port', 22), ('ssh', '--auth-type', 'password'),
    ('rdp',), ('ssh-config',),
    ('file', 'upload', '--auth-type', 'password', '--source', __file__, '--destination', 'y'),
])
def test_ids_names_the_host_of_every_connecting_command(az, host_ids, vm_id, command):
    """The host's ID in --ids takes the place of -g/-n: the command reads that host (a Basic one, which it then
    refuses with the fix naming its group and name)."""
    result = az('network', 'bastion', *command, '--ids', host_ids[1], '--target-resource-id', vm_id,
                check=False, timeout=60, input='')
    assert NATIVE_CLIENT_FIX in _refused(result)


def test_ids_opens_a_tunnel_and_runs_doctor(az_env, az, host_ids, vm_id, emulator):
    doctor = az('network', 'bastion', 'doctor', '--ids', host_ids[0], '--target-resource-id', vm_id,
                '--resource-port', 22, check=False, timeout=120)
    assert doctor.json and any(row['check'] for row in doctor.json), doctor.stderr[-2000:]
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [az_executable(), 'network', 'bastion', 'tunnel', '--ids', host_ids[0], '--target-resource-id', vm_id,
         '--resource-port', '22', '--query', 'port', '-o', 'tsv'],
        env=az_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert select.select([process.stdout], [], [], 60)[0], 'no ready line'
        assert process.stdout.readline().strip().isdigit()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 130
    assert sessions_drain(emulator)


def test_several_ids_for_a_connecting_command_are_refused_before_anything_runs(az, host_ids, vm_id):
    result = az('network', 'bastion', 'tunnel', '--ids', *host_ids, '--target-resource-id', vm_id,
                '--resource-port', 22, check=False, timeout=60)
    assert '--ids names 2 Bastion hosts; this command connects through one' in _refused(result)
    assert 'Tunnel is ready' not in result.stderr


@pytest.mark.parametrize('command, column', [
    (('show',), 'ProvisioningState'),
    (('native-client', 'show'), 'NativeClient'),
    (('session', 'list'), None),
    (('nsg', 'check'), 'Finding'),
])
def test_several_ids_print_a_table(az, host_ids, command, column):
    result = az('network', 'bastion', *command, '--ids', *host_ids, '-o', 'table', check=False, timeout=120)
    assert 'Table output unavailable' not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (0, 3), result.stderr[-2000:]       # nsg check: 3 = findings to fix
    if column:
        assert column in result.stdout.splitlines()[0]
    if command[0] != 'nsg' and command[0] != 'session':
        assert HOST in result.stdout and BASIC_HOST in result.stdout


# -- the ready line --------------------------------------------------------------------------------
def _ready_line(az_env, vm_id, *output_args, config_output=None):
    """Start the tunnel with --timeout 1 and return (stdout, stderr, exit code)."""
    env = dict(az_env)
    if config_output:
        env['AZURE_CORE_OUTPUT'] = config_output        # the user's configured default output
    result = subprocess.run([az_executable(), *map(str, _tunnel_args(vm_id, '--timeout', 1, *output_args))],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert 'Tunnel is ready, connect on port' in result.stderr, result.stderr[-2000:]
    return result.stdout, result.returncode


def test_ready_line_honours_query_and_output(az_env, vm_id):
    stdout, code = _ready_line(az_env, vm_id, '--query', 'port', '-o', 'tsv')
    assert code == 0 and stdout.strip().isdigit() and stdout.count('\n') == 1
    stdout, _ = _ready_line(az_env, vm_id, '-o', 'json')
    ready = json.loads(stdout.splitlines()[0])                     # one line, as before
    assert ready['address'] == '127.0.0.1' and isinstance(ready['port'], int)
    stdout, _ = _ready_line(az_env, vm_id, '-o', 'none')
    assert stdout == ''


@pytest.mark.parametrize('default_output, expected', [('table', 'Address'), ('yaml', 'port: ')])
def test_ready_line_appears_with_a_default_output_of_table_or_yaml(az_env, vm_id, default_output, expected):
    stdout, _ = _ready_line(az_env, vm_id, config_output=default_output)
    assert expected in stdout and '127.0.0.1' in stdout


# -- what the tunnel says when it cannot start -----------------------------------------------------
def test_a_bind_address_not_on_this_machine_is_named_not_the_port(az, vm_id, emulator):
    result = az(*_tunnel_args(vm_id, '--bind-address', '10.99.99.99'), check=False, timeout=60)
    stderr = _refused(result)
    assert '10.99.99.99: --bind-address is not an address of this machine' in stderr
    assert '--port' not in stderr
    assert emulator.get('/_emulator/sessions').json() == []


@pytest.mark.parametrize('command', ['tunnel', 'proxy'])
@pytest.mark.parametrize('target, phrase', [
    ('/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/no-such-vm',
     "Virtual machine 'no-such-vm' in resource group 'demo-rg' was not found"),
    ('/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/files',
     'is not a virtual machine or scale set instance resource ID'),
    ('/subscriptions/x', 'is not a virtual machine or scale set instance resource ID'),
])
def test_a_target_that_is_no_vm_is_refused_before_ready(az, emulator, command, target, phrase):
    target = target.format(sub=emulator.ready['subscription'])
    result = az('network', 'bastion', command, '-g', RG, '-n', HOST, '--target-resource-id', target,
                '--resource-port', 22, '--only-show-errors', check=False, timeout=60, input='')
    assert phrase in _refused(result)
    assert 'Tunnel is ready' not in result.stderr and result.stdout == ''
    assert emulator.get('/_emulator/sessions').json() == []


def test_ip_connect_reads_no_vm(az_env):
    """By IP there is no VM to read: the tunnel is ready without one (the IP connect path is unchanged)."""
    result = subprocess.run(
        [az_executable(), 'network', 'bastion', 'tunnel', '-g', RG, '-n', HOST, '--target-ip-address', '10.0.0.99',
         '--resource-port', '22', '--timeout', '1', '-o', 'json'],
        env=az_env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and json.loads(result.stdout)['port'], result.stderr[-2000:]


def test_username_help_says_what_the_default_really_is(az):
    """By IP the login name is ssh's own default (the local user), not the VM's admin (there is no VM to read)."""
    text = ' '.join(az('network', 'bastion', 'ssh', '--help').stdout.split())
    assert "with --target-ip-address, ssh's own default" in text and 'your local user name' in text
    assert "Default: the VM's admin user name" not in text
