# --------------------------------------------------------------------------------------------
# `az network bastion ssh` and `az network bastion rdp`: the seed's "Connecting to VMs" table and its
# limitations decide what runs. Order: refusals that need no network (Cloud Shell, Key Vault keys, key
# files, table rows we can already decide), then the host and the VM, then the table again with the
# VM's real OS, then the native client through the tunnel engine. Everything a run creates - Bastion
# sessions, ephemeral keys and certificates, .rdp files - is gone when the command returns.
# --------------------------------------------------------------------------------------------
"""Dispatch connect commands (client OS, target OS, method, options) to the ssh and RDP handlers."""

import contextlib
import dataclasses
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from azext_bastion_native.access import connect_request, resolve_endpoint, route_engine_logs
from azext_bastion_native.capabilities import CapabilityRefused, client_os, decide
from azext_bastion_native.management import vms

logger = logging.getLogger(__name__)

SSH, RDP = 'ssh', 'rdp'
# Handlers
SSH_THROUGH_TUNNEL = 'ssh-through-tunnel'
RDP_GATEWAY_MSTSC = 'rdp-gateway-mstsc'        # Windows: Bastion's .rdp file (RD gateway) + mstsc
RDP_TUNNEL_MSTSC = 'rdp-tunnel-mstsc'          # Windows, --disable-gateway or IP connect: tunnel + mstsc
RDP_TUNNEL_LOCAL_CLIENT = 'rdp-tunnel-local'   # Linux / macOS: tunnel + FreeRDP / open, or a hint
# With IP connect the VM's OS is unknown; each method implies the only OS the table reaches with it.
ASSUMED_TARGET_OS = {SSH: 'linux', RDP: 'windows'}
DEFAULT_PORTS = {SSH: 22, RDP: 3389}


@dataclass(frozen=True)
class ConnectFacts:
    client: str                          # capabilities.client_os(): 'windows' | 'linux' | 'other'
    method: str                          # 'ssh' | 'rdp'
    target_os: Optional[str] = None      # the VM's osType, lower-case; None when connecting by IP
    auth_type: Optional[str] = None
    port: Optional[int] = None           # --resource-port; None = the method's default
    ip_connect: bool = False
    disable_gateway: bool = False


def choose_handler(facts):
    """The handler for these facts, or CapabilityRefused naming the table row (or limitation) and what to do."""
    target_os = facts.target_os or ASSUMED_TARGET_OS[facts.method]
    aad = (facts.auth_type or '').lower() == 'aad'
    if facts.method == RDP and aad and facts.disable_gateway:
        raise CapabilityRefused(
            'Entra ID (AAD) sign-in to RDP goes through the Bastion gateway; --disable-gateway bypasses it.',
            'drop --disable-gateway to sign in with Entra ID, or drop --auth-type aad to use the tunnel')
    decide(facts.client, target_os, facts.method, auth_type=facts.auth_type, custom_port=facts.port,
           ip_connect=facts.ip_connect)
    if facts.method == SSH:
        return SSH_THROUGH_TUNNEL
    if facts.client == 'windows':
        return RDP_TUNNEL_MSTSC if (facts.disable_gateway or facts.ip_connect) else RDP_GATEWAY_MSTSC
    return RDP_TUNNEL_LOCAL_CLIENT


def require_handler(facts):
    """choose_handler(), with a refusal as the CLI's typed error."""
    try:
        return choose_handler(facts)
    except CapabilityRefused as refused:
        from azure.cli.core.azclierror import ValidationError
        raise ValidationError(refused.message, recommendation=refused.recommendation) from None


# -- what we connect to -------------------------------------------------------------------------
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
    which: Callable = shutil.which
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
        """The local tunnel; ``unix_socket`` (ssh, scp): on a private Unix socket where this OS has them."""
        if self.open_tunnel is not None:
            return self.open_tunnel(destination)
        from azext_bastion_native.clients.local_tunnel import LocalTunnel, private_socket_tunnel, \
            unix_sockets_supported
        from azext_bastion_native.dataplane.client import DataPlaneClient
        client = DataPlaneClient(destination.endpoint, destination.get_arm_token)
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
    """Host (native client on, IP connect when asked), VM (running), data-plane endpoint and target."""
    _, endpoint, target, token = resolve_endpoint(cli_ctx, request)
    if request.target_ip_address:
        return Destination(endpoint, target, request.target_ip_address, token)
    vm = vms.get_running_vm(cli_ctx, request.target_resource_id)
    return Destination(endpoint, target, request.target_resource_id, token,
                       target_os=vms.os_type(vm), admin_username=vms.admin_username(vm))


