"""`az network bastion nsg check / apply` end to end, with the real `az` against the emulator, which refuses an NSG on
AzureBastionSubnet that lacks what Bastion needs, as Azure does (NetworkSecurityGroupNotCompliantForAzureBastionSubnet).

Every test arranges its own host, VNet and NSG (never the shared demo-bastion: an NSG there would limit the
ports other tests tunnel to). An NSG Azure would refuse on the subnet is arranged unassociated and named with
--nsg-name. Writes are asserted through the emulator's request log, rule sets read back from the emulator."""

import time
import uuid

import pytest

from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_to_arm
from tests.unit.nsg.nsg_json import arm_rule

pytestmark = pytest.mark.e2e

RG = 'demo-rg'
NOT_COMPLIANT = 3
REFUSED_BY_AZURE = 'NetworkSecurityGroupNotCompliantForAzureBastionSubnet'
OFFICES = ['131.107.0.0/16', '20.190.128.5']
_next_net = iter(range(20, 250))


def _unique(prefix):
    return f'{prefix}-{uuid.uuid4().hex[:6]}'


@pytest.fixture
def host(network):
    """A Standard host with native client on, in a VNet of its own whose AzureBastionSubnet has no NSG."""
    return _new_host(network)


def _new_host(network):
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


def _rules(network, nsg_name, resource_group=RG):
    """name -> SecurityRule, read back from the emulator."""
    return {r.name: r for r in network.network_security_groups.get(resource_group, nsg_name).security_rules}


def _ports(rule):
    return [rule.destination_port_range] if rule.destination_port_range else list(rule.destination_port_ranges)


def _rule_set(ports=None, replace=None, extra=()):
    """The rule set as ARM JSON with some rules replaced (None drops one), plus extra rules."""
    rules = []
    for rule in bastion_rule_set(ports):
        arm = (replace or {}).get(rule.name, rule_to_arm(rule))
        if arm is not None:
            rules.append(arm)
    return rules + list(extra)


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
    nsg = _user_nsg(network, host + '-mine', theirs)   # Azure would refuse it on AzureBastionSubnet as it is
    apply = ('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--nsg-name', host + '-mine')

    since = time.time()
    refused = az(*apply, check=False)   # no TTY, no --yes
    assert refused.returncode != 0 and '--yes' in refused.stderr and 'Traceback' not in refused.stderr
    assert 'add AllowHttpsInbound' in refused.stderr
    assert _writes_since(emulator, since, host) == []

    applied = az(*apply, '--yes').json
    assert applied['createdNsg'] is False and applied['associated'] is True
    assert _subnet_nsg(network, host).lower() == nsg.id.lower()     # the emulator's Azure check accepted it
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
    _user_nsg(network, host + '-mixed', rules)     # not associated: Azure refuses it on AzureBastionSubnet
    check_mixed = ('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--nsg-name', host + '-mixed')

    result = az(*check_mixed, check=False)
    assert result.returncode == NOT_COMPLIANT
    kinds = _kinds(result.json)
    assert kinds['AllowHttpsInbound'] == 'breaking'
    assert kinds['AllowAzureCloudOutbound'] == 'missing'
    assert kinds['AllowGatewayManagerInbound'] == 'wider'
    assert kinds['AllowSshRdpOutbound'] == 'present'
    assert any(f['kind'] == 'warning' and f['related'] == ['block-10'] for f in result.json['findings'])
    table = az(*check_mixed, '-o', 'table', check=False).stdout
    assert 'breaking' in table and 'block-web' in table
    only_failing = az(*check_mixed, '--query', "findings[?kind=='breaking'].rule", check=False)
    assert only_failing.json == ['AllowHttpsInbound'] and only_failing.returncode == NOT_COMPLIANT


