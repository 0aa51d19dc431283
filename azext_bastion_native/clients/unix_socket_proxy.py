"""Copy stdin to a Unix socket and the socket to stdout, bytes as they are, until the socket closes.

ssh's ProxyCommand for a tunnel on a Unix socket: `python -I unix_socket_proxy.py SOCKET`. ssh runs it with a Python
that does not have the extension on sys.path, so this file is a stand-alone script: the standard library only, never
an import of azext_bastion_native. It is run by absolute path."""

import os
import signal
import socket
import sys
import threading

READ_SIZE = 256 * 1024
STDIN_FD, STDOUT_FD = 0, 1


def _stdin_to_socket(sock, stdin_fd):
    """ssh's bytes to the tunnel; at EOF on stdin only our sending half is closed (half-close), so the
    tunnel's last bytes still arrive."""
    try:
        while True:
            data = os.read(stdin_fd, READ_SIZE)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            sock.sendall(data)
    except OSError:
        # The tunnel went away: stop both directions, so the other thread's recv() ends too.
        _shutdown_quietly(sock)


def _shutdown_quietly(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def relay(sock, stdin_fd=STDIN_FD, stdout_fd=STDOUT_FD):
    """Relay until the socket's side ends (EOF or error) or stdout is gone; returns then (the stdin reader is a
    daemon thread: a blocked read must not keep the process alive once the tunnel is closed)."""
    threading.Thread(target=_stdin_to_socket, args=(sock, stdin_fd), daemon=True).start()
    try:
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                return
            _write_all(stdout_fd, data)
    except OSError:
        return          # ssh closed our stdout, or the tunnel reset the connection
    finally:
        _shutdown_quietly(sock)


def main(argv):
    # A terminal's Ctrl+C reaches the whole process group, this program included: end quietly like any C
    # ProxyCommand (nc, socat) would, not with a KeyboardInterrupt traceback on the user's terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if len(argv) != 2:
        sys.stderr.write('usage: unix_socket_proxy.py SOCKET_PATH\n')
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[1])
    except OSError as err:
        sys.stderr.write(f'Could not reach the local Bastion tunnel at {argv[1]}: {err.strerror or err}\n')
        return 255
    with sock:
        relay(sock)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
