"""management/vms.py: a VM or scale set instance ID parsed, read with its instance view, refused when not running;
its OS and admin user."""
import enum
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import InvalidArgumentValueError, ValidationError
from azure.core.exceptions import ResourceNotFoundError

from azext_bastion_native.management import vms
from azext_bastion_native.management.errors import ArmNotFound
from tests.unit.boundary import raises_as

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'


# -- VM facts ------------------------------------------------------------------------------------------
def _vm(power='running', os_type='Linux', admin='azureuser'):
    statuses = [SimpleNamespace(code='ProvisioningState/succeeded'), SimpleNamespace(code=f'PowerState/{power}')]
    return SimpleNamespace(instance_view=SimpleNamespace(statuses=statuses),
                           storage_profile=SimpleNamespace(os_disk=SimpleNamespace(os_type=os_type)),
                           os_profile=SimpleNamespace(admin_username=admin))


def _compute(vm, calls):
    def get(*args, **kwargs):
        calls.append((args, kwargs))
        return vm
    return SimpleNamespace(virtual_machines=SimpleNamespace(get=get),
                           virtual_machine_scale_set_vms=SimpleNamespace(get=get))


def test_vm_facts_and_power_state(monkeypatch):
    import azext_bastion_native.management.clients as factory
    calls = []
    monkeypatch.setattr(factory, 'cf_compute', lambda *_, **__: _compute(_vm(), calls))
    vm = vms.get_running_vm(None, VM_ID)
    assert calls[0] == (('rg', 'vm1'), {'expand': 'instanceView'})
    assert vms.os_type(vm) == 'linux'


def test_scale_set_instance_is_looked_up_as_such(monkeypatch):
    import azext_bastion_native.management.clients as factory
    calls = []
    monkeypatch.setattr(factory, 'cf_compute', lambda *_, **__: _compute(_vm(), calls))
    vms.get_running_vm(None, '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/'
                       'virtualMachineScaleSets/ss/virtualMachines/3')
    assert calls[0] == (('rg', 'ss', '3'), {'expand': 'instanceView'})


def test_deallocated_vm_is_refused_with_its_power_state(monkeypatch):
    import azext_bastion_native.management.clients as factory
    monkeypatch.setattr(factory, 'cf_compute', lambda *_, **__: _compute(_vm('deallocated'), []))
    with raises_as(ValidationError, match='deallocated') as error:
        vms.get_running_vm(None, VM_ID)
    assert 'az vm start -g rg -n vm1' in str(error.value.recommendations)


@pytest.mark.parametrize('resource_id', [
    '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic',
    'vm1', '/subscriptions/S1/resourceGroups/rg',
])
def test_non_vm_resource_id_is_refused(resource_id):
    with raises_as(InvalidArgumentValueError):
        vms.parse_vm_id(resource_id)


# -- more of the same module -----------------------------------------------------------------------------
def test_a_scale_set_instance_is_labelled_and_started_as_such():
    ref = vms.parse_vm_id('/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/'
                          'virtualMachineScaleSets/ss/virtualMachines/3')
    assert ref == vms.VmRef('S1', 'rg', 'ss', '3')
    assert ref.label == "Instance 3 of scale set 'ss' in resource group 'rg'"
    assert ref.start_command == 'az vmss start -g rg -n ss --instance-ids 3'
    assert vms.parse_vm_id(VM_ID).label == "Virtual machine 'vm1' in resource group 'rg'"


def test_a_scale_set_itself_is_not_a_target():
    with pytest.raises(vms.Refused, match='is not a virtual machine or scale set instance'):
        vms.parse_vm_id('/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss')


def test_a_vm_without_a_power_state_is_taken_as_it_is(monkeypatch):
    import azext_bastion_native.management.clients as factory
    vm = SimpleNamespace(instance_view=None)
    monkeypatch.setattr(factory, 'cf_compute', lambda *_, **__: _compute(vm, []))
    assert vms.get_running_vm(None, VM_ID) is vm
    assert vms.power_state(vm) is None and vms.os_type(vm) is None and vms.admin_username(vm) is None


def test_the_os_type_as_the_sdks_enum_and_an_empty_admin_user():
    class OperatingSystemTypes(enum.Enum):
        WINDOWS = 'Windows'
    assert vms.os_type(_vm(os_type=OperatingSystemTypes.WINDOWS)) == 'windows'
    assert vms.admin_username(_vm(admin='')) is None


def test_a_vm_not_found_names_it_and_how_to_list_them(monkeypatch):
    import azext_bastion_native.management.clients as factory

    def missing(*_, **__):
        raise ResourceNotFoundError(message='The Resource was not found.')
    monkeypatch.setattr(factory, 'cf_compute', lambda *_, **__: SimpleNamespace(
        virtual_machines=SimpleNamespace(get=missing)))
    with pytest.raises(ArmNotFound) as refused:
        vms.get_running_vm(None, VM_ID)
    assert refused.value.message.startswith("Virtual machine 'vm1' in resource group 'rg' was not found.")
    assert refused.value.recommendation == 'List the VMs you can see: az vm list -g rg -o table'
