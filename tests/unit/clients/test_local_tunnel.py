"""clients/local_tunnel.py: LocalTunnel on a loopback port or a private Unix socket, its ProxyCommand, and what a
tunnel that cannot listen says."""
import os
import shlex
import socket
import stat
import subprocess
import sys

import pytest

from azext_bastion_native.clients import local_tunnel
from azext_bastion_native.clients.local_tunnel import LocalTunnel, LocalTunnelError, private_socket_tunnel
from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.errors import Kind
from tests.unit.relay.doubles import FakeDataPlane, echo_server_on_a_thread

TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)
needs_unix_sockets = pytest.mark.skipif(not local_tunnel.unix_sockets_supported(), reason='needs AF_UNIX')


@needs_unix_sockets
def test_local_tunnel_on_a_socket_serves_the_proxy_command_through_a_shell(tmp_path):
    """The socket is 0600 and gone after exit; its ProxyCommand survives /bin/sh with spaces and quotes in paths."""
    directory = tmp_path / "it's a dir"
    directory.mkdir(mode=0o700)
    path = str(directory / 'tunnel')
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)
        with LocalTunnel(client, TARGET, unix_path=path) as tunnel:
            assert tunnel.port is None and tunnel.unix_path == path
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            command = tunnel.proxy_command
            assert shlex.split(command) == [sys.executable, '-I', local_tunnel.PROXY_SCRIPT, path]
            shell = subprocess.Popen(['/bin/sh', '-c', 'exec ' + command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
            payload = os.urandom(200_000)
            shell.stdin.write(payload)
            shell.stdin.flush()
            received = b''
            while len(received) < len(payload):
                chunk = shell.stdout.read1(1 << 20)
                assert chunk
                received += chunk
            shell.stdin.close()
            shell.wait(10)
            shell.stdout.close()
            assert received == payload
    assert not os.path.exists(path)
    assert client.closed and not client.live


@needs_unix_sockets
def test_proxy_command_doubles_percent_signs_for_ssh(tmp_path):
    tunnel = LocalTunnel(FakeDataPlane('ws://unused'), TARGET, unix_path=str(tmp_path / '100%' / 'tunnel'))
    assert '100%%' in tunnel.proxy_command and '100%/' not in tunnel.proxy_command
    assert LocalTunnel(FakeDataPlane('ws://unused'), TARGET).proxy_command is None


def test_a_port_in_use_is_a_local_refusal_naming_the_address_and_the_client_is_closed():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        client = FakeDataPlane('ws://unused')
        with pytest.raises(LocalTunnelError) as refused:
            with LocalTunnel(client, TARGET, port=port):
                pytest.fail('the tunnel must not start on a port in use')
    assert refused.value.kind is Kind.LOCAL
    assert refused.value.message.startswith(f'Could not listen on 127.0.0.1:{port}: ')
    assert client.closed


def test_a_tunnel_on_a_loopback_port_relays_and_deletes_its_sessions_on_exit():
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)
        with LocalTunnel(client, TARGET) as tunnel:
            assert tunnel.unix_path is None and tunnel.port
            with socket.create_connection(('127.0.0.1', tunnel.port), timeout=10) as sock:
                sock.sendall(b'ping')
                assert sock.recv(4) == b'ping'
            assert client.minted == 1
    assert client.closed and not client.live


@needs_unix_sockets
def test_the_private_socket_lives_in_a_0700_directory_gone_on_exit():
    client = FakeDataPlane('ws://unused')
    with private_socket_tunnel(client, TARGET) as tunnel:
        directory = os.path.dirname(tunnel.unix_path)
        assert os.path.basename(tunnel.unix_path) == local_tunnel.SOCKET_NAME
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert not os.path.exists(directory) and client.closed
