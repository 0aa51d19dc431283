"""The native client setting of a Bastion host: what it is, and turning it on or off safely; the native-client
commands."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from knack.log import get_logger

from azext_bastion_native.bastion_facts import NATIVE_CLIENT_SKUS, host_label, resource_group_of, sku_name
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management import hosts
from azext_bastion_native.management.operations import confirm, wait_for
from azext_bastion_native.management.clients import cf_network

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.cli.core.commands import AzCliCommand
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import BastionHost

logger = get_logger(__name__)


def describe(host: BastionHost) -> dict[str, Any]:
    """SKU, the switches, and what the documentation's support table allows from this client OS."""
    from azext_bastion_native import capabilities
    client = capabilities.client_os()
    on = hosts.is_native_client_on(host)
    return {
        'name': host.name,
        'resourceGroup': resource_group_of(host.id),
        'sku': sku_name(host),
        'enableTunneling': bool(host.enable_tunneling),
        'enableIpConnect': bool(host.enable_ip_connect),
        'enableFileCopy': bool(host.enable_file_copy),
        'nativeClient': 'on' if on else 'off',
        'clientOs': client,
        'methods': [capabilities.row_as_dict(row) for row in capabilities.rows_for_client(client)] if on else [],
    }


def _confirm_change(question: str, yes: bool) -> None:
    confirm(question, yes, 'Cancelled; nothing was changed.', f'{question} There is no terminal to ask on.',
            'Add --yes to confirm.')


def enable(cli_ctx: AzCli, client: NetworkManagementClient, resource_group: str, name: str, upgrade_sku: bool = False,
           enable_ip_connect: bool = False, yes: bool = False, no_wait: bool = False) -> Optional[BastionHost]:
    label = host_label(resource_group, name)
    host = hosts.get_host(client, resource_group, name)
    sku = sku_name(host)
    if sku == 'Developer':
        raise Refused(
            f'{label} is Developer SKU: it has no native client setting to turn on, and cannot be upgraded in place '
            '(Standard needs AzureBastionSubnet and a public IP). `az network bastion tunnel`, `proxy` and `ssh` '
            'reach VMs through its shared pool as they are; the full native client feature set needs Standard.',
            recommendation=f'Deploy a Standard host: az network bastion create -g {resource_group} -n <name> '
            '--vnet-name <vnet> --public-ip-address <standard-static-ip>', kind=Kind.VALIDATION)
    upgrading = sku not in NATIVE_CLIENT_SKUS
    if upgrading and not upgrade_sku:
        raise Refused(
            f'{label} is {sku} SKU; native client needs Standard or Premium.',
            recommendation=f'az network bastion native-client enable -g {resource_group} -n {name} --upgrade-sku '
            '(upgrades to Standard, which is billed differently; SKUs cannot be downgraded)', kind=Kind.VALIDATION)
    if not upgrading and host.enable_tunneling and (host.enable_ip_connect or not enable_ip_connect):
        logger.warning('Native client is already enabled on %s; nothing to change.', label)
        return host
    if upgrading:
        _confirm_change(f'{label} will be upgraded from {sku} to Standard to enable native client. Pricing changes, '
                        'and the SKU cannot be downgraded again. Continue?', yes)
        from azure.mgmt.network.models import Sku
        host.sku = Sku(name='Standard')
    host.enable_tunneling = True
    if enable_ip_connect:
        host.enable_ip_connect = True
    poller = hosts.put_host(client, resource_group, name, host, etag=host.etag, no_wait=no_wait)
    return None if no_wait else wait_for(cli_ctx, poller, label, start_msg=f'Enabling native client on {label}')


def disable(cli_ctx: AzCli, client: NetworkManagementClient, resource_group: str, name: str, yes: bool = False,
            no_wait: bool = False) -> Optional[BastionHost]:
    label = host_label(resource_group, name)
    host = hosts.get_host(client, resource_group, name)
    if not host.enable_tunneling:
        logger.warning('Native client is already disabled on %s; nothing to change.', label)
        return host
    _confirm_change(f'Native client connections through {label} (az network bastion ssh/rdp/tunnel) will stop '
                    'working. Continue?', yes)
    host.enable_tunneling = False
    poller = hosts.put_host(client, resource_group, name, host, etag=host.etag, no_wait=no_wait)
    return None if no_wait else wait_for(cli_ctx, poller, label, start_msg=f'Disabling native client on {label}')


def native_client_show(cmd: AzCliCommand, resource_group_name: str, name: str) -> dict[str, Any]:
    from azext_bastion_native.management.hosts import get_host
    return describe(get_host(cf_network(cmd.cli_ctx), resource_group_name, name))


def native_client_enable(cmd: AzCliCommand, resource_group_name: str, name: str, upgrade_sku: bool = False,
                         enable_ip_connect: bool = False, yes: bool = False,
                         no_wait: bool = False) -> Optional[BastionHost]:
    return enable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, upgrade_sku=upgrade_sku,
                  enable_ip_connect=enable_ip_connect, yes=yes, no_wait=no_wait)


def native_client_disable(cmd: AzCliCommand, resource_group_name: str, name: str, yes: bool = False,
                          no_wait: bool = False) -> Optional[BastionHost]:
    return disable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, yes=yes, no_wait=no_wait)
