"""clients/unix_socket_proxy.py: ssh's ProxyCommand to a Unix-socket tunnel, run as ssh runs it (a stand-alone
script): bytes both ways with a half-close, its exits, and Ctrl+C."""
import hashlib
import socket
import subprocess
import sys
import threading

import pytest

from azext_bastion_native.clients import local_tunnel

pytestmark = pytest.mark.skipif(not local_tunnel.unix_sockets_supported(), reason='needs AF_UNIX')


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


def test_proxy_without_a_socket_path_prints_its_usage():
    proxy = subprocess.Popen([sys.executable, '-I', local_tunnel.PROXY_SCRIPT], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proxy.communicate(b'', timeout=20)
    assert proxy.returncode == 2 and stdout == b''
    assert stderr == b'usage: unix_socket_proxy.py SOCKET_PATH\n'


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
