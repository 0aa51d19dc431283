"""Smoke set on the oldest supported azure-cli: azext_metadata.json's azext.minCliCoreVersion, in its own venv
(scripts/bootstrap_oldest_az.sh builds it; scripts/test.sh requires it), with this extension added the way a user
adds it (`az extension add --source WHEEL`, dependencies from a local wheelhouse into the extension's folder). Each
command group runs through that az against the emulator at least once; where a command prints a result, the newest
az (the main venv, the dev extension) is asked the same for the same emulator state and must print the same."""

import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bastion_emulator.testing.az_login import az_login
from bastion_emulator.testing.sandbox import AzCli
from tests.conftest import make_short_dir
from tests.e2e.arrange import make_public_ip, make_vnet, unique
from tests.e2e.test_install import wheelhouse  # noqa: F401  pylint: disable=unused-import
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
OLDEST_VENV = Path(os.environ.get('BASTION_NATIVE_OLDEST_AZ_VENV', REPO / '.venv-az-oldest'))
MINIMUM = json.loads((REPO / 'azext_bastion_native' / 'azext_metadata.json').read_text())['azext.minCliCoreVersion']
ECHO_PORT = 7017


@pytest.fixture(scope='module')
def oldest(emulator, wheelhouse, tmp_path_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    """The oldest supported az, logged in to the emulator by itself, with the wheel added; an AzCli."""
    executable = OLDEST_VENV / 'bin' / 'az'
    if not executable.exists():
        message = f'no azure-cli {MINIMUM} venv at {OLDEST_VENV}: run scripts/bootstrap_oldest_az.sh'
        if os.environ.get('BASTION_NATIVE_REQUIRE_OLDEST_AZ') == '1':
            pytest.fail(message)
        pytest.skip(message)
    core = subprocess.run([str(OLDEST_VENV / 'bin' / 'python'), '-c',
                           'from azure.cli.core import __version__; print(__version__)'],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert core == MINIMUM, f'{OLDEST_VENV} holds azure-cli {core}, the declared minimum is {MINIMUM}'

    root = tmp_path_factory.mktemp('oldest-az')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                    '-w', str(root / 'dist'), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next((root / 'dist').glob('*.whl'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'PIP_'))}
    # PYTHONSAFEPATH: the az script runs `python -m azure.cli`, which would put the working directory (the
    # checkout) first on sys.path and import the extension from there instead of from the install.
    env.update(AZURE_CONFIG_DIR=str(root / 'config'), AZURE_EXTENSION_DIR=str(root / 'extensions'),
               AZURE_CORE_COLLECT_TELEMETRY='false', AZURE_CORE_NO_COLOR='true', AZURE_CORE_SURVEY_MESSAGE='false',
               PYTHONSAFEPATH='1', PYTHONDONTWRITEBYTECODE='1')
    env.update(az_login(emulator.state_dir, env=env, az=str(executable)))
    added = subprocess.run([str(executable), 'extension', 'add', '--source', str(wheel), '--yes'],
                           env=dict(env, PIP_NO_INDEX='1', PIP_FIND_LINKS=wheelhouse), capture_output=True,
                           text=True, timeout=600, check=False)
    assert added.returncode == 0, added.stderr[-3000:]
    return AzCli(env, executable=str(executable))


@pytest.fixture(scope='module')
def own_host(network):
    """A virtual network and public IP of this module's own, for the host it creates."""
    vnet, pip = unique('compat-vnet'), unique('compat-ip')
    make_vnet(network, vnet)
    make_public_ip(network, pip)
    return {'name': unique('compat-bastion'), 'vnet': vnet, 'pip': pip}


@pytest.fixture(scope='module')
def echo_vm(emulator, echo_server):
    emulator.set_vm_endpoint('linux-vm', ECHO_PORT, echo_server.host, echo_server.port)
    return emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')


def json_of(result):
    assert result.stdout.strip(), result.stderr[-2000:]
    return json.loads(result.stdout)


def without(value, volatile):
    """``value`` (a list of objects or one) without the ``volatile`` keys (what the clock changes between asks)."""
    if isinstance(value, list):
        return [without(item, volatile) for item in value]
    return {key: item for key, item in value.items() if key not in volatile} if isinstance(value, dict) else value


def same_on_both(oldest, az, *args, expect_rc=0, volatile=()):
    """``az network bastion ARGS -o json`` on both; the same exit status (``expect_rc``; None: whichever the newest
    az gives) and the same JSON but for ``volatile`` keys. Returns the oldest az's."""
    old = oldest('network', 'bastion', *args, '-o', 'json', check=False)
    new = az('network', 'bastion', *args, '-o', 'json', check=False)
    expect_rc = new.returncode if expect_rc is None else expect_rc
    assert (old.returncode, new.returncode) == (expect_rc, expect_rc), old.stderr[-2000:] + new.stderr[-2000:]
    assert without(json_of(old), volatile) == without(json_of(new), volatile)
    return json_of(old)


def refused_alike(oldest, az, *args):
    """The same refusal on both: exit status and stderr (azure-cli's error line and our recommendation)."""
    old = oldest('network', 'bastion', *args, check=False)
    new = az('network', 'bastion', *args, check=False)
    assert old.returncode == new.returncode != 0
    assert 'Traceback' not in old.stderr
    assert old.stderr == new.stderr
    return old


def test_the_wheel_is_added_to_the_oldest_az(oldest):
    listed = json_of(oldest('extension', 'list', '-o', 'json'))
    mine = [ext for ext in listed if ext['name'] == 'bastion-native']
    assert len(mine) == 1 and mine[0]['extensionType'] == 'whl', listed


def test_create_show_list_update_wait_delete(oldest, az, own_host, network):
    name = own_host['name']
    created = json_of(oldest('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', own_host['vnet'],
                             '--public-ip-address', own_host['pip'], '-o', 'json'))
    assert created['name'] == name and created['enableTunneling'] is True      # fields, not {}
    assert same_on_both(oldest, az, 'show', '-g', RG, '-n', name) == created
    assert name in [host['name'] for host in same_on_both(oldest, az, 'list', '-g', RG)]
    table = [oldest('network', 'bastion', 'list', '-g', RG, '-o', 'table').stdout,
             az('network', 'bastion', 'list', '-g', RG, '-o', 'table').stdout]
    assert table[0] == table[1] and name in table[0]

    updated = json_of(oldest('network', 'bastion', 'update', '-g', RG, '-n', name, '--scale-units', '3',
                             '--set', 'tags.owner=compat', '-o', 'json'))
    assert updated['scaleUnits'] == 3 and updated['tags'] == {'owner': 'compat'}
    assert oldest('network', 'bastion', 'show', '-g', RG, '-n', name, '--query', 'scaleUnits', '-o', 'tsv'
                  ).stdout.strip() == '3'
    # wait reads provisioningState (and --custom's query) from its getter's result: an SDK model looks empty to
    # this az's todict, so the wait ran to its timeout, then printed the timeout error as {} and exited 0
    for condition in (['--updated'], ['--custom', 'scaleUnits==`3`']):
        waited = oldest('network', 'bastion', 'wait', '-g', RG, '-n', name, *condition, '--interval', '1',
                        '--timeout', '20')
        assert waited.stdout == '' and waited.stderr == '', waited

    assert json_of(oldest('network', 'bastion', 'native-client', 'disable', '-g', RG, '-n', name, '--yes',
                          '-o', 'json'))['enableTunneling'] is False
    enabled = json_of(oldest('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', name, '--yes',
                             '-o', 'json'))
    assert enabled['enableTunneling'] is True
    assert same_on_both(oldest, az, 'show', '-g', RG, '-n', name) == enabled

    # Confirmation: without a terminal and --yes refused alike; at a terminal this az's knack asks, "n" keeps it
    refused_alike(oldest, az, 'delete', '-g', RG, '-n', name)
    command = shlex.join([oldest.executable, 'network', 'bastion', 'delete', '-g', RG, '-n', name])
    asked = subprocess.run(['script', '-qec', command, '/dev/null'], input='n\n', env=oldest.env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert 'Are you sure you want to delete the Bastion host?' in asked.stdout, asked.stdout + asked.stderr
    assert network.bastion_hosts.get(RG, name).name == name

    deleted = oldest('network', 'bastion', 'delete', '-g', RG, '-n', name, '--yes', '--no-wait')
    assert deleted.stdout == ''
    gone = oldest('network', 'bastion', 'wait', '-g', RG, '-n', name, '--deleted', '--interval', '1',
                  '--timeout', '30')
    assert gone.stdout == ''
    refused_alike(oldest, az, 'show', '-g', RG, '-n', name)


def test_native_client_show_session_list_and_nsg(oldest, az):
    shown = same_on_both(oldest, az, 'native-client', 'show', '-g', RG, '-n', HOST)
    assert shown['enableTunneling'] is True and shown['methods']
    rules = same_on_both(oldest, az, 'nsg', 'show', '--ports', '8080')
    assert 'AllowCustomPortsOutbound' in [rule['name'] for rule in rules]
    report = same_on_both(oldest, az, 'nsg', 'check', '-g', RG, '-n', HOST, expect_rc=None)
    assert report['findings'] and 'compliant' in report
    refused_alike(oldest, az, 'native-client', 'enable', '-g', RG, '-n', 'basic-bastion', '--upgrade-sku')


def _start_listening(oldest, command, *args):
    """``tunnel`` or ``forward`` through the oldest az; (process, its JSON ready line)."""
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [oldest.executable, 'network', 'bastion', command, '-g', RG, '-n', HOST, *map(str, args), '-o', 'json'],
        env=oldest.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else ''
    if not line:
        process.kill()
        raise AssertionError(f'no ready line: {process.communicate(timeout=10)[1][-2000:]}')
    return process, json.loads(line)


def test_tunnel_with_session_list_while_connected(oldest, az, emulator, echo_vm):
    before = len(json_of(az('network', 'bastion', 'session', 'list', '-g', RG, '-n', HOST, '-o', 'json')))
    process, ready = _start_listening(oldest, 'tunnel', '--target-resource-id', echo_vm, '--resource-port', ECHO_PORT)
    try:
        with socket.create_connection((ready['address'], ready['port']), timeout=30) as conn:
            _echoed(conn, os.urandom(256 * 1024))
            sessions = same_on_both(oldest, az, 'session', 'list', '-g', RG, '-n', HOST,
                                    volatile=('sessionDurationInMins',))
            assert len(sessions) == before + 1 and 'linux-vm' in [s['targetHostName'] for s in sessions]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 130
    assert sessions_drain(emulator)


def _echoed(conn, payload):
    conn.sendall(payload)
    received = b''
    while len(received) < len(payload):
        chunk = conn.recv(65536)
        assert chunk
        received += chunk
    assert received == payload


def test_forward_a_local_port_to_a_vm_by_name(oldest, emulator, echo_vm):
    process, ready = _start_listening(oldest, 'forward', '-L', f'0:linux-vm:{ECHO_PORT}')
    try:
        [forwarded] = ready['forwards']
        with socket.create_connection((forwarded['address'], forwarded['port']), timeout=30) as conn:
            _echoed(conn, b'forwarded through the oldest az')
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 130
    assert sessions_drain(emulator)


def test_proxy_carries_stdin_and_stdout(oldest, emulator, echo_vm):
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [oldest.executable, 'network', 'bastion', 'proxy', '-g', RG, '-n', HOST, '--target-resource-id', echo_vm,
         '--resource-port', str(ECHO_PORT)],
        env=oldest.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(b'through the oldest az\n')
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready and os.read(process.stdout.fileno(), 100) == b'through the oldest az\n'
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 143
    assert sessions_drain(emulator)


def _known_hosts(tmp_path):
    return ['-o', f'UserKnownHostsFile={tmp_path / "known_hosts"}']


def test_ssh_with_a_key_and_with_an_entra_certificate(oldest, emulator, sshd_linux_vm, ssh_key, tmp_path):
    sshd = sshd_linux_vm.sshd
    base = ['network', 'bastion', 'ssh', '-g', RG, '-n', HOST, '--target-resource-id', sshd_linux_vm.vm_id]
    keyed = oldest(*base, '--auth-type', 'ssh-key', '--username', sshd.user, '--ssh-key', str(ssh_key), '--',
                   *_known_hosts(tmp_path), 'echo key-$((6*7))', check=False)
    assert keyed.returncode == 0, keyed.stderr[-2000:]
    assert keyed.stdout.strip() == 'key-42'
    entra = oldest(*base, '--auth-type', 'aad', '--', *_known_hosts(tmp_path), 'whoami', check=False)
    assert entra.returncode == 0, entra.stderr[-2000:]
    assert entra.stdout.strip() == sshd.cert_user
    assert sessions_drain(emulator)


def test_ssh_config_through_the_agent(oldest, emulator, sshd_linux_vm, tmp_path):
    sshd = sshd_linux_vm.sshd
    runtime = make_short_dir('bn-compat-')       # the agent's socket: this module's own agent
    agent = {'XDG_RUNTIME_DIR': str(runtime)}
    config = tmp_path / 'config'
    try:
        oldest('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--target-resource-id', sshd_linux_vm.vm_id,
               '--username', sshd.user, '--ssh-key', str(sshd.client_key), '--file', str(config), env_extra=agent)
        proxy = next(line for line in config.read_text().splitlines() if line.strip().startswith('ProxyCommand'))
        assert str(OLDEST_VENV) in proxy or str(REPO) not in proxy, proxy   # the installed extension's helper
        result = subprocess.run(['ssh', '-F', str(config), *_known_hosts(tmp_path), '-o', 'BatchMode=yes',
                                 'linux-vm', 'echo agent-ok'], env=dict(oldest.env, **agent), capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == 'agent-ok'
        status = json_of(oldest('network', 'bastion', 'agent', 'status', '-o', 'json', env_extra=agent))
        assert status['running'] is True, status
    finally:
        oldest('network', 'bastion', 'agent', 'stop', env_extra=agent, check=False)
        shutil.rmtree(runtime, ignore_errors=True)
    assert sessions_drain(emulator, timeout=20)


def test_file_upload_and_download(oldest, emulator, sshd_linux_vm, ssh_key, tmp_path):
    sshd = sshd_linux_vm.sshd
    original = tmp_path / 'payload.bin'
    original.write_bytes(os.urandom(512 * 1024))
    remote = f'compat-{os.getpid()}.bin'
    login = ['--target-resource-id', sshd_linux_vm.vm_id, '--auth-type', 'ssh-key', '--username', sshd.user,
             '--ssh-key', str(ssh_key)]
    up = oldest('network', 'bastion', 'file', 'upload', '-g', RG, '-n', HOST, *login, '--source', str(original),
                '--destination', remote, '--', *_known_hosts(tmp_path), check=False)
    assert up.returncode == 0, up.stderr[-2000:]
    back = tmp_path / 'back'
    back.mkdir()
    down = oldest('network', 'bastion', 'file', 'download', '-g', RG, '-n', HOST, *login, '--source', remote,
                  '--destination', str(back), '--', *_known_hosts(tmp_path), check=False)
    assert down.returncode == 0, down.stderr[-2000:]
    assert (back / remote).read_bytes() == original.read_bytes()
    assert sessions_drain(emulator)


def _without_timings(rows):
    """Doctor rows with numbers in their detail masked (a round trip's milliseconds differ run to run)."""
    return [dict(row, detail=re.sub(r'\d+(\.\d+)?', 'N', row['detail'] or '')) for row in rows]


def test_doctor_and_errors(oldest, az, emulator, sshd_linux_vm):
    args = ('doctor', '-g', RG, '-n', HOST, '--target-resource-id', sshd_linux_vm.vm_id)
    old = json_of(oldest('network', 'bastion', *args, '-o', 'json', check=False))
    new = json_of(az('network', 'bastion', *args, '-o', 'json', check=False))
    assert _without_timings(old) == _without_timings(new)
    assert {row['check']: row['status'] for row in old}['Data plane'] == 'pass'
    # refusals leave through the same translator on both: the same message, recommendation and exit status
    refused_alike(oldest, az, 'show', '-g', RG, '-n', 'no-such-bastion')
    refused_alike(oldest, az, 'tunnel', '-g', RG, '-n', HOST, '--target-resource-id', sshd_linux_vm.vm_id,
                  '--resource-port', '70000')
    assert sessions_drain(emulator)
