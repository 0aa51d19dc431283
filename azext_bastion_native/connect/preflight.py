"""Pre-flight checks for every connecting command: host + target arguments -> Endpoint, Target.

What must hold before a connecting command touches the data plane, decided from the one ARM GET of the Bastion host:
SKU, native client (tunnelling), IP connect, the target. Pure: it returns the data-plane Endpoint and Target or
raises PreflightError; the CLI glue turns that into azclierror types."""

import ipaddress
from dataclasses import dataclass

from azext_bastion_native.bastion_facts import (
    DEVELOPER_SKUS, IP_CONNECT_PORTS, NATIVE_CLIENT_SKUS, ip_connect_ports_text, sku_name, subscription_of)
from azext_bastion_native.dataplane.protocol import Endpoint, Target
from azext_bastion_native.errors import Refused


class PreflightError(Refused):
    """``kind``: 'missing' | 'mutually-exclusive' | 'invalid-argument' | 'validation' (errors.py)."""

    def __init__(self, kind, message, recommendation=None):
        super().__init__(message, recommendation, kind)


@dataclass(frozen=True)
class ConnectRequest:
    resource_group: str
    name: str
    resource_port: int
    target_resource_id: str = None
    target_ip_address: str = None


def check_arguments(request: ConnectRequest):
    """Argument checks that need no Azure call."""
    from azure.mgmt.core.tools import is_valid_resource_id
    if bool(request.target_resource_id) == bool(request.target_ip_address):
        kind = 'mutually-exclusive' if request.target_resource_id else 'missing'
        raise PreflightError(kind, 'Give exactly one of --target-resource-id and --target-ip-address.',
                             'Use --target-resource-id with the VM resource ID (az vm show -g RG -n VM --query id), '
                             'or --target-ip-address with its private IP (IP connect).')
    if not 1 <= int(request.resource_port) <= 65535:
        raise PreflightError('invalid-argument', f'--resource-port {request.resource_port} is not a port (1-65535).')
    if request.target_resource_id and not is_valid_resource_id(request.target_resource_id):
        raise PreflightError('invalid-argument',
                             f"--target-resource-id '{request.target_resource_id}' is not a valid resource ID.",
                             'Copy it from: az vm show -g RG -n VM --query id -o tsv')
    if request.target_ip_address:
        check_ip_address(request.target_ip_address)
        if int(request.resource_port) not in IP_CONNECT_PORTS:
            raise PreflightError('invalid-argument', f'IP connect reaches ports {ip_connect_ports_text()} only, '
                                 f'not {request.resource_port}.',
                                 'Use --resource-port 22 or 3389, or connect by --target-resource-id.')


def check_ip_address(target_ip_address):
    """--target-ip-address is an IP address (v4 or v6); every command that takes it checks it so."""
    try:
        ipaddress.ip_address(target_ip_address)
    except ValueError:
        raise PreflightError('invalid-argument',
                             f"--target-ip-address '{target_ip_address}' is not an IP address.") from None


def plan_connection(host, request: ConnectRequest):
    """The Endpoint and Target for ``request`` through ``host`` (an azure-mgmt-network BastionHost)."""
    check_arguments(request)
    label = f"Bastion host '{request.name}' in resource group '{request.resource_group}'"
    enable_command = f'az network bastion native-client enable -g {request.resource_group} -n {request.name}'
    sku = sku_name(host)
    developer = sku in DEVELOPER_SKUS
    if not developer and sku not in NATIVE_CLIENT_SKUS:
        raise PreflightError('validation', f'{label} is {sku} SKU; native client needs Standard or Premium.',
                             f'Upgrade it and turn native client on: {enable_command} --upgrade-sku')
    if not developer and not getattr(host, 'enable_tunneling', False):
        raise PreflightError('validation', f'{label} does not have native client support (tunneling) enabled.',
                             f'Turn it on: {enable_command}')
    if request.target_ip_address:
        if developer:
            raise PreflightError('validation', f'{label} is {sku} SKU, which has no IP connect.',
                                 'Connect by --target-resource-id instead.')
        if not getattr(host, 'enable_ip_connect', False):
            raise PreflightError('validation', f'{label} does not have IP connect enabled.',
                                 f'Turn it on: {enable_command} --enable-ip-connect')
    dns_name = getattr(host, 'dns_name', None)
    if not dns_name:
        raise PreflightError('validation', f'{label} has no DNS name yet (is it still being deployed?).',
                             f'Wait for it: az network bastion wait -g {request.resource_group} -n {request.name} '
                             '--created')
    endpoint = Endpoint(host=dns_name, developer=developer, bastion_resource_id=getattr(host, 'id', '') or '')
    if request.target_ip_address:
        target = Target.for_ip(subscription_of(getattr(host, 'id', '')) or '', request.resource_group,
                               request.target_ip_address, int(request.resource_port))
    else:
        target = Target(request.target_resource_id, int(request.resource_port))
    return endpoint, target
