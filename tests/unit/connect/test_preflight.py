"""Pre-flight checks: the one ARM GET of the host plus the target arguments -> Endpoint and Target, or the fix."""

from types import SimpleNamespace

import pytest

from azext_bastion_native.errors import Kind
from azext_bastion_native.connect.preflight import ConnectRequest, PreflightError, plan_connection

HOST_ID = '/subscriptions/sub-9/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/bh'
VM_ID = '/subscriptions/sub-9/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm'


def _host(sku='Standard', tunneling=True, ip_connect=False, dns_name='bst.example.net'):
    return SimpleNamespace(id=HOST_ID, sku=SimpleNamespace(name=sku), enable_tunneling=tunneling,
                           enable_ip_connect=ip_connect, dns_name=dns_name)


def _request(**kwargs):
    values = {'resource_group': 'rg', 'name': 'bh', 'resource_port': 22, 'target_resource_id': VM_ID}
    values.update(kwargs)
    return ConnectRequest(**values)


def test_standard_host_and_vm_target():
    endpoint, target = plan_connection(_host(), _request())
    assert (endpoint.host, endpoint.developer) == ('bst.example.net', False)
    assert (target.resource_id, target.port, target.hostname) == (VM_ID, 22, None)


def test_ip_connect_target_lives_in_the_hosts_subscription_and_group():
    _, target = plan_connection(_host(ip_connect=True),
                                _request(target_resource_id=None, target_ip_address='10.0.0.4', resource_port=3389))
    assert target.resource_id.endswith('/subscriptions/sub-9/resourceGroups/rg/providers/Microsoft.Network/'
                                       'bh-hostConnect/10.0.0.4')
    assert target.hostname == '10.0.0.4'


def test_developer_sku_uses_the_developer_endpoint():
    endpoint, _ = plan_connection(_host(sku='Developer', tunneling=False), _request())
    assert endpoint.developer and endpoint.bastion_resource_id == HOST_ID


@pytest.mark.parametrize('host, request_args, kind, words', [
    (_host(sku='Basic', tunneling=False), {}, 'validation',
     'az network bastion native-client enable -g rg -n bh --upgrade-sku'),
    (_host(tunneling=False), {}, 'validation', 'az network bastion native-client enable -g rg -n bh'),
    (_host(), {'target_resource_id': None, 'target_ip_address': '10.0.0.4'}, 'validation', '--enable-ip-connect'),
    (_host(ip_connect=True), {'target_resource_id': None, 'target_ip_address': '10.0.0.4', 'resource_port': 8080},
     'invalid-argument', '22 and 3389'),
    (_host(), {'target_resource_id': None}, 'missing', '--target-resource-id'),
    (_host(), {'target_ip_address': '10.0.0.4'}, 'mutually-exclusive', 'exactly one'),
    (_host(), {'target_resource_id': 'vm-name-only'}, 'invalid-argument', 'not a valid resource ID'),
    (_host(), {'resource_port': 70000}, 'invalid-argument', '1-65535'),
    (_host(dns_name=None), {}, 'validation', 'no DNS name'),
])
def test_refusals_say_what_to_do(host, request_args, kind, words):
    with pytest.raises(PreflightError) as caught:
        plan_connection(host, _request(**request_args))
    assert caught.value.kind is Kind(kind)
    assert words in f'{caught.value.message} {caught.value.recommendation}'


def test_a_vm_on_a_network_the_host_does_not_reach_is_refused_with_the_peering_commands():
    from azext_bastion_native.connect.preflight import check_reach
    from azext_bastion_native.management.network_reach import Reach
    net = '/subscriptions/sub-9/resourcegroups/{}/providers/microsoft.network/virtualnetworks/{}'
    hub, spoke, island = net.format('rg', 'hub'), net.format('rg', 'spoke'), net.format('other-rg', 'island')
    check_reach(_request(), Reach(hub, frozenset({hub, spoke}), spoke))          # a Connected peering
    check_reach(_request(), Reach(hub, frozenset({hub}), hub))                   # the host's own
    check_reach(_request(), Reach(None, frozenset(), island))                    # not known: no decision
    with pytest.raises(PreflightError) as refused:
        check_reach(_request(), Reach(hub, frozenset({hub, spoke}), island))
    assert refused.value.kind is Kind.VALIDATION
    assert "VM 'vm' is on virtual network 'island', which Bastion host 'bh' does not reach" in refused.value.message
    assert ('az network vnet peering create --allow-vnet-access -g rg --vnet-name hub -n to-island --remote-vnet '
            f'{island}') in refused.value.recommendation
    assert f'-g other-rg --vnet-name island -n to-hub --remote-vnet {hub}' in refused.value.recommendation