def test_nsg_in_another_resource_group_is_merged_in_place(host, az, network):
    other_rg = _unique('nsg-rg')
    az('group', 'create', '-n', other_rg, '-l', 'westeurope', '-o', 'none')
    nsg = _user_nsg(network, 'shared-nsg', _rule_set(replace={'DenyOtherVnetOutbound': None}, extra=[
        arm_rule('their-app', 'Inbound', 300, '*', '*', '9000')]), other_rg)
    _associate(network, host, nsg.id)
    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes').json
    assert applied['nsg'].lower() == nsg.id.lower() and applied['associated'] is False
    assert applied['changes'] == ['add DenyOtherVnetOutbound: Outbound 4000 Deny * -> VirtualNetwork ports *']
    names = set(_rules(network, 'shared-nsg', other_rg))
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
    emulator.post('/_emulator/arm-faults', json={'method': 'PUT', 'status': 412, 'count': 1,
                                                 'path_contains': f'{host}-busy/securityRules/DenyOtherVnetOutbound'})
    apply = ('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--nsg-name', host + '-busy', '--yes')
    failed = az(*apply, check=False)
    assert failed.returncode != 0 and 'changed by someone else' in failed.stderr
    assert _subnet_nsg(network, host) is None       # associated only after every rule is in
    half = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--nsg-name', host + '-busy',
              check=False).json
    # every allow rule went in before the Deny: nothing Bastion needs is blocked
    assert {k for k, v in _kinds(half).items() if v != 'present'} == {'DenyOtherVnetOutbound'}
    assert az(*apply).json['changes'] == [
        'add DenyOtherVnetOutbound: Outbound 4000 Deny * -> VirtualNetwork ports *',
        f"associate '{host}-busy' (resource group '{RG}') with AzureBastionSubnet"]
    assert _subnet_nsg(network, host).lower() == nsg.id.lower()
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


def test_data_plane_then_refuses_a_port_outside_the_list_while_22_works(host, az, emulator, network, sshd_linux_vm):
    """What the NSG is for: after `nsg apply`, Bastion reaches the VM on 22 (and 3389) and nothing else; a port
    given with --ports is reachable too."""
    from tests.e2e.arrange import peer_networks
    peer_networks(network, host + '-vnet', 'demo-vnet')     # linux-vm's network: the host reaches it once peered
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
    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '2222', '--yes')
    opened = az(*proxy, '2222', input='', check=False, timeout=60)
    assert opened.stdout.startswith('SSH-2.0-OpenSSH'), opened.stderr


# --- Azure's check on AzureBastionSubnet, and apply never producing what it refuses -------------------------

def test_azure_refuses_an_nsg_without_3389_on_association_and_on_rule_change(host, network):
    """What `nsg apply --ports 22` used to write (outbound 22 only) is exactly what Azure refuses."""
    from azure.core.exceptions import HttpResponseError
    ssh_only = _rule_set(replace={'AllowSshRdpOutbound': arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*',
                                                                  'VirtualNetwork', '22')})
    nsg = _user_nsg(network, host + '-ssh-only', ssh_only)
    with pytest.raises(HttpResponseError) as refused:
        _associate(network, host, nsg.id)
    assert refused.value.error.code == REFUSED_BY_AZURE and f'{host}-ssh-only' in refused.value.error.message
    assert _subnet_nsg(network, host) is None

    good = _user_nsg(network, host + '-good', _rule_set())
    _associate(network, host, good.id)
    from azure.mgmt.network.models import SecurityRule
    with pytest.raises(HttpResponseError) as narrowed:
        network.security_rules.begin_create_or_update(RG, host + '-good', 'AllowSshRdpOutbound', SecurityRule(
            arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '22'))).result()
    assert narrowed.value.error.code == REFUSED_BY_AZURE
    assert _ports(_rules(network, host + '-good')['AllowSshRdpOutbound']) == ['22', '3389']


