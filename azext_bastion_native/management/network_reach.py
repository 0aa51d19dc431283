"""Which virtual networks a Bastion host reaches, read from ARM: the host's own and those connected to it by peering
(``peeringState`` Connected on the host's side, as the VNet's GET lists it), and the network of a VM's primary NIC.
Used by ssh-config for many VMs (which VMs get a block), the connecting commands' pre-flight (one VM) and doctor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, FrozenSet, Optional

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import BastionHost


@dataclass(frozen=True)
class Reach:
    """The facts the pre-flight decides on; None where a network could not be read (no decision then)."""
    host_vnet: Optional[str]                 # lower-case VNet ID
    reachable: FrozenSet[str]                # lower-case VNet IDs: host_vnet and its Connected peerings
    vm_vnet: Optional[str]                   # lower-case VNet ID of the VM's primary NIC


def vnet_of_subnet(subnet_id: Optional[str]) -> Optional[str]:
    """The virtual network ID of a subnet ID (lower case, for comparison)."""
    if not subnet_id:
        return None
    head, _, _ = subnet_id.rpartition('/subnets/')
    return head.lower() or None


def host_vnet(host: BastionHost) -> Optional[str]:
    """The host's virtual network: its AzureBastionSubnet's (Standard, Premium, Basic) or the one a Developer host
    names."""
    for ip_config in getattr(host, 'ip_configurations', None) or []:
        vnet = vnet_of_subnet(getattr(getattr(ip_config, 'subnet', None), 'id', None))
        if vnet:
            return vnet
    network = getattr(host, 'virtual_network', None)
    return (getattr(network, 'id', None) or '').lower() or None


def reachable_vnets(network: NetworkManagementClient, vnet_id: str) -> set[str]:
    """The host's virtual network and those peered with it (connected peerings, as the VNet's own GET lists them)."""
    from azure.mgmt.core.tools import parse_resource_id
    found = {vnet_id}
    parts = parse_resource_id(vnet_id)
    vnet = network.virtual_networks.get(str(parts['resource_group']), str(parts['name']))
    for peering in getattr(vnet, 'virtual_network_peerings', None) or []:
        state = str(getattr(peering, 'peering_state', '') or '')
        remote = getattr(getattr(peering, 'remote_virtual_network', None), 'id', None)
        if remote and state.rsplit('.', 1)[-1].lower() == 'connected':     # enum text or value
            found.add(remote.lower())
    return found


def nic_vnet(network: NetworkManagementClient, vm: Any) -> Optional[str]:
    """The virtual network of the VM's primary NIC (the first when none is marked primary), or None."""
    from azure.mgmt.core.tools import parse_resource_id
    nics = getattr(getattr(vm, 'network_profile', None), 'network_interfaces', None) or []
    primary = next((nic for nic in nics if getattr(nic, 'primary', False)), nics[0] if nics else None)
    if primary is None:
        return None
    parts = parse_resource_id(primary.id)
    nic = network.network_interfaces.get(str(parts['resource_group']), str(parts['name']))
    for ip_config in nic.ip_configurations or []:
        vnet = vnet_of_subnet(getattr(getattr(ip_config, 'subnet', None), 'id', None))
        if vnet:
            return vnet
    return None


def read_reach(cli_ctx: AzCli, host: BastionHost, vm: Any) -> Reach:
    """Reach of ``host`` and ``vm`` (SDK models). A network the caller may not read (no Reader role on the NIC or
    the VNet, or it is gone) leaves that fact None: the data plane then says what it finds."""
    from azure.core.exceptions import HttpResponseError
    from azext_bastion_native.management.clients import cf_network
    from azext_bastion_native.bastion_facts import subscription_of
    vnet = host_vnet(host)
    reachable: FrozenSet[str] = frozenset()
    vm_network = None
    try:
        if vnet:
            reachable = frozenset(reachable_vnets(cf_network(cli_ctx, subscription_id=subscription_of(vnet)), vnet))
        vm_nics = getattr(getattr(vm, 'network_profile', None), 'network_interfaces', None) or []
        if vm_nics:
            vm_network = nic_vnet(cf_network(cli_ctx, subscription_id=subscription_of(vm_nics[0].id)), vm)
    except HttpResponseError:
        return Reach(None, frozenset(), None)
    return Reach(vnet if reachable else None, reachable, vm_network)
