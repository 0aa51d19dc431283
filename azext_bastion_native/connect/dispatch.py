"""Which handler serves a connect command: the documentation's "Connecting to VMs" table and its limitations
decide from the client OS, the target OS, the method and the options. Order: refusals that need no network (Cloud
Shell, the table rows we can already decide, the target arguments), then the host and the VM, then the table again
with the VM's real OS."""

import dataclasses
from dataclasses import dataclass
from typing import Optional

from azext_bastion_native.bastion_facts import ASSUMED_TARGET_OS, DEFAULT_METHOD_PORTS
from azext_bastion_native.capabilities import CapabilityRefused, decide
from azext_bastion_native.connect import argument_checks, resolve

SSH, RDP = 'ssh', 'rdp'
# Handlers
SSH_THROUGH_TUNNEL = 'ssh-through-tunnel'
RDP_GATEWAY_MSTSC = 'rdp-gateway-mstsc'        # Windows: Bastion's .rdp file (RD gateway) + mstsc
RDP_TUNNEL_MSTSC = 'rdp-tunnel-mstsc'          # Windows, --disable-gateway or IP connect: tunnel + mstsc
RDP_TUNNEL_LOCAL_CLIENT = 'rdp-tunnel-local'   # Linux / macOS: tunnel + FreeRDP / open, or a hint


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


def refuse_early(command_name, facts, resource_group, name, target_resource_id, target_ip_address):
    """Cloud Shell, then the table (its rows name why), then the target arguments; no network call."""
    from azext_bastion_native.guards import refuse_in_cloud_shell
    refuse_in_cloud_shell(command_name)
    choose_handler(facts)
    return argument_checks.connect_request(resource_group, name, target_resource_id, target_ip_address,
                                           facts.port or DEFAULT_METHOD_PORTS[facts.method])


def resolve_and_dispatch(cli_ctx, facts, request):
    """Host and VM, then the table again with the VM's real OS: (handler, Destination)."""
    destination = resolve.resolve_destination(cli_ctx, request)
    handler = choose_handler(dataclasses.replace(facts, target_os=destination.target_os))
    return handler, destination