def test_apply_with_ports_keeps_ssh_and_rdp_and_azure_accepts_every_write(host, az, network):
    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '2222').json
    assert applied['associated'] is True and _subnet_nsg(network, host).lower() == applied['nsg'].lower()
    rules = _rules(network, host + '-nsg')
    assert _ports(rules['AllowSshRdpOutbound']) == ['22', '3389']
    assert _ports(rules['AllowCustomPortsOutbound']) == ['2222']
    assert rules['DenyOtherVnetOutbound'].access == 'Deny'
    # another port list later: the custom-ports rule is rewritten (the NSG is associated, Azure checks the change)
    again = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '8443', '--yes').json
    assert again['changes'] == ['update AllowCustomPortsOutbound: Outbound 105 Allow * -> VirtualNetwork ports 8443 '
                                '(was priority 105, Allow * -> VirtualNetwork ports 2222)']
    assert _ports(_rules(network, host + '-nsg')['AllowCustomPortsOutbound']) == ['8443']
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--ports', '8443').json['compliant']


def test_https_from_office_addresses_is_reported_narrowed_and_kept(host, az, emulator, network):
    offices = arm_rule('AllowHttpsInbound', 'Inbound', 120, OFFICES, '*', '443', protocol='Tcp')
    nsg = _user_nsg(network, host + '-offices', _rule_set(replace={'AllowHttpsInbound': offices}))
    _associate(network, host, nsg.id)       # Microsoft documents this as supported: Azure accepts it
    report = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host)
    assert report.returncode == 0 and report.json['compliant'] is True
    assert _kinds(report.json)['AllowHttpsInbound'] == 'narrowed'
    since = time.time()
    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes')
    assert 'No change' in applied.stderr and applied.json['changes'] == []
    assert _writes_since(emulator, since, host) == []
    assert _rules(network, host + '-offices')['AllowHttpsInbound'].source_address_prefixes == OFFICES


def test_a_user_deny_that_blocks_bastion_is_reported_and_outranked_only_when_asked(host, az, emulator, network):
    deny = arm_rule('no-web', 'Inbound', 110, 'Internet', '*', '443', access='Deny')
    nsg = _user_nsg(network, host + '-deny', _rule_set(extra=[deny]))
    named = ('-g', RG, '-n', host, '--nsg-name', host + '-deny')
    report = az('network', 'bastion', 'nsg', 'check', *named, check=False)
    assert report.returncode == NOT_COMPLIANT
    assert [(f['rule'], f['related']) for f in report.json['findings'] if f['kind'] == 'breaking'] == [
        ('AllowHttpsInbound', ['no-web'])]

    since = time.time()
    refused = az('network', 'bastion', 'nsg', 'apply', *named, '--yes', check=False)
    assert refused.returncode != 0 and 'Traceback' not in refused.stderr
    assert 'no-web' in refused.stderr and '--override-denies' in refused.stderr
    assert _writes_since(emulator, since, host) == [] and _subnet_nsg(network, host) is None

    applied = az('network', 'bastion', 'nsg', 'apply', *named, '--yes', '--override-denies').json
    moved = {m['rule']: m for m in applied['moved']}
    assert moved['AllowHttpsInbound']['priority'] == 109 and 'no-web' in moved['AllowHttpsInbound']['because']
    assert _subnet_nsg(network, host).lower() == nsg.id.lower()
    rules = _rules(network, host + '-deny')
    assert rules['no-web'].priority == 110 and rules['no-web'].access == 'Deny'     # theirs untouched
    assert rules['AllowHttpsInbound'].priority == 109
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


