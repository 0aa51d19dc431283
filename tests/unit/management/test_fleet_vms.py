"""management/fleet_vms.py: the VMs a host reaches, each read on its own: a NIC or power state that cannot be read, a
stopped or Windows VM, a VM on a network the host does not reach: skipped with its reason, never failing the run."""
from types import SimpleNamespace

from azure.core.exceptions import ResourceNotFoundError

from azext_bastion_native.management import fleet_vms

SUB = '/subscriptions/S1/resourceGroups/'
HUB = f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/hub'


def _vm(name, nic, os_type='Linux'):
    return SimpleNamespace(
        name=name, id=f'{SUB}fleet-rg/providers/Microsoft.Compute/virtualMachines/{name}',
        network_profile=SimpleNamespace(network_interfaces=[SimpleNamespace(
            id=f'{SUB}fleet-rg/providers/Microsoft.Network/networkInterfaces/{nic}', primary=True)]),
        storage_profile=SimpleNamespace(os_disk=SimpleNamespace(os_type=os_type)),
        os_profile=SimpleNamespace(admin_username='azureuser'))


def _clients(vms, nics, power):
    def nic(_, name):
        if name not in nics:
            raise ResourceNotFoundError('NIC not found')
        subnet = SimpleNamespace(id=f'{nics[name]}/subnets/a')
        return SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=subnet)])
    network = SimpleNamespace(network_interfaces=SimpleNamespace(get=nic),
                              virtual_networks=SimpleNamespace(get=lambda *_: SimpleNamespace()))
    compute = SimpleNamespace(virtual_machines=SimpleNamespace(
        list=lambda _: vms, instance_view=lambda _, name: SimpleNamespace(
            statuses=[SimpleNamespace(code=f'PowerState/{power.get(name, "running")}')])))
    return network, compute


def test_each_vm_is_read_on_its_own_and_skipped_with_its_reason():
    bastion_subnet = SimpleNamespace(id=f'{HUB}/subnets/AzureBastionSubnet')
    host = SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=bastion_subnet)])
    vms = [_vm('web-1', 'web-1-nic'), _vm('web-2', 'missing-nic'), _vm('web-3', 'web-3-nic'),
           _vm('win-1', 'win-1-nic', 'Windows'), _vm('far-1', 'far-1-nic')]
    nics = {'web-1-nic': HUB, 'web-3-nic': HUB, 'win-1-nic': HUB, 'far-1-nic': f'{SUB}rg/x/other'}
    network, compute = _clients(vms, nics, {'web-3': 'deallocated'})
    members, skipped = fleet_vms.list_fleet(network, compute, host, 'fleet-rg')
    assert [vm.name for vm in members] == ['web-1']
    reasons = {item.vm: item.reason for item in skipped}
    assert 'network interface could not be read' in reasons['web-2']
    assert reasons['web-3'].startswith('not running (power state: deallocated)') and 'az vm start' in reasons['web-3']
    assert reasons['win-1'].startswith('Windows VM') and 'virtual network' in reasons['far-1']
    assert all(item.id and item.resource_group == 'fleet-rg' for item in skipped)
