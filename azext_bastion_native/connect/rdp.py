"""`az network bastion rdp`: Bastion's gateway .rdp file with mstsc on Windows, else the local tunnel with mstsc,
FreeRDP or macOS open (or a hint where to connect); the .rdp file and every Bastion session are gone when the
command returns."""

import logging
import os

from azext_bastion_native.connect.environment import Environment
from azext_bastion_native.exit_status import exit_with
from azext_bastion_native.connect.dispatch import (
    RDP, RDP_GATEWAY_MSTSC, RDP_TUNNEL_MSTSC, ConnectFacts, refuse_early, resolve_and_dispatch)

logger = logging.getLogger(__name__)


def rdp_command(cmd, resource_group_name, name, target_resource_id=None, target_ip_address=None, auth_type=None,
                resource_port=None, configure=False, disable_gateway=False, enable_mfa=False, environment=None):
    """`az network bastion rdp`: the RDP client's exit code becomes the command's (SystemExit when non-zero)."""
    environment = environment or Environment()
    auth_type = (auth_type or '').lower() or None
    facts = ConnectFacts(environment.client, RDP, auth_type=auth_type,
                         port=int(resource_port) if resource_port is not None else None,
                         ip_connect=bool(target_ip_address), disable_gateway=disable_gateway)
    request = refuse_early('network bastion rdp', facts, resource_group_name, name, target_resource_id,
                           target_ip_address)
    if configure and facts.client != 'windows':
        from azext_bastion_native.errors import Kind, Refused
        raise Refused("--configure opens mstsc's settings editor: Windows only.", 'Drop --configure.', Kind.USAGE)
    handler, destination = resolve_and_dispatch(cmd.cli_ctx, facts, request)
    exit_with(lambda: run_rdp(handler, destination, environment, configure=configure,
                              enable_aad=auth_type == 'aad' or enable_mfa))


def run_rdp(handler, destination, environment, configure=False, enable_aad=False):
    from azext_bastion_native.clients import rdp
    if handler == RDP_GATEWAY_MSTSC:
        text = gateway_rdp_file(destination, environment, enable_aad)
        return _run_with_rdp_file(text, rdp.find_launcher('windows', environment.which), environment, configure)
    with environment.tunnel(destination) as tunnel:
        if handler == RDP_TUNNEL_MSTSC:
            return _run_with_rdp_file(rdp.tunnel_rdp_file(tunnel.port), rdp.find_launcher('windows', environment.which),
                                      environment, configure)
        launcher = rdp.find_launcher(environment.client, environment.which)
        if launcher is None:
            logger.warning(rdp.manual_connect_hint(tunnel.port, without_display=rdp.no_display(environment.client)))
            environment.block_until_interrupted()
            return 0
        if launcher.kind == 'open':
            return _run_with_rdp_file(rdp.tunnel_rdp_file(tunnel.port), launcher, environment, configure)
        return environment.run_program(rdp.launcher_argv(launcher, port=tunnel.port))


def gateway_rdp_file(destination, environment, enable_aad):
    """Bastion's .rdp file for the RD gateway (clients.rdp.RdpFileError, a Refused, when it hands out none)."""
    from azext_bastion_native.clients.rdp import fetch_rdp_file
    from azext_bastion_native.dataplane.settings import ConnectionSettings
    return fetch_rdp_file(destination.endpoint.host, destination.target.resource_id, destination.target.port,
                          enable_aad, destination.get_arm_token(),
                          verify=ConnectionSettings.from_environ().requests_verify(), http_get=environment.http_get)


def _run_with_rdp_file(text, launcher, environment, configure):
    """Write ``text`` as a 0600 .rdp file in a private directory, run the client on it, delete it."""
    from azext_bastion_native.clients.rdp import launcher_argv
    from azext_bastion_native.clients.tempfiles import private_directory, write_private_file
    with private_directory(prefix='az-bastion-rdp-') as directory:
        path = write_private_file(os.path.join(directory, 'conn.rdp'), text)
        return environment.run_program(launcher_argv(launcher, rdp_file=path, configure=configure))
