"""The tunnel's other roads to Bastion: a Developer SKU host (its /api/connection + /omni/webtunnel path), and an
HTTPS proxy (HTTPS_PROXY honoured for the data plane's HTTPS calls and its websocket, NO_PROXY respected)."""

import asyncio
import hashlib
import os
import subprocess
import threading
import time
import uuid

import pytest
from bastion_emulator.testing.az_login import az_executable

from tests.e2e.test_tunnel import _echo_round_trip
from tests.e2e.tunnel_helpers import RG, RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e
ECHO_VM_PORT = 7017


@pytest.fixture(scope='module')
def echo_vm(emulator, echo_server):
    emulator.set_vm_endpoint('linux-vm', ECHO_VM_PORT, echo_server.host, echo_server.port)
    return emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')


@pytest.fixture(scope='module')
def developer_host(network, emulator):
    from azure.mgmt.network.models import BastionHost, Sku, SubResource
    name = f'dev-{uuid.uuid4().hex[:6]}'
    vnet_id = emulator.resource_id('Microsoft.Network/virtualNetworks', 'demo-vnet')
    network.bastion_hosts.begin_create_or_update(RG, name, BastionHost(
        location='westeurope', sku=Sku(name='Developer'), virtual_network=SubResource(id=vnet_id))).result()
    return name


def test_tunnel_through_a_developer_sku_host(az_env, emulator, sshd_linux_vm, developer_host, tmp_path):
    """/api/connection once per command (as upstream), every session on the data pod it names: the emulator
    answers another host there and refuses sessions on the dnsName of a Developer host. On the SSH port, one
    connection at a time: Developer has no custom ports and no concurrent sessions."""
    started = time.time()
    tunnel = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', '22',
                           host=developer_host, stderr_path=tmp_path / 'dev.err')
    try:
        for _ in range(3):
            assert asyncio.run(_ssh_banner(tunnel.port)).startswith(b'SSH-2.0-')
            assert sessions_drain(emulator)     # one at a time: the next connection once this one's session is gone
    finally:
        tunnel.stop()
    assert sessions_drain(emulator)
    # Recorded once answered (a websocket: once closed), hence after the tunnel has stopped.
    paths = [r['path'] for r in emulator.get('requests').json()['requests']
             if r['listener'] != 'main' and r['time'] >= started]
    assert paths.count('/api/connection') == 1, paths       # the Developer road, asked once
    assert paths.count('/api/tokens') == 3
    assert any(p.startswith('/omni/webtunnel/') for p in paths), paths


async def _ssh_banner(port):
    """The first line sshd sends through a new connection of the tunnel (each connection its own session)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), 30)
    try:
        return await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
        await writer.wait_closed()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on loopback that records where it was asked to go."""

    def __init__(self):
        self.targets = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = None

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, '127.0.0.1', 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        request = await reader.readuntil(b'\r\n\r\n')
        method, target = request.split(b' ')[:2]
        if method != b'CONNECT':
            writer.close()
            return
        self.targets.append(target.decode())
        host, port = target.decode().rsplit(':', 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b'HTTP/1.1 200 Connection established\r\n\r\n')
        await writer.drain()

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.mark.parametrize('bypass', [False, True])
def test_https_proxy_carries_mint_and_websocket_unless_no_proxy(az, az_env, emulator, echo_vm, tmp_path, bypass):
    dns_name = az('network', 'bastion', 'show', '-g', RG, '-n', 'demo-bastion', '--query', 'dnsName', '-o', 'tsv')
    data_plane = dns_name.stdout.strip()
    with ConnectProxy() as proxy:
        proxy_url = f'http://127.0.0.1:{proxy.port}'
        no_proxy = '127.0.0.1' if bypass else ''
        env = dict(az_env, HTTPS_PROXY=proxy_url, https_proxy=proxy_url, NO_PROXY=no_proxy, no_proxy=no_proxy)
        tunnel = RunningTunnel(env, '--target-resource-id', echo_vm, '--resource-port', ECHO_VM_PORT,
                               stderr_path=tmp_path / 'proxy.err')
        try:
            payload = os.urandom(64 * 1024)
            assert asyncio.run(_echo_round_trip(tunnel.port, payload)) == hashlib.sha256(payload).hexdigest()
        finally:
            tunnel.stop()
    if bypass:
        assert proxy.targets == []
    else:
        # The mint (HTTPS) and the websocket each went through a CONNECT to the data plane's host:port.
        assert proxy.targets.count(data_plane) >= 2, proxy.targets
    assert sessions_drain(emulator)


def test_listens_on_loopback_unless_told_and_warns_when_told(az_env, emulator, echo_vm, tmp_path):
    default = RunningTunnel(az_env, '--target-resource-id', echo_vm, '--resource-port', ECHO_VM_PORT,
                            stderr_path=tmp_path / 'default.err')
    try:
        assert default.address == '127.0.0.1'
        assert 'anyone who can reach' not in default.stderr()
        # The same port again: the error says so and names the way out; no traceback, no session.
        result = subprocess.run([az_executable(), 'network', 'bastion', 'tunnel', '-g', RG, '-n', 'demo-bastion',
                                 '--target-resource-id', echo_vm, '--resource-port', str(ECHO_VM_PORT),
                                 '--port', str(default.port)], env=az_env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode != 0
        assert f'Cannot listen on 127.0.0.1 port {default.port}' in result.stderr and 'Traceback' not in result.stderr
    finally:
        default.stop()
    wide = RunningTunnel(az_env, '--target-resource-id', echo_vm, '--resource-port', ECHO_VM_PORT,
                         '--bind-address', '0.0.0.0', stderr_path=tmp_path / 'wide.err')
    try:
        assert wide.address == '0.0.0.0'
        assert 'anyone who can reach' in wide.stderr()
    finally:
        wide.stop()
    assert sessions_drain(emulator)
