"""Issue 5 end to end: `az network bastion nsg check / apply` with the real `az` against the emulator.

Every test arranges its own host, VNet and NSG (never the shared demo-bastion: an NSG there would limit the
ports other tests tunnel to). Writes are asserted through the emulator's request log."""

import time
import uuid

import pytest

from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_to_arm
from tests.unit.nsg.test_nsg_rules import arm_rule

pytestmark = pytest.mark.e2e

RG = 'demo-rg'
NOT_COMPLIANT = 3
_next_net = iter(range(20, 250))


def _unique(prefix):
    return f'{prefix}-{uuid.uuid4().hex[:6]}'


@pytest.fixture
def host(network):
    """A Standard host with native client on, in a VNet of its own whose AzureBastionSubnet has no NSG."""
    from azure.mgmt.network.models import (
        AddressSpace, BastionHost, BastionHostIPConfiguration, PublicIPAddress, PublicIPAddressSku, Sku, SubResource,
        Subnet, VirtualNetwork)
    name = _unique('nsg')
    octet = next(_next_net)
    vnet = network.virtual_networks.begin_create_or_update(RG, name + '-vnet', VirtualNetwork(
        location='westeurope', address_space=AddressSpace(address_prefixes=[f'10.{octet}.0.0/16']),
        subnets=[Subnet(name='AzureBastionSubnet', address_prefix=f'10.{octet}.1.0/26')])).result()
    pip = network.public_ip_addresses.begin_create_or_update(RG, name + '-ip', PublicIPAddress(
        location='westeurope', sku=PublicIPAddressSku(name='Standard'), public_ip_allocation_method='Static')).result()
    network.bastion_hosts.begin_create_or_update(RG, name, BastionHost(
        location='westeurope', sku=Sku(name='Standard'), enable_tunneling=True,
        ip_configurations=[BastionHostIPConfiguration(name='ipconf', subnet=SubResource(id=vnet.subnets[0].id),
                                                      public_ip_address=SubResource(id=pip.id))])).result()
    return name


def _user_nsg(network, name, rules, resource_group=RG):
    from azure.mgmt.network.models import NetworkSecurityGroup
    return network.network_security_groups.begin_create_or_update(resource_group, name, NetworkSecurityGroup(
        {'location': 'westeurope', 'properties': {'securityRules': rules}})).result()


def _associate(network, host_name, nsg_id):
    from azure.mgmt.network.models import NetworkSecurityGroup
    subnet = network.subnets.get(RG, host_name + '-vnet', 'AzureBastionSubnet')
    subnet.network_security_group = NetworkSecurityGroup(id=nsg_id)
    network.subnets.begin_create_or_update(RG, host_name + '-vnet', 'AzureBastionSubnet', subnet).result()


def _subnet_nsg(network, host_name):
    nsg = network.subnets.get(RG, host_name + '-vnet', 'AzureBastionSubnet').network_security_group
    return nsg.id if nsg else None


def _writes_since(emulator, since, *fragments):
    """PUT/PATCH/DELETE requests after `since` whose path contains every fragment (case-insensitive)."""
    return [r for r in emulator.get('/_emulator/requests').json()['requests']
            if r['time'] >= since and r['method'] in ('PUT', 'PATCH', 'DELETE') and '/_emulator' not in r['path']
            and all(f.lower() in r['path'].lower() for f in fragments)]


def _kinds(report):
    return {f['rule']: f['kind'] for f in report['findings'] if f['rule']}


