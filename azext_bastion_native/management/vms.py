"""Target VMs (or VM scale set instances): the resource ID, the VM with its instance view, and the facts the connect
commands and `doctor` act on (power state, OS, admin user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management.errors import arm_errors

if TYPE_CHECKING:
    from azure.cli.core import AzCli


@dataclass(frozen=True)
class VmRef:
    subscription: str
    resource_group: str
    name: str
    instance: Optional[str] = None      # a scale set instance id, or None for a plain VM

    @property
    def label(self) -> str:
        what = f"Virtual machine '{self.name}'" if self.instance is None else \
            f"Instance {self.instance} of scale set '{self.name}'"
        return f"{what} in resource group '{self.resource_group}'"

    @property
    def start_command(self) -> str:
        if self.instance is None:
            return f'az vm start -g {self.resource_group} -n {self.name}'
        return f'az vmss start -g {self.resource_group} -n {self.name} --instance-ids {self.instance}'


def parse_vm_id(resource_id: str) -> VmRef:
    """A VM or VMSS instance resource ID -> VmRef; anything else is a typed error with the way to get one."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id
    if is_valid_resource_id(resource_id):
        parts = parse_resource_id(resource_id)
        kind = f"{parts.get('namespace', '')}/{parts.get('type', '')}".lower()
        if kind == 'microsoft.compute/virtualmachines' and not parts.get('child_type_1'):
            return VmRef(str(parts['subscription']), str(parts['resource_group']), str(parts['name']))
        if kind == 'microsoft.compute/virtualmachinescalesets' and \
                str(parts.get('child_type_1') or '').lower() == 'virtualmachines' and parts.get('last_child_num') == 1:
            return VmRef(str(parts['subscription']), str(parts['resource_group']), str(parts['name']),
                         str(parts['child_name_1']))
    raise Refused(
        f"--target-resource-id '{resource_id}' is not a virtual machine or scale set instance resource ID.",
        recommendation='Get it with: az vm show -g RG -n VM --query id -o tsv', kind=Kind.INVALID_ARGUMENT)


def read_vm(cli_ctx: AzCli, ref: VmRef) -> Any:
    """The VM (or VMSS instance) with its instance view; not found and other ARM errors are typed."""
    from azext_bastion_native.management.clients import cf_compute
    compute = cf_compute(cli_ctx, subscription_id=ref.subscription)
    with arm_errors(ref.label, not_found_hint=f'List the VMs you can see: az vm list -g {ref.resource_group} -o table'):
        if ref.instance is None:
            return compute.virtual_machines.get(ref.resource_group, ref.name, expand='instanceView')
        return compute.virtual_machine_scale_set_vms.get(ref.resource_group, ref.name, ref.instance,
                                                         expand='instanceView')


def power_state(vm: Any) -> Optional[str]:
    statuses = getattr(getattr(vm, 'instance_view', None), 'statuses', None) or []
    for status in statuses:
        code = getattr(status, 'code', '') or ''
        if code.lower().startswith('powerstate/'):
            return code.split('/', 1)[1]
    return None


def os_type(vm: Any) -> Optional[str]:
    value = getattr(getattr(getattr(vm, 'storage_profile', None), 'os_disk', None), 'os_type', None)
    value = getattr(value, 'value', value)
    return str(value).lower() if value else None


def admin_username(vm: Any) -> Optional[str]:
    return getattr(getattr(vm, 'os_profile', None), 'admin_username', None) or None


def get_running_vm(cli_ctx: AzCli, resource_id: str) -> Any:
    """The VM with its instance view; refused (with the start command) when it is not running."""
    ref = parse_vm_id(resource_id)
    vm = read_vm(cli_ctx, ref)
    power = power_state(vm)
    if power is not None and power.lower() != 'running':
        raise Refused(
            f'{ref.label} is not running (power state: {power}); Bastion cannot connect to it.',
            recommendation=f'Start it first: {ref.start_command}', kind=Kind.VALIDATION)
    return vm
