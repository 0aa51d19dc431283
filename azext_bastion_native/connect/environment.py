"""The machine-facing parts of a connecting command (OS, program lookup, process runner, HTTP, the local tunnel),
injectable in unit tests."""
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from azext_bastion_native.capabilities import client_os
from azext_bastion_native.clients.launch import find_program


@dataclass
class Environment:
    """The machine-facing parts, injectable in tests: OS, program lookup, process runner, HTTP, tunnel."""
    system: str = field(default_factory=platform.system)
    which: Callable = find_program               # never from the current directory (Windows' shutil.which is)
    run: Optional[Callable] = None               # run(argv) -> exit code; default clients.launch.run_foreground
    http_get: Optional[Callable] = None          # requests.get-like, for /api/rdpfile
    open_tunnel: Optional[Callable] = None       # open_tunnel(destination) -> context manager with .port
    #                                              (and .proxy_command when it listens on a Unix socket)
    wait_forever: Optional[Callable] = None      # blocks until Ctrl+C (RDP with no local client)

    @property
    def client(self):
        return client_os(self.system)

    def run_program(self, argv):
        if self.run is not None:
            return self.run(argv)
        from azext_bastion_native.clients.launch import run_foreground
        return run_foreground(argv)

    def tunnel(self, destination, unix_socket=False):
        """The local tunnel; ``unix_socket`` (ssh, scp): on a private Unix socket where this OS has them. It raises
        clients.local_tunnel.LocalTunnelError (a Refused) when it cannot start."""
        if self.open_tunnel is not None:
            return self.open_tunnel(destination)
        from azext_bastion_native.connect.data_plane import data_plane_client
        from azext_bastion_native.clients.local_tunnel import LocalTunnel, private_socket_tunnel, \
            unix_sockets_supported
        client = data_plane_client(destination.endpoint, destination.get_arm_token)
        if unix_socket and self.client != 'windows' and unix_sockets_supported():
            return private_socket_tunnel(client, destination.target)
        return LocalTunnel(client, destination.target)

    def block_until_interrupted(self):
        if self.wait_forever is not None:
            return self.wait_forever()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return None
