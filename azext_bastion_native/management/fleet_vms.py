"""The VMs a Bastion host reaches, read from ARM for ssh-config's --vm-resource-group and --all: the host's networks
(network_reach.py), each VM's NIC and power state. One VM that cannot be read, or that is not a
running Linux VM in a reached network, is skipped with its reason; it never fails the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from azext_bastion_native.management import vms
from azext_bastion_native.management.errors import arm_errors
from azext_bastion_native.management.network_reach import host_vnet, nic_vnet, reachable_vnets

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import BastionHost

# screen(name, resource group, id, admin user): why the VM's values cannot be used at all, or None
Screen = Callable[[str, str, str, Optional[str]], Optional[str]]


@dataclass(frozen=True)
class FleetVm:
    name: str
    resource_group: str
    id: str
    os: Optional[str]
    admin_username: Optional[str]
    vnet_id: Optional[str]


@dataclass(frozen=True)
class Skipped:
    vm: str                 # as ARM names it: shown through connect.ssh_config_text.printable
    reason: str
    resource_group: Optional[str] = None
    id: Optional[str] = None


def power_state(compute: Any, resource_group: str, name: str) -> Optional[str]:
    """The VM's power state from its instance view (one ARM GET), e.g. 'running', 'deallocated'; None if unsaid."""
    from types import SimpleNamespace
    return vms.power_state(SimpleNamespace(instance_view=compute.virtual_machines.instance_view(resource_group, name)))


def _why(err: Exception) -> str:
    """An ARM error in a few words, for a skipped VM's reason."""
    code = getattr(getattr(err, 'error', None), 'code', None)
    status = getattr(err, 'status_code', None)
    said = ' '.join(part for part in (f'HTTP {status}' if status else '', code or '') if part)
    return said or ' '.join(str(err).split())[:200]


class _LeftOut(Exception):
    """A VM that gets no block: ``reason``, or None for one that is simply not the host's to reach (--all)."""

    def __init__(self, reason: Optional[str] = None):
        super().__init__(reason)
        self.reason = reason


def _read_vm(network: NetworkManagementClient, compute: Any, vm: Any, reachable: set[str],
             vm_resource_group: Optional[str],
             screen: Optional[Screen]) -> Union[tuple[FleetVm, None], tuple[None, Optional[Skipped]]]:
    """(FleetVm, None) or (None, Skipped, or None for a VM that is simply not the host's to reach with --all)."""
    from azure.mgmt.core.tools import parse_resource_id
    resource_group = str(parse_resource_id(vm.id)['resource_group'])
    try:
        member = _member(network, compute, vm, resource_group, reachable, vm_resource_group, screen)
    except _LeftOut as left_out:
        return None, Skipped(vm.name, left_out.reason, resource_group, vm.id) if left_out.reason else None
    return member, None


def _member(network: NetworkManagementClient, compute: Any, vm: Any, resource_group: str, reachable: set[str],
            vm_resource_group: Optional[str], screen: Optional[Screen]) -> FleetVm:
    from azure.core.exceptions import HttpResponseError
    refused = screen(vm.name, resource_group, vm.id, vms.admin_username(vm)) if screen else None
    if refused:         # before any request that would carry the value
        raise _LeftOut(refused)
    try:
        vm_vnet = nic_vnet(network, vm)
    except HttpResponseError as err:
        raise _LeftOut(f'its network interface could not be read ({_why(err)})') from None
    if vm_vnet not in reachable:    # --all: VMs elsewhere are simply not the host's to reach
        raise _LeftOut("not in the Bastion host's virtual network or one peered with it" if vm_resource_group
                       else None)
    os_type = vms.os_type(vm)
    if os_type and os_type != 'linux':
        raise _LeftOut(f'{os_type.capitalize()} VM: no ssh block (use az network bastion rdp, or ssh-config '
                       '--target-resource-id if it runs OpenSSH)')
    stopped = _not_running(compute, vm, resource_group)
    if stopped:
        raise _LeftOut(stopped)
    return FleetVm(vm.name, resource_group, vm.id, os_type, vms.admin_username(vm), vm_vnet)


def _not_running(compute: Any, vm: Any, resource_group: str) -> Optional[str]:
    """Why the VM cannot be connected to now (not running, or its state unknown), or None."""
    from azure.core.exceptions import HttpResponseError
    try:
        power = power_state(compute, resource_group, vm.name)
    except HttpResponseError as err:
        return f'its power state could not be read ({_why(err)})'
    if power is not None and power.lower() != 'running':
        return f'not running (power state: {power}); start it: az vm start -g {resource_group} -n {vm.name}'
    return None


def list_fleet(network: NetworkManagementClient, compute: Any, host: BastionHost,
               vm_resource_group: Optional[str] = None,
               screen: Optional[Screen] = None) -> tuple[list[FleetVm], list[Skipped]]:
    """(running Linux VMs the host reaches, Skipped for the others) in ``vm_resource_group``, or in the whole
    subscription (where VMs in networks the host does not reach are left out without a word). ``screen(name,
    resource group, id, admin user)``: why the VM's values cannot be used at all, or None."""
    vnet = host_vnet(host)
    reachable = reachable_vnets(network, vnet) if vnet else set()
    scope = f"resource group '{vm_resource_group}'" if vm_resource_group else 'the subscription'
    with arm_errors(scope[:1].upper() + scope[1:]):     # ARM's 404 here is the resource group's: "... was not found"
        found = list(compute.virtual_machines.list(vm_resource_group) if vm_resource_group
                     else compute.virtual_machines.list_all())
    fleet, skipped = [], []
    for vm in sorted(found, key=lambda item: (item.name.lower(), item.id.lower())):
        member, left_out = _read_vm(network, compute, vm, reachable, vm_resource_group, screen)
        if member is not None:
            fleet.append(member)
        elif left_out is not None:
            skipped.append(left_out)
    return fleet, skipped
