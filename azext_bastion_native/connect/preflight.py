"""Pre-flight checks for every connecting command: host + target arguments -> Endpoint, Target.

What must hold before a connecting command touches the data plane, decided from the one ARM GET of the Bastion host:
SKU, native client (tunnelling), IP connect, the target. Pure: it returns the data-plane Endpoint and Target or
raises PreflightError; the CLI glue turns that into azclierror types."""

import ipaddress
from dataclasses import dataclass
from typing import Optional

from azext_bastion_native.bastion_facts import (
    DEVELOPER_SKUS, IP_CONNECT_PORTS, NATIVE_CLIENT_SKUS, host_label, ip_connect_ports_text, is_port, sku_limits,
    sku_name, subscription_of)
from azext_bastion_native.dataplane.protocol import Endpoint, Target
from azext_bastion_native.errors import Kind, Refused


class PreflightError(Refused):
    """A pre-flight refusal; ``kind`` an errors.Kind."""

    def __init__(self, kind, message, recommendation=None):
        super().__init__(message, recommendation, kind)


@dataclass(frozen=True)
class ConnectRequest:
    resource_group: str
    name: str
    resource_port: int
    target_resource_id: Optional[str] = None
    target_ip_address: Optional[str] = None


def check_arguments(request: ConnectRequest):
    """Argument checks that need no Azure call."""
    from azure.mgmt.core.tools import is_valid_resource_id
    if bool(request.target_resource_id) == bool(request.target_ip_address):
        kind = Kind.MUTUALLY_EXCLUSIVE if request.target_resource_id else Kind.MISSING
        raise PreflightError(kind, 'Give exactly one of --target-resource-id and --target-ip-address.',
                             'Use --target-resource-id with the VM resource ID (az vm show -g RG -n VM --query id), '
                             'or --target-ip-address with its private IP (IP connect).')
    if not is_port(request.resource_port):
        raise PreflightError(Kind.INVALID_ARGUMENT, f'--resource-port {request.resource_port} is not a port (1-65535).')
    if request.target_resource_id and not is_valid_resource_id(request.target_resource_id):
        raise PreflightError(Kind.INVALID_ARGUMENT,
                             f"--target-resource-id '{request.target_resource_id}' is not a valid resource ID.",
                             'Copy it from: az vm show -g RG -n VM --query id -o tsv')
    if request.target_ip_address:
        check_ip_address(request.target_ip_address)
        if int(request.resource_port) not in IP_CONNECT_PORTS:
            raise PreflightError(Kind.INVALID_ARGUMENT, f'IP connect reaches ports {ip_connect_ports_text()} only, '
                                 f'not {request.resource_port}.',
                                 'Use --resource-port 22 or 3389, or connect by --target-resource-id.')


def check_ip_address(target_ip_address):
    """--target-ip-address is an IP address (v4 or v6); every command that takes it checks it so."""
    try:
        ipaddress.ip_address(target_ip_address)
    except ValueError:
        raise PreflightError(Kind.INVALID_ARGUMENT,
                             f"--target-ip-address '{target_ip_address}' is not an IP address.") from None


def check_reach(request: ConnectRequest, reach):
    """Refuse a VM on a virtual network the host does not reach (neither the host's nor a Connected peering of it):
    Bastion would mint a session and then fail its websocket with a gateway error. ``reach``: a
    management.network_reach.Reach; a network not known passes (the data plane then says what it finds)."""
    refusal = reach_refusal(request, reach)
    if refusal is not None:
        raise refusal


def reach_refusal(request: ConnectRequest, reach):
    """The PreflightError check_reach raises, or None (doctor shows it as a row)."""
    if not (reach.host_vnet and reach.vm_vnet) or reach.vm_vnet in reach.reachable:
        return None
    from azure.mgmt.core.tools import parse_resource_id
    vm = parse_resource_id(request.target_resource_id or '').get('name') or request.target_resource_id
    host_net, vm_net = parse_resource_id(reach.host_vnet), parse_resource_id(reach.vm_vnet)
    peer = 'az network vnet peering create --allow-vnet-access'
    return PreflightError(
        Kind.VALIDATION,
        f"VM '{vm}' is on virtual network '{vm_net['name']}', which Bastion host '{request.name}' does not reach: "
        f"it is neither the host's virtual network ('{host_net['name']}') nor peered with it (a Connected peering).",
        f"Peer the two networks both ways: {peer} -g {host_net['resource_group']} --vnet-name {host_net['name']} "
        f"-n to-{vm_net['name']} --remote-vnet {reach.vm_vnet} and {peer} -g {vm_net['resource_group']} "
        f"--vnet-name {vm_net['name']} -n to-{host_net['name']} --remote-vnet {reach.host_vnet}; or connect "
        "through a Bastion host in the VM's virtual network.")


def plan_connection(host, request: ConnectRequest):
    """The Endpoint and Target for ``request`` through ``host`` (an azure-mgmt-network BastionHost)."""
    check_arguments(request)
    label = host_label(request.resource_group, request.name)
    enable_command = f'az network bastion native-client enable -g {request.resource_group} -n {request.name}'
    sku = sku_name(host)
    developer = sku in DEVELOPER_SKUS
    if not developer and sku not in NATIVE_CLIENT_SKUS:
        raise PreflightError(Kind.VALIDATION, f'{label} is {sku} SKU; native client needs Standard or Premium.',
                             f'Upgrade it and turn native client on: {enable_command} --upgrade-sku')
    if not developer and not getattr(host, 'enable_tunneling', False):
        raise PreflightError(Kind.VALIDATION, f'{label} does not have native client support (tunneling) enabled.',
                             f'Turn it on: {enable_command}')
    if request.target_ip_address:
        if developer:
            raise PreflightError(Kind.VALIDATION, f'{label} is {sku} SKU, which has no IP connect.',
                                 'Connect by --target-resource-id instead.')
        if not getattr(host, 'enable_ip_connect', False):
            raise PreflightError(Kind.VALIDATION, f'{label} does not have IP connect enabled.',
                                 f'Turn it on: {enable_command} --enable-ip-connect')
    limits = sku_limits(sku)
    if limits is not None and int(request.resource_port) not in limits.ports:
        raise PreflightError(Kind.VALIDATION, f'{label} is {sku} SKU, which has no custom ports: it connects to '
                             f"ports {' and '.join(map(str, limits.ports))} only, not {request.resource_port}.",
                             'Use --resource-port 22 (SSH) or 3389 (RDP), or a Standard or Premium host for '
                             'other ports.')
    dns_name = getattr(host, 'dns_name', None)
    if not dns_name:
        raise PreflightError(Kind.VALIDATION, f'{label} has no DNS name yet (is it still being deployed?).',
                             f'Wait for it: az network bastion wait -g {request.resource_group} -n {request.name} '
                             '--created')
    endpoint = Endpoint(host=dns_name, developer=developer, bastion_resource_id=getattr(host, 'id', '') or '')
    if request.target_resource_id:      # check_arguments: exactly one of the two
        target = Target(request.target_resource_id, int(request.resource_port))
    else:
        target = Target.for_ip(subscription_of(getattr(host, 'id', '')) or '', request.resource_group,
                               request.target_ip_address or '', int(request.resource_port))
    return endpoint, target