# -- az network bastion ssh ------------------------------------------------------------------------
def check_ssh_login_arguments(auth_type, username, ssh_key):
    from azure.cli.core.azclierror import ArgumentUsageError, RequiredArgumentMissingError
    if auth_type == 'ssh-key' and not ssh_key:
        raise RequiredArgumentMissingError('--auth-type ssh-key needs --ssh-key PATH (your private key file).')
    if ssh_key and auth_type != 'ssh-key':
        raise ArgumentUsageError(f'--ssh-key goes with --auth-type ssh-key, not {auth_type}.',
                                 recommendation='Use --auth-type ssh-key --ssh-key PATH.')
    if auth_type == 'aad' and username:
        raise ArgumentUsageError('--username does not go with --auth-type aad: the login name is the one in '
                                 'your Entra ID certificate.', recommendation='Drop --username.')


def _refuse_early(command_name, facts, resource_group, name, target_resource_id, target_ip_address):
    """Cloud Shell, then the table (its rows name why), then the target arguments; no network call."""
    from azext_bastion_native.guards import refuse_in_cloud_shell
    refuse_in_cloud_shell(command_name)
    require_handler(facts)
    return connect_request(resource_group, name, target_resource_id, target_ip_address,
                           facts.port or DEFAULT_PORTS[facts.method])


def _resolve_and_dispatch(cli_ctx, facts, request):
    """Host and VM, then the table again with the VM's real OS: (handler, Destination)."""
    destination = resolve_destination(cli_ctx, request)
    handler = require_handler(dataclasses.replace(facts, target_os=destination.target_os))
    return handler, destination


def ssh_command(cmd, resource_group_name, name, auth_type, target_resource_id=None, target_ip_address=None,
                username=None, ssh_key=None, resource_port=None, ssh_args=None, environment=None):
    """`az network bastion ssh`: ssh's exit code becomes the command's (SystemExit when non-zero)."""
    from azext_bastion_native.guards import check_ssh_key_file, cloud_vault_suffixes
    environment = environment or Environment()
    auth_type = (auth_type or '').lower()
    facts = ConnectFacts(environment.client, SSH, auth_type=auth_type,
                         port=int(resource_port) if resource_port is not None else None,
                         ip_connect=bool(target_ip_address))
    # Limitations first (Cloud Shell, Key Vault keys, key files, the table), before any network call.
    request = _refuse_early('network bastion ssh', facts, resource_group_name, name, target_resource_id,
                            target_ip_address)
    check_ssh_login_arguments(auth_type, username, ssh_key)
    key_path = check_ssh_key_file(ssh_key, cloud_vault_suffixes(cmd.cli_ctx)) if ssh_key else None
    ssh_program = _find_ssh(environment)
    _, destination = _resolve_and_dispatch(cmd.cli_ctx, facts, request)

    def fetch_certificate(scopes, data):
        from azure.cli.core._profile import Profile
        return Profile(cli_ctx=cmd.cli_ctx).get_msal_token(scopes, data)[1]

    exit_with(lambda: run_ssh(destination, auth_type, username, key_path, ssh_args or [], ssh_program, environment,
                              fetch_certificate=fetch_certificate, cloud_name=cmd.cli_ctx.cloud.name))


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


def _find_ssh(environment):
    from azext_bastion_native.clients.ssh import SshClientNotFound, find_ssh
    try:
        return find_ssh(environment.which)
    except SshClientNotFound as err:
        from azure.cli.core.azclierror import UnclassifiedUserFault
        raise UnclassifiedUserFault(str(err), recommendation='Install OpenSSH (Debian/Ubuntu: apt-get install '
                                    'openssh-client; Windows: Settings > Optional features > OpenSSH Client).') \
            from None


def run_ssh(destination, auth_type, username, key_path, ssh_args, ssh_program, environment,
            fetch_certificate=None, cloud_name=None):
    """Sign-in material, then the tunnel, then ssh in the foreground; every piece is undone on the way out."""
    from azext_bastion_native.clients.ssh import SshLogin, host_key_alias, ssh_argv
    with contextlib.ExitStack() as cleanup:
        if auth_type == 'aad':
            login = _entra_login(cleanup, fetch_certificate, cloud_name)
        else:
            login = SshLogin(auth_type, username or destination.admin_username, key_path)
        tunnel = cleanup.enter_context(tunnel_errors(environment, destination, unix_socket=True))
        argv = ssh_argv(ssh_program, tunnel.port, login, host_key_alias(destination.target_label), ssh_args,
                        proxy_command=getattr(tunnel, 'proxy_command', None))
        return environment.run_program(argv)


