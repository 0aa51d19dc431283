"""connect/resolve.py: the ARM reads of a connecting command, against in-memory clients: an IP target reads only the
host; a VM target reads the VM and checks that the host reaches its network before anything is connected."""
from types import SimpleNamespace

import pytest

from azext_bastion_native.connect import preflight, resolve
from azext_bastion_native.connect.preflight import ConnectRequest
from azext_bastion_native.errors import Refused
from azext_bastion_native.management import clients, network_reach
from azext_bastion_native.management.network_reach import Reach

HOST_ID = '/subscriptions/sub-host/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/bh'
VM_ID = '/subscriptions/sub-vm/resourceGroups/vm-rg/providers/Microsoft.Compute/virtualMachines/vm1'
HUB = '/subscriptions/sub-host/resourcegroups/rg/providers/microsoft.network/virtualnetworks/hub'
SPOKE = '/subscriptions/sub-vm/resourcegroups/vm-rg/providers/microsoft.network/virtualnetworks/spoke'


def _vm(power='running'):
    return SimpleNamespace(
        instance_view=SimpleNamespace(statuses=[SimpleNamespace(code=f'PowerState/{power}')]),
        storage_profile=SimpleNamespace(os_disk=SimpleNamespace(os_type='Linux')),
        os_profile=SimpleNamespace(admin_username='azureuser'))


@pytest.fixture
def azure(monkeypatch):
    """The host (IP connect on), the VM and the network reach as ARM would give them; `reads` lists each read."""
    state = SimpleNamespace(reads=[], vm=_vm(), reach=Reach(HUB, frozenset({HUB, SPOKE}), SPOKE))
    host = SimpleNamespace(id=HOST_ID, sku=SimpleNamespace(name='Standard'), enable_tunneling=True,
                           enable_ip_connect=True, dns_name='bst-1.bastion.azure.com')

    def get_host(resource_group, name):
        state.reads.append(('host', resource_group, name))
        return host

    def get_vm(resource_group, name, expand=None):
        state.reads.append(('vm', resource_group, name))
        return state.vm

    def read_reach(_cli_ctx, read_host, vm):
        assert read_host is host and vm is state.vm
        state.reads.append(('reach',))
        return state.reach
    monkeypatch.setattr(clients, 'cf_network', lambda *_, **__: SimpleNamespace(
        bastion_hosts=SimpleNamespace(get=get_host)))
    monkeypatch.setattr(clients, 'cf_compute', lambda *_, subscription_id=None: SimpleNamespace(
        virtual_machines=SimpleNamespace(get=get_vm)))
    monkeypatch.setattr(network_reach, 'read_reach', read_reach)
    monkeypatch.setattr(resolve, 'arm_token_getter', lambda _cli_ctx, subscription: f'token of {subscription}')
    return state


def _request(**target):
    return ConnectRequest(resource_group='rg', name='bh', resource_port=22, **target)


def test_an_ip_target_reads_the_host_only(azure):
    destination = resolve.resolve_destination(None, _request(target_ip_address='10.0.0.4'))
    assert azure.reads == [('host', 'rg', 'bh')]
    assert destination.target_label == '10.0.0.4' and destination.target.hostname == '10.0.0.4'
    assert destination.endpoint.host == 'bst-1.bastion.azure.com'
    assert destination.get_arm_token == 'token of sub-host'       # the token of the host's subscription
    assert destination.target_os is None and destination.admin_username is None


def test_a_vm_target_reads_the_vm_checks_the_reach_and_carries_its_os_and_user(azure):
    destination = resolve.resolve_destination(None, _request(target_resource_id=VM_ID))
    assert azure.reads == [('host', 'rg', 'bh'), ('vm', 'vm-rg', 'vm1'), ('reach',)]
    assert destination.target_label == VM_ID and destination.target.resource_id == VM_ID
    assert (destination.target_os, destination.admin_username) == ('linux', 'azureuser')


def test_a_vm_on_a_network_the_host_does_not_reach_is_refused(azure):
    azure.reach = Reach(HUB, frozenset({HUB}), SPOKE)
    with pytest.raises(preflight.PreflightError):
        resolve.resolve_destination(None, _request(target_resource_id=VM_ID))


def test_a_stopped_vm_is_refused_with_its_start_command_before_the_reach_is_read(azure):
    azure.vm = _vm('deallocated')
    with pytest.raises(Refused) as refused:
        resolve.resolve_destination(None, _request(target_resource_id=VM_ID))
    assert 'az vm start -g vm-rg -n vm1' in refused.value.recommendation
    assert ('reach',) not in azure.reads


def test_a_host_without_native_client_is_refused_before_the_vm_is_read(azure, monkeypatch):
    host = SimpleNamespace(id=HOST_ID, sku=SimpleNamespace(name='Basic'), enable_tunneling=False,
                           enable_ip_connect=False, dns_name='bst-1.bastion.azure.com')
    monkeypatch.setattr(clients, 'cf_network', lambda *_, **__: SimpleNamespace(
        bastion_hosts=SimpleNamespace(get=lambda *_: host)))
    with pytest.raises(preflight.PreflightError, match='Basic SKU'):
        resolve.resolve_destination(None, _request(target_resource_id=VM_ID))
    assert azure.reads == []