def test_no_existing_rule_is_written_wider(host, az, network):
    narrow_ssh = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '22')
    private_web = arm_rule('AllowHttpsInbound', 'Inbound', 120, '10.0.0.0/8', '*', '443', protocol='Tcp')
    before = _rule_set(replace={'AllowSshRdpOutbound': narrow_ssh, 'AllowHttpsInbound': private_web})
    nsg = _user_nsg(network, host + '-narrow', before)
    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--nsg-name', host + '-narrow',
                 '--yes').json
    assert [line.split(':')[0] for line in applied['changes'][:2]] == [
        'add AllowHttpsInbound-bastion', 'add AllowSshRdpOutbound-bastion']
    assert _subnet_nsg(network, host).lower() == nsg.id.lower()
    after = _rules(network, host + '-narrow')
    for rule in before:      # every rule that was there reads back exactly as it was
        props, read = rule['properties'], after[rule['name']]
        assert (read.priority, read.access, read.source_address_prefix, _ports(read)) == (
            props['priority'], props['access'], props.get('sourceAddressPrefix'),
            props.get('destinationPortRanges') or [props['destinationPortRange']]), rule['name']
    assert _ports(after['AllowSshRdpOutbound-bastion']) == ['22', '3389']
    assert after['AllowHttpsInbound-bastion'].source_address_prefix == 'Internet'


# --- what reaches the virtual network past the Deny, source ports, Kerberos and DNS, --override-denies -----------

def _vnet_space(network, host_name):
    return network.virtual_networks.get(RG, host_name + '-vnet').address_space.address_prefixes[0]


def test_an_allow_of_every_port_to_the_vnet_cidr_is_a_leak_check_exits_3_and_apply_keeps_it(host, az, network):
    cidr = _vnet_space(network, host)
    leak = arm_rule('their-vnet-any', 'Outbound', 200, '*', cidr, '*')
    nsg = _user_nsg(network, host + '-leaky', _rule_set(extra=[leak]))
    _associate(network, host, nsg.id)           # Azure accepts it: every rule Bastion needs is there
    check_leaky = ('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host)
    report = az(*check_leaky, check=False)
    assert report.returncode == NOT_COMPLIANT and report.json['compliant'] is False
    deny = next(f for f in report.json['findings'] if f['rule'] == 'DenyOtherVnetOutbound')
    assert deny['kind'] == 'wider' and deny['related'] == ['their-vnet-any'] and cidr in deny['detail']
    assert deny['fails'] is True
    assert az(*check_leaky, '--query', 'findings[?fails].rule', check=False).json == ['DenyOtherVnetOutbound']
    assert 'narrow or remove it' in report.stderr
    table = az(*check_leaky, '-o', 'table', check=False).stdout
    assert 'their-vnet-any' in table and 'wider' in table

    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes')
    assert applied.json['changes'] == [] and any('their-vnet-any' in u for u in applied.json['unresolved'])
    assert 'their-vnet-any' in applied.stderr
    kept = _rules(network, host + '-leaky')['their-vnet-any']
    assert (kept.priority, kept.destination_address_prefix, kept.destination_port_range) == (200, cidr, '*')


def test_an_allow_to_an_application_security_group_is_read_back_and_counted_as_a_leak(host, az, network):
    from azure.mgmt.network.models import ApplicationSecurityGroup
    asg = network.application_security_groups.begin_create_or_update(
        RG, host + '-web', ApplicationSecurityGroup(location='westeurope')).result()
    to_asg = arm_rule('their-web-servers', 'Outbound', 200, '*', '*', '*')
    del to_asg['properties']['destinationAddressPrefix']
    to_asg['properties']['destinationApplicationSecurityGroups'] = [{'id': asg.id}]
    _user_nsg(network, host + '-asg', _rule_set(extra=[to_asg]))
    read = _rules(network, host + '-asg')['their-web-servers']
    assert [g.id.lower() for g in read.destination_application_security_groups] == [asg.id.lower()]
    report = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--nsg-name', host + '-asg', check=False)
    assert report.returncode == NOT_COMPLIANT
    assert _kinds(report.json)['DenyOtherVnetOutbound'] == 'wider'


def test_ssh_rdp_outbound_narrowed_to_source_ports_1_2_is_reported_not_present(host, az, network, sshd_linux_vm):
    from tests.e2e.arrange import peer_networks
    peer_networks(network, host + '-vnet', 'demo-vnet')     # linux-vm's network
    narrowed = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', ['22', '3389'])
    narrowed['properties']['sourcePortRange'] = '1-2'
    nsg = _user_nsg(network, host + '-srcports', _rule_set(replace={'AllowSshRdpOutbound': narrowed}))
    _associate(network, host, nsg.id)
    assert _rules(network, host + '-srcports')['AllowSshRdpOutbound'].source_port_range == '1-2'
    report = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False)
    assert report.returncode == NOT_COMPLIANT
    ssh = next(f for f in report.json['findings'] if f['rule'] == 'AllowSshRdpOutbound')
    assert ssh['kind'] == 'missing' and 'source ports 1-2' in ssh['detail']
    # what the finding means: Bastion's connection to the VM on 22 is denied
    proxy = ('network', 'bastion', 'proxy', '-g', RG, '-n', host, '--target-resource-id', sshd_linux_vm.vm_id,
             '--resource-port', '22')
    refused = az(*proxy, input='', check=False, timeout=60)
    assert refused.returncode != 0 and refused.stdout == '' and 'Traceback' not in refused.stderr
    assert 'DenyOtherVnetOutbound' in refused.stderr, refused.stderr      # the data plane names the deciding rule

    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes').json
    assert applied['changes'][0].startswith('add AllowSshRdpOutbound-bastion: Outbound 101 Allow')
    rules = _rules(network, host + '-srcports')
    assert rules['AllowSshRdpOutbound'].source_port_range == '1-2'          # theirs as it was
    assert rules['AllowSshRdpOutbound-bastion'].source_port_range == '*'
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True
    allowed = az(*proxy, input='', check=False, timeout=60)
    assert allowed.stdout.startswith('SSH-2.0-OpenSSH'), allowed.stderr