def _entra_login(cleanup, fetch_certificate, cloud_name):
    from azure.cli.core.azclierror import AuthenticationError
    from azext_bastion_native.clients.entra_cert import CertificateError, obtain_certificate
    from azext_bastion_native.clients.ssh import SshLogin
    from azext_bastion_native.clients.tempfiles import private_directory
    directory = cleanup.enter_context(private_directory(prefix='az-bastion-aad-'))
    try:
        credentials = obtain_certificate(directory, fetch_certificate, cloud_name)
    except CertificateError as err:
        raise AuthenticationError(str(err), recommendation='Check that you signed in with `az login` as a user '
                                  'who has the Virtual Machine User Login role on the VM.') from None
    logger.debug('Entra ID certificate issued for principal %s', credentials.principal)
    return SshLogin('aad', credentials.principal, credentials.private_key_path, credentials.certificate_path)


@contextlib.contextmanager
def tunnel_errors(environment, destination, unix_socket=False):
    """The local tunnel, with a failure to start it as the CLI's typed error."""
    from azext_bastion_native.clients.local_tunnel import LocalTunnelError
    try:
        with environment.tunnel(destination, unix_socket=unix_socket) as tunnel:
            yield tunnel
    except LocalTunnelError as err:
        from azure.cli.core.azclierror import ClientRequestError
        raise ClientRequestError(str(err)) from None


# -- az network bastion rdp ------------------------------------------------------------------------
def rdp_command(cmd, resource_group_name, name, target_resource_id=None, target_ip_address=None, auth_type=None,
                resource_port=None, configure=False, disable_gateway=False, enable_mfa=False, environment=None):
    """`az network bastion rdp`: the RDP client's exit code becomes the command's (SystemExit when non-zero)."""
    environment = environment or Environment()
    auth_type = (auth_type or '').lower() or None
    facts = ConnectFacts(environment.client, RDP, auth_type=auth_type,
                         port=int(resource_port) if resource_port is not None else None,
                         ip_connect=bool(target_ip_address), disable_gateway=disable_gateway)
    request = _refuse_early('network bastion rdp', facts, resource_group_name, name, target_resource_id,
                            target_ip_address)
    if configure and facts.client != 'windows':
        from azure.cli.core.azclierror import ArgumentUsageError
        raise ArgumentUsageError("--configure opens mstsc's settings editor: Windows only.",
                                 recommendation='Drop --configure.')
    handler, destination = _resolve_and_dispatch(cmd.cli_ctx, facts, request)
    exit_with(lambda: run_rdp(handler, destination, environment, configure=configure,
                              enable_aad=auth_type == 'aad' or enable_mfa))


def run_rdp(handler, destination, environment, configure=False, enable_aad=False):
    from azext_bastion_native.clients import rdp
    if handler == RDP_GATEWAY_MSTSC:
        text = _gateway_rdp_file(destination, environment, enable_aad)
        return _run_with_rdp_file(text, rdp.find_launcher('windows', environment.which), environment, configure)
    with tunnel_errors(environment, destination) as tunnel:
        if handler == RDP_TUNNEL_MSTSC:
            return _run_with_rdp_file(rdp.tunnel_rdp_file(tunnel.port), rdp.find_launcher('windows', environment.which),
                                      environment, configure)
        launcher = rdp.find_launcher(environment.client, environment.which)
        if launcher is None:
            logger.warning(rdp.manual_connect_hint(tunnel.port))
            environment.block_until_interrupted()
            return 0
        if launcher.kind == 'open':
            return _run_with_rdp_file(rdp.tunnel_rdp_file(tunnel.port), launcher, environment, configure)
        return environment.run_program(rdp.launcher_argv(launcher, port=tunnel.port))


def _gateway_rdp_file(destination, environment, enable_aad):
    from azure.cli.core.azclierror import AzureConnectionError
    from azext_bastion_native.clients.rdp import RdpFileError, fetch_rdp_file
    from azext_bastion_native.dataplane.settings import ConnectionSettings
    try:
        return fetch_rdp_file(destination.endpoint.host, destination.target.resource_id, destination.target.port,
                              enable_aad, destination.get_arm_token(),
                              verify=ConnectionSettings.from_environ().requests_verify(),
                              http_get=environment.http_get)
    except RdpFileError as err:
        raise AzureConnectionError(str(err), recommendation='Or connect through a local tunnel: '
                                   'add --disable-gateway.') from None


def _run_with_rdp_file(text, launcher, environment, configure):
    """Write ``text`` as a 0600 .rdp file in a private directory, run the client on it, delete it."""
    from azext_bastion_native.clients.rdp import launcher_argv
    from azext_bastion_native.clients.tempfiles import private_directory, write_private_file
    with private_directory(prefix='az-bastion-rdp-') as directory:
        path = write_private_file(os.path.join(directory, 'conn.rdp'), text)
        return environment.run_program(launcher_argv(launcher, rdp_file=path, configure=configure))
