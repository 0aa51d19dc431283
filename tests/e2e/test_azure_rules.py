"""What Azure and Microsoft's own clients do, end to end through the real `az`: the data plane's X-Node-Id on a
session's DELETE, the Developer SKU's limits (vmPort as a string, no custom port, one session at a time), Bastion
host naming rules, and properties checked per api-version."""

import json
import socket

import pytest

from tests.e2e.arrange import RG, refused
from tests.e2e.test_tunnel import _echo
from tests.e2e.tunnel_helpers import RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e

ECHO_VM_PORT = 7007


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    emulator.delete('/_emulator/faults')


@pytest.fixture(scope='module')
def vm_id(emulator):
    return emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')


def test_a_session_minted_without_a_node_id_is_deleted_without_the_header(
        az_env, emulator, echo_server, vm_id, tmp_path):
    """Bastion answered "nodeId": null: the DELETE carries no X-Node-Id (upstream's tunnel.py cleanup sends none);
    the emulator refuses one that does, which would leave the session open on the host."""
    emulator.set_vm_endpoint('linux-vm', ECHO_VM_PORT, echo_server.host, echo_server.port)
    emulator.post('/_emulator/faults', {'no_node_id': True})
    tunnel = RunningTunnel(az_env, '--target-resource-id', vm_id, '--resource-port', ECHO_VM_PORT,
                           stderr_path=tmp_path / 'tunnel.err')
    try:
        assert _echo(tunnel.port) == b'ping'
        assert sessions_drain(emulator), json.dumps(emulator.get('/_emulator/sessions').json()) + tunnel.stderr()
    finally:
        tunnel.stop()
    assert 'could not' not in tunnel.stderr().lower(), tunnel.stderr()


def test_entra_sign_in_in_a_cloud_without_a_known_scope_is_refused_before_anything_is_sent(az, emulator, vm_id):
    """The emulator is a cloud outside Microsoft's three; with no scope configured (az-login configures one, as a
    user of such a cloud would), aad is refused as Microsoft's ssh extension refuses it, with no session minted."""
    import subprocess
    emulator.delete('/_emulator/requests')
    env = dict(az.env, AZURE_BASTION_NATIVE_SSH_CERTIFICATE_SCOPE='')
    result = subprocess.run([az.executable, 'network', 'bastion', 'ssh', '-g', RG, '-n', 'demo-bastion',
                             '--target-resource-id', vm_id, '--auth-type', 'aad'], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    refused(result, 'not known for the cloud', 'az config set bastion_native.ssh_certificate_scope=')
    seen = emulator.get('/_emulator/requests').json()['requests']
    assert not [r for r in seen if 'ssh-cert' in (r.get('body') or '') or '/api/' in r['path']], seen


# -- the Developer SKU: vmPort as a string, no custom port, no concurrent sessions ------------------------------
@pytest.fixture(scope='module')
def developer_host(az, network):
    """A Developer host on a network of its own, peered with linux-vm's."""
    from tests.e2e.arrange import make_vnet, peer_networks, unique
    name = unique('devlim')
    make_vnet(network, name + '-vnet', bastion_prefix=None)
    peer_networks(network, name + '-vnet', 'demo-vnet')
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet', '--sku', 'Developer')
    return name


def _data_plane_requests(emulator, path):
    return [r for r in emulator.get('/_emulator/requests').json()['requests'] if r['path'] == path]


def test_developer_connection_sends_vm_port_as_a_string(az_env, emulator, developer_host, sshd_linux_vm, tmp_path):
    emulator.delete('/_emulator/requests')
    tunnel = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                           host=developer_host, stderr_path=tmp_path / 'tunnel.err')
    try:
        with socket.create_connection(('127.0.0.1', tunnel.port), timeout=20) as conn:
            conn.settimeout(20)
            assert conn.recv(64).startswith(b'SSH-2.0-')
    finally:
        tunnel.stop()
    [connection] = _data_plane_requests(emulator, '/api/connection')
    assert json.loads(connection['body'])['vmPort'] == '22'     # as Microsoft's clients send their --resource-port


@pytest.mark.parametrize('command', ['tunnel', 'ssh'])
def test_developer_custom_port_is_refused_before_anything_is_sent(az, emulator, developer_host, vm_id, command):
    emulator.delete('/_emulator/requests')
    extra = ['--port', '0'] if command == 'tunnel' else ['--auth-type', 'password']
    result = az('network', 'bastion', command, '-g', RG, '-n', developer_host, '--target-resource-id', vm_id,
                '--resource-port', '2222', *extra, check=False, timeout=60)
    refused(result, 'Developer SKU, which has no custom ports', '22', '3389', 'Standard or Premium')
    assert _data_plane_requests(emulator, '/api/connection') == []
    assert _data_plane_requests(emulator, '/api/tokens') == []


def test_developer_second_concurrent_connection_is_refused_with_a_clear_message(
        az_env, emulator, developer_host, sshd_linux_vm, tmp_path):
    tunnel = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                           host=developer_host, stderr_path=tmp_path / 'tunnel.err')
    try:
        with socket.create_connection(('127.0.0.1', tunnel.port), timeout=20) as first:
            first.settimeout(20)
            assert first.recv(64).startswith(b'SSH-2.0-')
            with socket.create_connection(('127.0.0.1', tunnel.port), timeout=20) as second:
                second.settimeout(20)
                assert second.recv(64) == b''                        # closed at once, nothing relayed
            first.sendall(b'SSH-2.0-still-here\r\n')                 # the open one goes on
            assert len(emulator.get('/_emulator/sessions').json()) == 1
        assert sessions_drain(emulator, timeout=15)
        with socket.create_connection(('127.0.0.1', tunnel.port), timeout=20) as third:   # one at a time again
            third.settimeout(20)
            assert third.recv(64).startswith(b'SSH-2.0-')
    finally:
        tunnel.stop()
    assert 'Developer SKU host has no concurrent sessions' in tunnel.stderr(), tunnel.stderr()


def test_emulator_refuses_a_second_developer_session_as_azure_does(az_env, emulator, developer_host, sshd_linux_vm,
                                                                   tmp_path):
    """Two tunnels (two processes: neither knows the other) through one Developer host: Bastion refuses the
    second session, and the second tunnel says why."""
    first = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                          host=developer_host, stderr_path=tmp_path / 'first.err')
    second = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                           host=developer_host, stderr_path=tmp_path / 'second.err')
    try:
        with socket.create_connection(('127.0.0.1', first.port), timeout=20) as held:
            held.settimeout(20)
            assert held.recv(64).startswith(b'SSH-2.0-')
            with socket.create_connection(('127.0.0.1', second.port), timeout=20) as refused_one:
                refused_one.settimeout(30)
                assert refused_one.recv(64) == b''
    finally:
        first.stop()
        second.stop()
    assert 'does not support concurrent connections' in second.stderr(), second.stderr()
