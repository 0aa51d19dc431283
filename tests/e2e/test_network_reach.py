"""A VM on a virtual network the Bastion host does not reach (neither its own nor a Connected peering): every
connecting command refuses it before a session is minted, with the peering as the fix, and doctor fails a
Network row saying the same; once the networks are peered both ways, the same commands connect.

The host here is the test's own, in a virtual network of its own; its target is linux-vm (on demo-vnet)."""

import uuid

import pytest

from tests.e2e.arrange import RG, peer_networks, refused

pytestmark = pytest.mark.e2e

FAILED = 3


@pytest.fixture(scope='module')
def island_host(network):
    """A Standard host with native client on, in a virtual network peered with nothing."""
    from azure.mgmt.network.models import (
        AddressSpace, BastionHost, BastionHostIPConfiguration, PublicIPAddress, PublicIPAddressSku, Sku, SubResource,
        Subnet, VirtualNetwork)
    name = f'island-{uuid.uuid4().hex[:6]}'
    vnet = network.virtual_networks.begin_create_or_update(RG, name + '-vnet', VirtualNetwork(
        location='westeurope', address_space=AddressSpace(address_prefixes=['10.251.0.0/16']),
        subnets=[Subnet(name='AzureBastionSubnet', address_prefix='10.251.1.0/26')])).result()
    pip = network.public_ip_addresses.begin_create_or_update(RG, name + '-ip', PublicIPAddress(
        location='westeurope', sku=PublicIPAddressSku(name='Standard'), public_ip_allocation_method='Static')).result()
    network.bastion_hosts.begin_create_or_update(RG, name, BastionHost(
        location='westeurope', sku=Sku(name='Standard'), enable_tunneling=True,
        ip_configurations=[BastionHostIPConfiguration(name='ipconf', subnet=SubResource(id=vnet.subnets[0].id),
                                                      public_ip_address=SubResource(id=pip.id))])).result()
    return name


def _mints(emulator):
    return emulator.get('stats').json()['mints']


def _refused_before_any_session(emulator, result, mints_before):
    refused(result, "is on virtual network 'demo-vnet'", 'does not reach',
            'az network vnet peering create')
    assert result.stdout == ''
    assert _mints(emulator) == mints_before          # no session was minted, none is left
    assert emulator.get('sessions').json() == []


def test_ssh_tunnel_proxy_and_ssh_config_refuse_a_vm_the_host_does_not_reach(az, emulator, island_host, ssh_key,
                                                                             sshd_linux_vm):
    vm_id = sshd_linux_vm.vm_id
    host = ('-g', RG, '-n', island_host)
    target = ('--target-resource-id', vm_id)
    mints = _mints(emulator)
    _refused_before_any_session(emulator, az('network', 'bastion', 'ssh', *host, *target, '--auth-type', 'ssh-key',
                                             '--username', 'azureuser', '--ssh-key', ssh_key,
                                             '--', 'true', check=False, timeout=60), mints)
    _refused_before_any_session(emulator, az('network', 'bastion', 'tunnel', *host, *target, '--resource-port', 22,
                                             '--timeout', 5, check=False, timeout=60), mints)
    _refused_before_any_session(emulator, az('network', 'bastion', 'proxy', *host, *target, '--resource-port', 22,
                                             check=False, timeout=60, input=''), mints)
    _refused_before_any_session(emulator, az('network', 'bastion', 'ssh-config', *host, *target, check=False,
                                             timeout=60), mints)


def test_doctor_fails_the_network_row_with_the_peering_fix_and_mints_no_session(az, emulator, island_host,
                                                                                sshd_linux_vm):
    mints = _mints(emulator)
    result = az('network', 'bastion', 'doctor', '-g', RG, '-n', island_host, '--target-resource-id',
                sshd_linux_vm.vm_id, check=False)
    assert result.returncode == FAILED, result.stderr
    rows = {row['check']: row for row in result.json}
    assert [check for check, row in rows.items() if row['status'] == 'fail'] == ['Network']
    assert rows['Target VM']['status'] == 'pass'
    assert "is on virtual network 'demo-vnet'" in rows['Network']['detail']
    assert f'--vnet-name {island_host}-vnet' in rows['Network']['fix'] and '--vnet-name demo-vnet' in \
        rows['Network']['fix']
    assert 'No session tried: Network failed' in rows['Data plane']['detail']
    assert _mints(emulator) == mints
    assert emulator.get('sessions').json() == []


def test_once_peered_both_ways_the_vm_is_reached(az, emulator, network, island_host, sshd_linux_vm):
    """The positive side (and the emulator's model of a Connected peering): a peering on one side only is not
    Connected; both sides, and doctor's session round trip reaches the VM's sshd through the host."""
    from azure.mgmt.network.models import SubResource, VirtualNetworkPeering
    island = network.virtual_networks.get(RG, f'{island_host}-vnet')
    demo = network.virtual_networks.get(RG, 'demo-vnet')
    island.virtual_network_peerings = [VirtualNetworkPeering(
        name='to-demo', remote_virtual_network=SubResource(id=demo.id), allow_virtual_network_access=True)]
    network.virtual_networks.begin_create_or_update(RG, island.name, island).result()
    assert network.virtual_networks.get(RG, island.name).virtual_network_peerings[0].peering_state == 'Initiated'
    one_way = az('network', 'bastion', 'doctor', '-g', RG, '-n', island_host, '--target-resource-id',
                 sshd_linux_vm.vm_id, check=False)
    assert {row['check']: row['status'] for row in one_way.json}['Network'] == 'fail'

    peer_networks(network, island.name, 'demo-vnet')
    result = az('network', 'bastion', 'doctor', '-g', RG, '-n', island_host, '--target-resource-id',
                sshd_linux_vm.vm_id, check=False)
    assert result.returncode == 0, result.stdout
    rows = {row['check']: row for row in result.json}
    assert rows['Network']['status'] == 'pass' and 'peered' in rows['Network']['detail']
    assert rows['Data plane']['status'] == 'pass' and 'port 22 answered' in rows['Data plane']['detail']
    assert emulator.get('sessions').json() == []
