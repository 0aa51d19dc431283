"""Arranging ARM resources for end-to-end tests the way a user would (VNets, public IPs), and reading what reached
the emulator. Shared by the management tests."""

import uuid

RG = 'demo-rg'


def unique(prefix):
    return f'{prefix}-{uuid.uuid4().hex[:6]}'


def make_vnet(network, name, bastion_prefix='10.9.1.0/26'):
    from azure.mgmt.network.models import AddressSpace, Subnet, VirtualNetwork
    subnets = [Subnet(name='default', address_prefix='10.9.0.0/24')]
    if bastion_prefix:
        subnets.append(Subnet(name='AzureBastionSubnet', address_prefix=bastion_prefix))
    return network.virtual_networks.begin_create_or_update(
        RG, name, VirtualNetwork(location='westeurope', address_space=AddressSpace(address_prefixes=['10.9.0.0/16']),
                                 subnets=subnets)).result()


def make_public_ip(network, name, sku='Standard', allocation='Static'):
    from azure.mgmt.network.models import PublicIPAddress, PublicIPAddressSku
    return network.public_ip_addresses.begin_create_or_update(
        RG, name, PublicIPAddress(location='westeurope', sku=PublicIPAddressSku(name=sku),
                                  public_ip_allocation_method=allocation)).result()


def bastion_requests(emulator, name, methods=('PUT', 'PATCH', 'DELETE')):
    """Requests for this host (by method) that reached the emulator's ARM."""
    requests_seen = emulator.get('/_emulator/requests').json()['requests']
    return [r for r in requests_seen if r['method'] in methods
            and f'/bastionhosts/{name}'.lower() in r['path'].lower() and '/_emulator' not in r['path']]


def refused(result, *phrases):
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def peer_networks(network, vnet_a, vnet_b, group=RG):
    """Peer two virtual networks both ways (as `az network vnet peering create` on each side does), so each reaches
    the other: Azure (and the emulator) mark a peering Connected once its remote network has one back."""
    from azure.mgmt.network.models import SubResource, VirtualNetworkPeering
    a, b = network.virtual_networks.get(group, vnet_a), network.virtual_networks.get(group, vnet_b)
    for local, remote in ((a, b), (b, a)):
        peerings = [p for p in local.virtual_network_peerings or [] if p.remote_virtual_network.id != remote.id]
        local.virtual_network_peerings = peerings + [VirtualNetworkPeering(
            name=f'to-{remote.name}', remote_virtual_network=SubResource(id=remote.id),
            allow_virtual_network_access=True)]
        network.virtual_networks.begin_create_or_update(group, local.name, local).result()
