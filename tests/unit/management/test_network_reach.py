"""management/network_reach.py: the host's virtual network and its Connected peerings, the network of a VM's primary
NIC, each read in its own subscription; what cannot be read is left unknown rather than refused."""
from types import SimpleNamespace

from azure.core.exceptions import HttpResponseError

from azext_bastion_native.management import clients, network_reach
from azext_bastion_native.management.network_reach import Reach

SUB = '/subscriptions/S1/resourceGroups/'
HUB = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/Hub'
SPOKE = '/subscriptions/S2/resourceGroups/vm-rg/providers/Microsoft.Network/virtualNetworks/Spoke'


def test_host_vnet_from_the_bastion_subnet_or_a_developer_hosts_network():
    subnet = SimpleNamespace(id=f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/VNet/subnets/AzureBastionSubnet')
    assert network_reach.host_vnet(SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=subnet)])) == \
        f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/VNet'.lower()
    developer = SimpleNamespace(ip_configurations=None, virtual_network=SimpleNamespace(id=f'{SUB}rg/x/DevNet'))
    assert network_reach.host_vnet(developer) == f'{SUB}rg/x/DevNet'.lower()


def test_reachable_networks_are_the_hosts_and_its_connected_peerings():
    vnet = f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/hub'

    def peering(name, state):
        return SimpleNamespace(peering_state=state, remote_virtual_network=SimpleNamespace(
            id=f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/{name}'))
    hub = SimpleNamespace(virtual_network_peerings=[peering('Spoke1', 'Connected'), peering('spoke2', 'Initiated'),
                                                    peering('spoke3', 'Disconnected')])
    network = SimpleNamespace(virtual_networks=SimpleNamespace(get=lambda group, name: hub))
    assert network_reach.reachable_vnets(network, vnet.lower()) == {
        vnet.lower(), f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/spoke1'.lower()}


def test_a_subnet_id_gives_its_network_lower_cased_or_none():
    assert network_reach.vnet_of_subnet(f'{HUB}/subnets/Default') == HUB.lower()
    assert network_reach.vnet_of_subnet(None) is None and network_reach.vnet_of_subnet('') is None
    assert network_reach.vnet_of_subnet(HUB) is None                    # not a subnet ID


def _nic_id(name):
    return f'/subscriptions/S2/resourceGroups/vm-rg/providers/Microsoft.Network/networkInterfaces/{name}'


def _vm(*nics):
    return SimpleNamespace(network_profile=SimpleNamespace(network_interfaces=[
        SimpleNamespace(id=_nic_id(name), primary=primary) for name, primary in nics]))


def _network(nic_subnets, read=None):
    """A network client whose NICs are {name: subnet id}; ``read`` collects the NIC names read."""
    def get(resource_group, name):
        (read if read is not None else []).append(name)
        return SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=SimpleNamespace(id=nic_subnets[name]))
                                                  if nic_subnets[name] else SimpleNamespace(subnet=None)])
    return SimpleNamespace(network_interfaces=SimpleNamespace(get=get))


def test_the_vms_network_is_its_primary_nics_or_else_its_first():
    read = []
    network = _network({'a': f'{HUB}/subnets/x', 'b': f'{SPOKE}/subnets/y'}, read)
    assert network_reach.nic_vnet(network, _vm(('a', False), ('b', True))) == SPOKE.lower() and read == ['b']
    assert network_reach.nic_vnet(network, _vm(('a', None), ('b', None))) == HUB.lower()
    assert network_reach.nic_vnet(network, _vm()) is None
    assert network_reach.nic_vnet(_network({'a': None}), _vm(('a', True))) is None


def _host():
    return SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=SimpleNamespace(
        id=f'{HUB}/subnets/AzureBastionSubnet'))])


def _clients(monkeypatch, fail=False):
    """Network clients per subscription: S1 holds the hub (peered with the spoke), S2 the VM's NIC."""
    asked = []
    peering = SimpleNamespace(peering_state='Connected', remote_virtual_network=SimpleNamespace(id=SPOKE))
    hub = SimpleNamespace(virtual_network_peerings=[peering])

    def nic(resource_group, name):
        if fail:
            raise HttpResponseError(message='AuthorizationFailed')
        return SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=SimpleNamespace(id=f'{SPOKE}/subnets/a'))])

    def cf_network(_cli_ctx, subscription_id=None):
        asked.append(subscription_id)
        return SimpleNamespace(virtual_networks=SimpleNamespace(get=lambda rg, name: hub),
                               network_interfaces=SimpleNamespace(get=nic))
    monkeypatch.setattr(clients, 'cf_network', cf_network)
    return asked


def test_reach_reads_each_network_in_its_own_subscription(monkeypatch):
    asked = _clients(monkeypatch)
    reach = network_reach.read_reach(None, _host(), _vm(('nic', True)))
    assert reach == Reach(HUB.lower(), frozenset({HUB.lower(), SPOKE.lower()}), SPOKE.lower())
    assert asked == ['s1', 'S2']        # the host's network ID is compared lower-cased; ARM takes either case


def test_a_network_that_cannot_be_read_leaves_the_reach_unknown(monkeypatch):
    _clients(monkeypatch, fail=True)
    assert network_reach.read_reach(None, _host(), _vm(('nic', True))) == Reach(None, frozenset(), None)


def test_a_vm_without_nics_and_a_host_without_a_network(monkeypatch):
    asked = _clients(monkeypatch)
    assert network_reach.read_reach(None, _host(), _vm()).vm_vnet is None
    no_network = SimpleNamespace(ip_configurations=[], virtual_network=None)
    assert network_reach.read_reach(None, no_network, _vm()) == Reach(None, frozenset(), None)
    assert asked == ['s1']
