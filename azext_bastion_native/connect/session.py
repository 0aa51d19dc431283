"""From CLI arguments to the data plane, shared by every connecting command (tunnel, proxy, ssh, rdp, ssh-config,
file, doctor): the pre-flight as typed CLI errors, one ARM GET of the host, a fresh-ARM-token provider, the engine's
log lines under az's own logger, the resolved Destination, the injectable Environment, and the exit code."""
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from azext_bastion_native.bastion_facts import subscription_of
from azext_bastion_native.capabilities import client_os
from azext_bastion_native.clients.launch import find_program

PACKAGE_LOGGER = 'azext_bastion_native'


def route_engine_logs():
    """dataplane/ and relay/ log with the standard logging module (they know nothing of az); hang the package's
    logger under az's 'cli' logger so their lines follow --verbose/--debug/--only-show-errors like az's own."""
    logging.getLogger(PACKAGE_LOGGER).parent = logging.getLogger('cli')


def data_plane_settings():
    """The data plane's connection settings from the environment, with azure-cli's User-Agent beside ours (e.g.
    AZURECLI/2.91.0 bastion-native/0.1.0): dataplane/ imports nothing from azure.cli, so the versions come from here."""
    from importlib.metadata import PackageNotFoundError, version
    from azure.cli.core import __version__ as az_version
    from azext_bastion_native.dataplane.settings import ConnectionSettings, client_user_agent
    try:
        ours = version('bastion-native')
    except PackageNotFoundError:
        ours = None
    return ConnectionSettings.from_environ(user_agent=client_user_agent(az_version, ours))


def data_plane_client(endpoint, get_arm_token):
    """The DataPlaneClient of one command run, its sessions journaled (see session_journal)."""
    from azext_bastion_native.dataplane.client import DataPlaneClient
    return DataPlaneClient(endpoint, get_arm_token, settings=data_plane_settings(), journal=session_journal())


def session_journal():
    """The journal of this run's Bastion sessions, in the user's private directory (the agent's): whatever command
    runs next deletes the sessions of a run killed before it could. None where there is no such directory."""
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable, agent_paths
    from azext_bastion_native.dataplane.journal import SessionJournal
    if not hasattr(os, 'getuid'):
        return None                     # Windows: no private directory of the kind (nor an agent)
    try:
        paths = agent_paths()
    except AgentUnavailable as err:
        logging.getLogger(__name__).debug('Bastion sessions are not journaled: %s', err)
        return None
    return SessionJournal(paths.descriptor)


def arm_token_getter(cli_ctx, subscription=None):
    """A callable returning an ARM access token with at least 5 minutes left: asked for each Bastion session (so a
    long-lived tunnel never presents an expired one), kept with its expiry in between (fetching costs a call into
    MSAL per connection otherwise), fetched off the event loop by the engine, never logged."""
    from azure.cli.core._profile import Profile
    from azext_bastion_native.dataplane.tokens import CachedToken
    profile = Profile(cli_ctx=cli_ctx)

    def fetch():
        _, token, entry = profile.get_raw_token(subscription=subscription)[0]
        return token, token_expiry(entry)
    return CachedToken(fetch)


def token_expiry(entry):
    """POSIX expiry of a get_raw_token() entry: ``expires_on`` (epoch seconds) or ``expiresOn`` (local time text);
    None when neither reads, so the token is fetched again for every session."""
    import datetime
    entry = entry if isinstance(entry, dict) else {}
    try:
        return float(entry['expires_on'])
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return datetime.datetime.strptime(str(entry['expiresOn']), '%Y-%m-%d %H:%M:%S.%f').timestamp()
    except (KeyError, ValueError):
        return None


def connect_request(resource_group, name, target_resource_id, target_ip_address, port):
    """The tunnel engine's request; its argument checks (no network) run here."""
    from azext_bastion_native.connect.preflight import ConnectRequest, check_arguments
    request = ConnectRequest(resource_group, name, port, target_resource_id, target_ip_address)
    check_arguments(request)
    return request


def resolve_endpoint(cli_ctx, request):
    """One ARM GET of the host (native client on, IP connect when asked): (host, Endpoint, Target, get_token)."""
    from azext_bastion_native._client_factory import cf_network
    from azext_bastion_native.connect.preflight import plan_connection
    from azext_bastion_native.management.hosts import get_host
    host = get_host(cf_network(cli_ctx), request.resource_group, request.name)
    endpoint, target = plan_connection(host, request)
    return host, endpoint, target, arm_token_getter(cli_ctx, subscription_of(host.id))


@dataclass(frozen=True)
class Destination:
    """Everything resolved about the connection: where the data plane is and what the tunnel reaches."""
    endpoint: object                     # dataplane.Endpoint
    target: object                       # dataplane.Target
    target_label: str                    # the VM resource id or IP: names the VM for host-key pinning
    get_arm_token: Callable[[], str] = field(repr=False)
    target_os: Optional[str] = None
    admin_username: Optional[str] = None


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


def resolve_destination(cli_ctx, request):
    """Host (native client on, IP connect when asked), VM (running, on a network the host reaches), data-plane
    endpoint and target."""
    host, endpoint, target, token = resolve_endpoint(cli_ctx, request)
    if request.target_ip_address:
        return Destination(endpoint, target, request.target_ip_address, token)
    from azext_bastion_native.connect.preflight import check_reach
    from azext_bastion_native.management import vms
    from azext_bastion_native.management.network_reach import read_reach
    vm = vms.get_running_vm(cli_ctx, request.target_resource_id)
    check_reach(request, read_reach(cli_ctx, host, vm))
    return Destination(endpoint, target, request.target_resource_id, token,
                       target_os=vms.os_type(vm), admin_username=vms.admin_username(vm))


def exit_with(run):
    """Run a native client session; its exit code becomes the command's (no output, no traceback).

    SIGTERM/SIGHUP unwind through every clean-up, like Ctrl+C, instead of leaving sessions and keys behind."""
    from azext_bastion_native.clients.launch import Terminated, termination_unwinds
    route_engine_logs()
    try:
        with termination_unwinds():
            code = run()
    except Terminated as stop:
        code = stop.exit_code
    if code:
        raise SystemExit(code)


def check_ssh_login_arguments(auth_type, username, ssh_key):
    from azext_bastion_native.errors import Kind, Refused
    if auth_type == 'ssh-key' and not ssh_key:
        raise Refused('--auth-type ssh-key needs --ssh-key PATH (your private key file).', kind=Kind.MISSING)
    if ssh_key and auth_type != 'ssh-key':
        raise Refused(f'--ssh-key goes with --auth-type ssh-key, not {auth_type}.',
                      'Use --auth-type ssh-key --ssh-key PATH.', Kind.USAGE)
    if auth_type == 'aad' and username:
        raise Refused('--username does not go with --auth-type aad: the login name is the one in your Entra ID '
                      'certificate.', 'Drop --username.', Kind.USAGE)
