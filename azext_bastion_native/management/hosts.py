"""Bastion hosts over azure-mgmt-network: create with native client, read, and switch native client on/off.

Every check that can be made before a write is made before it, so a refused command changes nothing."""

import ipaddress

from azure.cli.core import azclierror

from azext_bastion_native.bastion_facts import NATIVE_CLIENT_SKUS, sku_name
from azext_bastion_native.management.errors import arm_errors

BASTION_SUBNET = 'AzureBastionSubnet'
MIN_SUBNET_PREFIX = 26


def host_label(resource_group, name):
    return f"Bastion host '{name}' in resource group '{resource_group}'"


def get_host(client, resource_group, name, for_wait=False):
    """GET the host. for_wait: ARM's 404 passes through as azure.core's ResourceNotFoundError, the one azure-cli's
    generic wait (azure.cli.core.commands.command_operation.WaitCommandOperation.wait) acts on: --deleted returns,
    --exists/--created keep polling. A typed azclierror there would end the wait at once."""
    with arm_errors(host_label(resource_group, name), pass_not_found=for_wait,
                    not_found_hint=f'List the hosts you can see: az network bastion list -g {resource_group} -o table'):
        return client.bastion_hosts.get(resource_group, name)


def _read_by_name_or_id(value, resource_group, kind, getter, create_hint):
    """GET a resource given by name (in `resource_group`) or by full ID (which may live elsewhere).

    Returns (resource group, name, model); `create_hint` is formatted with rg and name for the not-found case."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id
    if is_valid_resource_id(value):
        parts = parse_resource_id(value)
        resource_group, name = parts['resource_group'], parts['name']
    elif '/' in value:
        raise azclierror.InvalidArgumentValueError(f"'{value}' is neither a {kind} name nor a valid resource ID.")
    else:
        name = value
    with arm_errors(f"{kind[0].upper()}{kind[1:]} '{name}' in resource group '{resource_group}'",
                    not_found_hint=create_hint.format(rg=resource_group, name=name)):
        return resource_group, name, getter(resource_group, name)


def check_bastion_subnet(client, resource_group, vnet):
    """The VNet's AzureBastionSubnet, checked for existence and size; returns (vnet, subnet)."""
    vnet_rg, vnet_name, vnet_model = _read_by_name_or_id(
        vnet, resource_group, 'virtual network', client.virtual_networks.get,
        'Create it first: az network vnet create -g {rg} -n {name} --address-prefixes 10.0.0.0/16')
    subnet = next((s for s in (vnet_model.subnets or []) if s.name == BASTION_SUBNET), None)
    if subnet is None:
        raise azclierror.ValidationError(
            f"Virtual network '{vnet_name}' has no subnet named {BASTION_SUBNET}; Bastion is deployed into it.",
            recommendation=f'az network vnet subnet create -g {vnet_rg} --vnet-name {vnet_name} -n {BASTION_SUBNET} '
                           '--address-prefixes <a free /26 or larger, e.g. 10.0.1.0/26>')
    prefixes = list(subnet.address_prefixes or []) or [subnet.address_prefix]
    sizes = [ipaddress.ip_network(p, strict=False).prefixlen for p in prefixes if p]
    if not sizes or min(sizes) > MIN_SUBNET_PREFIX:
        raise azclierror.ValidationError(
            f"{BASTION_SUBNET} in '{vnet_name}' is {', '.join(p for p in prefixes if p)}; Bastion needs /26 or larger.",
            recommendation=f'Recreate the subnet with a /26 or larger prefix: az network vnet subnet update -g '
                           f'{vnet_rg} --vnet-name {vnet_name} -n {BASTION_SUBNET} --address-prefixes <prefix>/26')
    return vnet_model, subnet


def check_public_ip(client, resource_group, public_ip):
    pip_rg, pip_name, pip = _read_by_name_or_id(
        public_ip, resource_group, 'public IP address', client.public_ip_addresses.get,
        'az network public-ip create -g {rg} -n {name} --sku Standard --allocation-method Static')
    sku = getattr(getattr(pip.sku, 'name', None), 'value', getattr(pip.sku, 'name', None)) if pip.sku else 'Basic'
    allocation = pip.public_ip_allocation_method
    allocation = getattr(allocation, 'value', allocation)
    if str(sku) != 'Standard' or str(allocation) != 'Static':
        raise azclierror.ValidationError(
            f"Public IP '{pip_name}' is {sku} SKU with {allocation} allocation; Bastion needs Standard SKU and Static.",
            recommendation=f'az network public-ip create -g {pip_rg} -n <new-name> --sku Standard '
                           '--allocation-method Static')
    return pip


def check_sku_options(sku, enable_tunneling, enable_ip_connect, enable_file_copy, scale_units):
    basic_like = sku in ('Basic', 'Developer')
    flags = (('--enable-tunneling', enable_tunneling), ('--enable-ip-connect', enable_ip_connect),
             ('--enable-file-copy', enable_file_copy))
    wanted = [flag for flag, on in flags if on]
    if basic_like and wanted:
        raise azclierror.ArgumentUsageError(
            f"{', '.join(wanted)} need(s) the Standard or Premium SKU; {sku} does not offer native client features.",
            recommendation='Use --sku Standard (the default), or drop those flags.')
    if scale_units is not None:
        if basic_like:
            raise azclierror.ArgumentUsageError(f'--scale-units needs Standard or Premium; {sku} has a fixed 2 units.',
                                                recommendation='Use --sku Standard, or drop --scale-units.')
        if not 2 <= scale_units <= 50:
            raise azclierror.InvalidArgumentValueError(f'--scale-units must be 2-50, not {scale_units}.')


def build_host(location, sku, subnet_id, public_ip_id, enable_tunneling, enable_ip_connect, enable_file_copy,
               scale_units, tags):
    from azure.mgmt.network.models import BastionHost, BastionHostIPConfiguration, Sku, SubResource
    return BastionHost(
        location=location, sku=Sku(name=sku), tags=tags,
        ip_configurations=[BastionHostIPConfiguration(name='bastion_ip_config', subnet=SubResource(id=subnet_id),
                                                      public_ip_address=SubResource(id=public_ip_id))],
        enable_tunneling=bool(enable_tunneling), enable_ip_connect=bool(enable_ip_connect),
        enable_file_copy=bool(enable_file_copy), scale_units=scale_units)


def put_host(client, resource_group, name, host, etag=None, no_wait=False):
    """PUT the host; with `etag`, only if nobody changed it since it was read."""
    from azure.cli.core.util import sdk_no_wait
    kwargs = {'headers': {'If-Match': etag}} if etag else {}
    with arm_errors(host_label(resource_group, name)):
        return sdk_no_wait(no_wait, client.bastion_hosts.begin_create_or_update, resource_group, name, host, **kwargs)


def is_native_client_on(host):
    return sku_name(host) in NATIVE_CLIENT_SKUS and bool(host.enable_tunneling)