def test_bare_subnet_check_apply_check_then_no_change(host, az, emulator, network):
    before = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False)
    assert before.returncode == NOT_COMPLIANT
    assert before.json['compliant'] is False and before.json['findings'][0]['kind'] == 'no-nsg'
    assert 'need a fix' in before.stderr

    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host).json   # new NSG: no question asked
    assert applied['createdNsg'] is True and applied['associated'] is True
    assert applied['nsg'].endswith(f'/networkSecurityGroups/{host}-nsg')
    assert _subnet_nsg(network, host).lower() == applied['nsg'].lower()
    nsg = network.network_security_groups.get(RG, host + '-nsg')
    assert nsg.location == 'westeurope'
    assert {r.name for r in nsg.security_rules} == {r.name for r in bastion_rule_set()}

    after = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host)
    assert after.returncode == 0 and after.json['compliant'] is True
    assert set(_kinds(after.json).values()) == {'present'}
    table = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '-o', 'table').stdout
    assert 'AllowSshRdpOutbound' in table and 'present' in table

    since = time.time()
    again = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host)
    assert 'No change' in again.stderr
    assert again.json['changes'] == []
    assert _writes_since(emulator, since, host) == []


def test_merge_into_a_users_nsg_keeps_their_rules_and_moves_ours(host, az, emulator, network):
    theirs = [arm_rule('their-app', 'Inbound', 120, '10.1.0.0/16', '*', '8443'),
              arm_rule('their-storage', 'Outbound', 100, '*', 'Storage', '443')]
    nsg = _user_nsg(network, host + '-mine', theirs)
    _associate(network, host, nsg.id)

    since = time.time()
    refused = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, check=False)   # no TTY, no --yes
    assert refused.returncode != 0 and '--yes' in refused.stderr and 'Traceback' not in refused.stderr
    assert 'add AllowHttpsInbound' in refused.stderr
    assert _writes_since(emulator, since, host) == []

    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes').json
    assert applied['createdNsg'] is False and applied['associated'] is False
    moved = {m['rule']: m for m in applied['moved']}
    assert moved['AllowHttpsInbound']['priority'] == 119 and 'their-app' in moved['AllowHttpsInbound']['because']
    assert moved['AllowSshRdpOutbound']['priority'] == 101
    rules = {r.name: r for r in network.network_security_groups.get(RG, host + '-mine').security_rules}
    assert rules['their-app'].priority == 120 and rules['their-app'].destination_port_range == '8443'
    assert rules['their-storage'].priority == 100
    assert rules['AllowHttpsInbound'].priority == 119
    # one PUT per rule of ours; the NSG itself (and so their rules) is never rewritten
    writes = _writes_since(emulator, since, host + '-mine')
    assert writes and all('/securityRules/' in w['path'] for w in writes)
    assert writes[-1]['path'].endswith('/securityRules/DenyOtherVnetOutbound')
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


def test_compliant_nsg_under_other_names_is_not_written(host, az, emulator, network):
    rules = [dict(rule_to_arm(r), name=f'corp-{i}') for i, r in enumerate(bastion_rule_set())]
    nsg = _user_nsg(network, host + '-corp', rules)
    _associate(network, host, nsg.id)
    since = time.time()
    result = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host)
    assert 'No change' in result.stderr
    assert _writes_since(emulator, since, host) == []


def test_check_reports_each_kind_of_finding(host, az, network):
    rules = [rule_to_arm(r) for r in bastion_rule_set() if r.name not in ('AllowAzureCloudOutbound',)]
    for rule in rules:
        if rule['name'] == 'AllowGatewayManagerInbound':
            rule['properties']['sourceAddressPrefix'] = '*'          # wider: * where GatewayManager belongs
    rules.append(arm_rule('block-web', 'Inbound', 110, 'Internet', '*', '443', access='Deny'))   # breaking
    rules.append(arm_rule('block-10', 'Outbound', 200, '*', '10.0.0.0/8', '*', access='Deny'))   # warning
    nsg = _user_nsg(network, host + '-mixed', rules)
    _associate(network, host, nsg.id)

    result = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False)
    assert result.returncode == NOT_COMPLIANT
    kinds = _kinds(result.json)
    assert kinds['AllowHttpsInbound'] == 'breaking'
    assert kinds['AllowAzureCloudOutbound'] == 'missing'
    assert kinds['AllowGatewayManagerInbound'] == 'wider'
    assert kinds['AllowSshRdpOutbound'] == 'present'
    assert any(f['kind'] == 'warning' and f['related'] == ['block-10'] for f in result.json['findings'])
    table = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '-o', 'table', check=False).stdout
    assert 'breaking' in table and 'block-web' in table
    only_failing = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--query',
                      "findings[?kind=='breaking'].rule", check=False)
    assert only_failing.json == ['AllowHttpsInbound'] and only_failing.returncode == NOT_COMPLIANT