def test_kerberos_and_the_networks_dns_server_are_allowed_ahead_of_the_deny(host, az, network):
    from azure.mgmt.network.models import DhcpOptions
    vnet = network.virtual_networks.get(RG, host + '-vnet')
    domain_controller = vnet.address_space.address_prefixes[0].replace('0.0/16', '0.4')
    vnet.dhcp_options = DhcpOptions(dns_servers=[domain_controller, '168.63.129.16'])
    network.virtual_networks.begin_create_or_update(RG, host + '-vnet', vnet).result()
    assert network.virtual_networks.get(RG, host + '-vnet').dhcp_options.dns_servers[0] == domain_controller

    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host)
    dns = _rules(network, host + '-nsg')['AllowDnsOutbound']
    assert (dns.destination_address_prefix, _ports(dns), dns.access) == (domain_controller, ['53'], 'Allow')
    assert 'AllowKerberosOutbound' not in _rules(network, host + '-nsg')

    az('network', 'bastion', 'update', '-g', RG, '-n', host, '--enable-kerberos', 'true', '-o', 'none')
    before = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False)
    assert before.returncode == NOT_COMPLIANT and _kinds(before.json)['AllowKerberosOutbound'] == 'missing'
    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes')
    rules = _rules(network, host + '-nsg')
    kerberos = rules['AllowKerberosOutbound']
    assert _ports(kerberos) == ['53', '88', '389', '464', '636'] and kerberos.protocol == '*'
    assert kerberos.destination_address_prefix == domain_controller
    assert kerberos.priority < rules['DenyOtherVnetOutbound'].priority
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True

    # a Deny of the user's before it: reported with what breaks and the fix, then outranked when asked
    from azure.mgmt.network.models import SecurityRule
    network.security_rules.begin_create_or_update(RG, host + '-nsg', 'no-kerberos', SecurityRule(
        arm_rule('no-kerberos', 'Outbound', 101, '*', 'VirtualNetwork', '88', access='Deny'))).result()
    blocked = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, check=False)
    assert blocked.returncode == NOT_COMPLIANT
    finding = next(f for f in blocked.json['findings'] if f['rule'] == 'AllowKerberosOutbound')
    assert finding['kind'] == 'breaking' and finding['related'] == ['no-kerberos']
    assert 'Kerberos sign-in to domain-joined VMs fails' in finding['detail']
    assert '--override-denies' in blocked.stderr
    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--yes', '--override-denies')
    rules = _rules(network, host + '-nsg')
    assert rules['AllowKerberosOutbound'].priority == 100 and rules['no-kerberos'].priority == 101
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host).json['compliant'] is True


