"""What Azure and Microsoft's own clients do, end to end through the real `az`: the data plane's X-Node-Id on a
session's DELETE, the Developer SKU's limits (vmPort as a string, no custom port, one session at a time), Bastion
host naming rules, and properties checked per api-version."""

import json
import socket

import pytest

from tests.e2e.arrange import RG, refused
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


def _echo(port, payload=b'ping'):
    with socket.create_connection(('127.0.0.1', port), timeout=15) as sock:
        sock.sendall(payload)
        got = b''
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


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