def test_nsg_in_another_resource_group_is_merged_in_place(host, az, network):
    other_rg = _unique('nsg-rg')
    az('group', 'create', '-n', other_rg, '-l', 'westeurope', '-o', 'none')
    nsg = _user_nsg(network, 'shared-nsg', [arm_rule('their-app', 'Inbound', 300, '*', '*', '9000')], other_rg)
    _associate(network, host, nsg.id)
    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes').json
    assert applied['nsg'].lower() == nsg.id.lower() and applied['associated'] is False
    names = {r.name for r in network.network_security_groups.get(other_rg, 'shared-nsg').security_rules}
    assert 'their-app' in names and 'DenyOtherVnetOutbound' in names
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


@pytest.mark.parametrize('ports, phrase', [
    (['ssh'], 'is not a port'), (['0'], 'outside 1-65535'), (['65536'], 'outside 1-65535'),
    (['3389-22'], 'reversed'), (['22', '22'], 'overlap')])
def test_bad_ports_are_refused_before_any_call(az, emulator, ports, phrase):
    name = _unique('never-called')
    since = time.time()
    result = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', name, '--yes', '--ports', *ports, check=False)
    assert result.returncode != 0 and phrase in result.stderr and '--ports' in result.stderr
    assert 'Traceback' not in result.stderr
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests']
            if r['time'] >= since and name in r['path']]
    assert seen == []      # not even a GET: the validator refuses before any Azure call


def test_conflict_mid_update_leaves_bastion_working_and_a_rerun_finishes(host, az, emulator, network):
    nsg = _user_nsg(network, host + '-busy', [arm_rule('their-app', 'Inbound', 300, '*', '*', '9000')])
    _associate(network, host, nsg.id)
    emulator.post('/_emulator/arm-faults', json={'method': 'PUT', 'status': 412, 'count': 1,
                                                 'path_contains': f'{host}-busy/securityRules/DenyOtherVnetOutbound'})
    failed = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes', check=False)
    assert failed.returncode != 0 and 'changed by someone else' in failed.stderr
    half = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False).json
    # every allow rule went in before the Deny: nothing Bastion needs is blocked
    assert {k for k, v in _kinds(half).items() if v != 'present'} == {'DenyOtherVnetOutbound'}
    assert az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes').json['changes'] == [
        'add DenyOtherVnetOutbound: Outbound 4000 Deny * -> VirtualNetwork ports *']
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


def test_data_plane_then_refuses_a_port_outside_the_list_while_22_works(host, az, emulator, sshd_linux_vm):
    """What the NSG is for: after `nsg apply --ports 22`, Bastion reaches the VM on 22 and nothing else."""
    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '22')
    vm_id = sshd_linux_vm.vm_id
    emulator.set_vm_endpoint('linux-vm', 2222, '127.0.0.1', sshd_linux_vm.sshd.port)   # something listens there
    proxy = ('network', 'bastion', 'proxy', '-g', RG, '-n', host, '--target-resource-id', vm_id, '--resource-port')
    allowed = az(*proxy, '22', input='', check=False, timeout=60)
    assert allowed.stdout.startswith('SSH-2.0-OpenSSH'), allowed.stderr
    refused = az(*proxy, '2222', input='', check=False, timeout=60)
    assert refused.returncode != 0 and refused.stdout == ''
    assert '2222' in refused.stderr and 'Traceback' not in refused.stderr
    # (8080 and 5701 stay open to VirtualNetwork: Bastion's own instances talk on them, the rule set keeps them.)
