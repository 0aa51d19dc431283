"""A local Bastion tunnel for the duration of a `with` block.

The tunnel engine (relay.tunnel.TunnelServer) on 127.0.0.1:<free port>, run on a background thread for as long as a
native client runs in the foreground. In-process rather than `ssh -o ProxyCommand=az ...`: one az start-up and one
sign-in instead of two, and one owner for every Bastion session, so leaving the `with` block - normal exit, error or
Ctrl+C - deletes them all before the command returns. ssh and scp need no port: there the tunnel listens on a Unix
socket in a private 0700 directory and they reach it through a tiny ProxyCommand (unix_socket_proxy.py), so no other
local user can use our identity through a loopback port. RDP clients and Windows (no AF_UNIX guarantee) keep the
loopback port."""

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading

from azext_bastion_native.errors import Kind, Refused

logger = logging.getLogger(__name__)

START_TIMEOUT = 15.0
GRACE_PERIOD = 5.0
SOCKET_NAME = 'tunnel'      # short: a Unix socket path has ~104 bytes at most
PROXY_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'unix_socket_proxy.py')


class LocalTunnelError(Refused):
    """The local tunnel could not start (listen, or be ready in time)."""

    def __init__(self, message):
        super().__init__(message, kind=Kind.LOCAL)


class LocalTunnel:
    """``with LocalTunnel(client, target) as tunnel:`` ... connect to ``tunnel.port`` on 127.0.0.1.

    With ``unix_path`` it listens on that Unix socket (mode 0600; put it in a private directory) instead,
    ``port`` stays None and ssh gets there through ``proxy_command``; the socket file is removed on exit.
    ``client`` is a dataplane DataPlaneClient; the tunnel closes it (deleting live sessions) on exit."""

    def __init__(self, client, target, bind_address='127.0.0.1', port=0, grace_period=GRACE_PERIOD,
                 unix_path=None):
        from azext_bastion_native.relay.tunnel import TunnelServer
        self.server = TunnelServer(client, target, bind_address=bind_address, port=port, grace_period=grace_period,
                                   unix_path=unix_path)
        self.client = client
        self.port = None
        self._loop = None
        self._ready = threading.Event()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name='bastion-tunnel', daemon=True)

    def _run(self):
        from azext_bastion_native.relay.event_loop import run
        try:
            run(self._main())           # on uvloop where it is installed, as `tunnel` runs
        except Exception as err:  # pylint: disable=broad-except
            self._failure = self._failure or err
        finally:
            self._ready.set()

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        try:
            _, self.port = await self.server.start()
        except OSError as err:
            where = self.unix_path or f'{self.server.bind_address}:{self.server.port}'
            self._failure = LocalTunnelError(f'Could not listen on {where}: {err.strerror or err}')
            await self.client.aclose(timeout=GRACE_PERIOD)
            return
        self._ready.set()
        await self.server.serve()

    @property
    def unix_path(self):
        return self.server.unix_path

    @property
    def proxy_command(self):
        """ssh's ProxyCommand to reach a Unix-socket tunnel (None on a port), quoted by clients.ssh."""
        from azext_bastion_native.clients.ssh import proxy_command_line
        if self.unix_path is None:
            return None
        return proxy_command_line([sys.executable, '-I', PROXY_SCRIPT, self.unix_path])

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.close()
            raise LocalTunnelError('The local tunnel did not start in time.')
        if self._failure is not None:
            self._thread.join(GRACE_PERIOD)
            raise self._failure
        logger.debug('local tunnel listening on %s', self.unix_path or f'{self.server.bind_address}:{self.port}')
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        """Stop listening, end live connections, delete their Bastion sessions; wait for all of it."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.server.stop)
            except RuntimeError:
                pass        # the loop finished meanwhile
        if self._thread.is_alive():
            # serve() needs at most grace_period to end connections and as long again to delete sessions.
            self._thread.join(self.server.grace_period * 2 + 5)
            if self._thread.is_alive():
                logger.warning('The local tunnel did not stop in time; some Bastion sessions may stay open '
                               'until they expire.')


def unix_sockets_supported():
    """AF_UNIX is guaranteed on POSIX; Windows has it only on some builds, and OpenSSH there cannot use it."""
    return hasattr(socket, 'AF_UNIX') and os.name == 'posix'


@contextlib.contextmanager
def private_socket_tunnel(client, target):
    """A LocalTunnel on a Unix socket in a fresh private (0700) directory, which is gone on exit."""
    from azext_bastion_native.clients.tempfiles import private_directory
    with private_directory(prefix='az-bastion-') as directory:
        with LocalTunnel(client, target, unix_path=os.path.join(directory, SOCKET_NAME)) as tunnel:
            yield tunnel