def test_override_denies_with_a_deny_at_101_moves_ours_aside_and_names_only_the_blocked_port(host, az, network):
    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '9000')
    from azure.mgmt.network.models import SecurityRule
    network.security_rules.begin_create_or_update(RG, host + '-nsg', 'no-9000', SecurityRule(
        arm_rule('no-9000', 'Outbound', 101, '*', 'VirtualNetwork', '9000', access='Deny'))).result()
    report = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--ports', '9000', check=False)
    assert report.returncode == NOT_COMPLIANT
    custom = next(f for f in report.json['findings'] if f['rule'] == 'AllowCustomPortsOutbound')
    assert custom['kind'] == 'breaking' and 'Bastion stops working' not in custom['detail']
    assert 'port 9000 fail (SSH 22 and RDP 3389 are not affected)' in custom['detail']

    applied = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '9000', '--yes',
                 '--override-denies')
    assert applied.returncode == 0, applied.stderr
    rules = _rules(network, host + '-nsg')
    assert (rules['AllowCustomPortsOutbound'].priority, rules['AllowSshRdpOutbound'].priority) == (100, 102)
    assert rules['no-9000'].priority == 101 and rules['no-9000'].access == 'Deny'
    assert az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--ports', '9000').json['compliant']


def test_check_of_several_hosts_has_a_host_column(host, az, network):
    other = _new_host(network)
    subscription = az('account', 'show', '--query', 'id', '-o', 'tsv').stdout.strip()
    ids = [f'/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/bastionHosts/{name}'
           for name in (host, other)]
    table = az('network', 'bastion', 'nsg', 'check', '--ids', *ids, '-o', 'table', check=False).stdout
    lines = table.splitlines()
    assert lines[0].split()[0] == 'Host'
    assert {line.split()[0] for line in lines[2:]} == {host, other}


def test_refusals_are_clear_errors_and_change_nothing(host, az, emulator, network):
    missing = az('network', 'bastion', 'nsg', 'check', '-g', RG, '-n', host, '--nsg-name', 'no-such-nsg', check=False)
    assert missing.returncode != 0
    assert "Network security group 'no-such-nsg' was not found" in missing.stderr and '--nsg-name' in missing.stderr
    assert 'Traceback' not in missing.stderr and missing.stdout == ''

    az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '9000')
    other = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--nsg-name', 'another', '--yes',
               check=False)
    assert other.returncode != 0 and f"already uses NSG '{host}-nsg'" in other.stderr
    assert 'Drop --nsg-name' in other.stderr and 'Traceback' not in other.stderr

    from azure.mgmt.network.models import SecurityRule
    rules = _rules(network, host + '-nsg')
    network.security_rules.begin_create_or_update(RG, host + '-nsg', 'AllowSshRdpOutbound', SecurityRule(
        arm_rule('AllowSshRdpOutbound', 'Outbound', 102, '*', 'VirtualNetwork', ['22', '3389']))).result()
    network.security_rules.begin_create_or_update(RG, host + '-nsg', 'no-9000', SecurityRule(
        arm_rule('no-9000', 'Outbound', 100, '*', 'VirtualNetwork', '9000', access='Deny'))).result()
    since = time.time()
    first = az('network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', host, '--ports', '9000', '--yes',
               '--override-denies', check=False)
    assert first.returncode != 0 and 'Traceback' not in first.stderr
    assert 'Not changed' in first.stderr and 'your Deny no-9000 holds priority 100' in first.stderr
    assert _writes_since(emulator, since, host) == []
    assert _rules(network, host + '-nsg')['AllowCustomPortsOutbound'].priority == \
        rules['AllowCustomPortsOutbound'].priority
