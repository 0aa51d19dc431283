"""ssh and scp through a Unix-socket tunnel: the ProxyCommand script, LocalTunnel on a socket, argv."""
import hashlib
import os
import shlex
import socket
import stat
import subprocess
import sys
import threading

import pytest

from azext_bastion_native.connect import file as file_transfer
from azext_bastion_native.clients import local_tunnel, ssh
from azext_bastion_native.clients.local_tunnel import LocalTunnel
from azext_bastion_native.clients.ssh import SshLogin
from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.connect.file import UPLOAD, Transfer
from tests.unit.relay.doubles import FakeDataPlane, echo_server_on_a_thread

pytestmark = pytest.mark.skipif(not local_tunnel.unix_sockets_supported(), reason='needs AF_UNIX')
TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)


class UnixServer:
    """A Unix socket server on a thread: ``handle(connection)`` runs once per accepted connection."""

    def __init__(self, path, handle):
        self.path, self.handle = path, handle
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            self.handle(connection)

    def close(self):
        self.thread.join(10)
        self.listener.close()


def _proxy(path):
    return subprocess.Popen([sys.executable, '-I', local_tunnel.PROXY_SCRIPT, path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _digest_of_everything(connection):
    """Read to EOF (the proxy's half-close), then answer: proves the answer still reaches the proxy's stdout."""
    digest = hashlib.sha256()
    while True:
        data = connection.recv(1 << 16)
        if not data:
            break
        digest.update(data)
    connection.sendall(digest.digest())


def test_proxy_half_closes_on_stdin_eof_and_still_delivers_the_answer(tmp_path):
    path = str(tmp_path / 's')
    server = UnixServer(path, _digest_of_everything)
    payload = bytes(range(256)) * 4096 + b'\r\n\x00\xff'          # binary-safe: every byte value, CR LF, NUL
    proxy = _proxy(path)
    stdout, stderr = proxy.communicate(payload, timeout=20)
    server.close()
    assert proxy.returncode == 0, stderr
    assert stdout == hashlib.sha256(payload).digest()


def test_proxy_exits_when_the_socket_closes_even_with_stdin_open(tmp_path):
    path = str(tmp_path / 's')
    server = UnixServer(path, lambda connection: connection.sendall(b'bye'))
    proxy = _proxy(path)
    try:
        assert proxy.stdout.read() == b'bye'                        # EOF: the proxy ended, stdin still open
        assert proxy.wait(10) == 0
    finally:
        proxy.kill()
        proxy.stdin.close()
        proxy.stdout.close()
        proxy.stderr.close()
    server.close()


def test_proxy_reports_a_missing_socket(tmp_path):
    proxy = _proxy(str(tmp_path / 'absent'))
    _, stderr = proxy.communicate(b'', timeout=20)
    assert proxy.returncode == 255 and b'Could not reach the local Bastion tunnel' in stderr


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


def test_proxy_command_doubles_percent_signs_for_ssh(tmp_path):
    tunnel = LocalTunnel(FakeDataPlane('ws://unused'), TARGET, unix_path=str(tmp_path / '100%' / 'tunnel'))
    assert '100%%' in tunnel.proxy_command and '100%/' not in tunnel.proxy_command
    assert LocalTunnel(FakeDataPlane('ws://unused'), TARGET).proxy_command is None


def test_ssh_and_scp_use_the_proxy_command_instead_of_a_port_and_keep_the_pinning():
    argv = ssh.ssh_argv('ssh', None, SshLogin('password', 'u'), 'bastion.vm', ['-o', 'ProxyCommand=mine', 'id'],
                        name='bastion-vm-1', proxy_command="python -I '/a b/proxy.py' /s")
    assert '-p' not in argv and 'None' not in argv
    assert argv.index("ProxyCommand=python -I '/a b/proxy.py' /s") < argv.index('ProxyCommand=mine')   # ours holds
    assert 'HostKeyAlias=bastion.vm' in argv and argv[-4:] == ['bastion-vm-1', '-o', 'ProxyCommand=mine', 'id']
    scp = file_transfer.scp_argv('scp', None, SshLogin('password', 'u'), 'bastion.vm', Transfer(UPLOAD, '/f', 'g'),
                                 name='bastion-vm-1', proxy_command='p /s')
    assert '-P' not in scp and 'ProxyCommand=p /s' in scp and 'HostKeyAlias=bastion.vm' in scp
    assert scp[-2:] == ['/f', 'bastion-vm-1:g']


def test_proxy_ends_quietly_on_ctrl_c(tmp_path):
    """Ctrl+C in a terminal reaches the ProxyCommand too: it must end without a traceback on the terminal."""
    import signal as signals
    import socket as sockets
    import subprocess
    import sys
    import time
    from azext_bastion_native.clients import unix_socket_proxy
    path = str(tmp_path / 'tunnel')
    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    proxy = subprocess.Popen([sys.executable, '-I', unix_socket_proxy.__file__, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        accepted, _ = listener.accept()
        time.sleep(0.2)
        proxy.send_signal(signals.SIGINT)
        _, stderr = proxy.communicate(timeout=10)
        accepted.close()
    finally:
        listener.close()
        if proxy.poll() is None:
            proxy.kill()
    assert proxy.returncode == -signals.SIGINT
    assert b'Traceback' not in stderr
