"""nsg/check.py: each rule of the set present, missing, wider or broken by a Deny; what reaches the virtual network
past the Deny, source ports, application security groups, and the traffic a Kerberos host and the virtual network's
own DNS servers need."""
import pytest

from azext_bastion_native.nsg.check import check
from azext_bastion_native.nsg.plan import apply_to_json, plan_apply
from azext_bastion_native.nsg.rule_set import Network, bastion_rule_set, rule_to_arm
from tests.unit.nsg.nsg_json import arm_rule, compliant, finding, kinds, nsg_of

VNET = Network(bastion_prefixes=('10.20.1.0/26',), vnet_prefixes=('10.20.0.0/16',))
ASG_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web-servers'


def with_rules(*extra, ports=None, network=VNET):
    """The rule set for the ports and network as ARM JSON, plus extra rules."""
    return nsg_of(*[rule_to_arm(r) for r in bastion_rule_set(ports, network)], *extra)


def to_asg(name, priority, ports='*', side='destination'):
    rule = arm_rule(name, 'Outbound', priority, '*', '*', ports)
    props = rule['properties']
    props.pop(f'{side}AddressPrefix', None)
    props[f'{side}ApplicationSecurityGroups'] = [{'id': ASG_ID}]
    return rule


def to_addresses(name, priority, addresses, ports='*'):
    rule = arm_rule(name, 'Outbound', priority, '*', '*', ports)
    del rule['properties']['destinationAddressPrefix']
    rule['properties']['destinationAddressPrefixes'] = addresses
    return rule


# --- check ---------------------------------------------------------------------------------------------

def test_no_nsg_is_itself_a_finding_and_every_rule_is_missing():
    report = check(None)
    assert not report.ok
    assert report.findings[0].kind == 'no-nsg'
    assert set(kinds(report).values()) == {'missing'}
    assert len(kinds(report)) == len(bastion_rule_set())


def test_the_rule_set_itself_is_compliant():
    report = check(compliant())
    assert report.ok
    assert set(kinds(report).values()) == {'present'}
    assert report.as_dict()['compliant'] is True


def test_compliance_is_by_effect_not_by_name():
    nsg = nsg_of(
        arm_rule('web', 'Inbound', 200, 'Internet', '*', '443', protocol='Tcp'),
        arm_rule('gw', 'Inbound', 210, 'GatewayManager', '*', '443'),
        arm_rule('lb', 'Inbound', 220, 'AzureLoadBalancer', '*', '443'),
        arm_rule('peers-in', 'Inbound', 230, 'VirtualNetwork', 'VirtualNetwork', ['5701', '8080']),
        arm_rule('to-vms', 'Outbound', 300, '*', 'VirtualNetwork', ['22', '3389', '5701', '8080']),
        arm_rule('cloud', 'Outbound', 310, '*', 'AzureCloud', '443'),
        arm_rule('http', 'Outbound', 320, '*', 'Internet', '80'),
        arm_rule('deny-vnet', 'Outbound', 3000, '*', 'VirtualNetwork', '*', access='Deny'))
    report = check(nsg)
    assert report.ok, report.findings
    assert set(kinds(report).values()) == {'present'}
    assert finding(report, 'AllowBastionCommunication').related == ('to-vms',)
    assert plan_apply(nsg).empty


@pytest.mark.parametrize('rule_name', [r.name for r in bastion_rule_set()])
def test_each_missing_rule_is_reported(rule_name):
    report = check(compliant(without=(rule_name,)))
    assert not report.ok
    assert {name for name, kind in kinds(report).items() if kind != 'present'} == {rule_name}
    assert kinds(report)[rule_name] == 'missing'


def test_partly_allowed_target_ports_are_missing_with_the_ports_named():
    narrow = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '22')
    report = check(compliant(replace={'AllowSshRdpOutbound': narrow}))
    assert kinds(report)['AllowSshRdpOutbound'] == 'missing'
    assert '3389' in finding(report, 'AllowSshRdpOutbound').detail


def test_custom_ports_need_their_own_allow():
    report = check(compliant(), ports=['22', '8000-8010'])
    assert kinds(report)['AllowCustomPortsOutbound'] == 'missing'
    assert kinds(report)['AllowSshRdpOutbound'] == 'present'
    assert '8000-8010' in finding(report, 'AllowCustomPortsOutbound').detail
    assert 'Azure refuses' not in finding(report, 'AllowCustomPortsOutbound').detail   # ours, not Azure's
    assert 'Azure refuses' in finding(check(compliant(without=('AllowHttpOutbound',))), 'AllowHttpOutbound').detail


def test_tcp_only_or_udp_only_rules():
    tcp = arm_rule('gw', 'Inbound', 130, 'GatewayManager', '*', '443', protocol='Tcp')
    udp = arm_rule('gw', 'Inbound', 130, 'GatewayManager', '*', '443', protocol='Udp')
    assert kinds(check(compliant(replace={'AllowGatewayManagerInbound': tcp})))['AllowGatewayManagerInbound'] == \
        'present'
    assert kinds(check(compliant(replace={'AllowGatewayManagerInbound': udp})))['AllowGatewayManagerInbound'] == \
        'missing'


def test_any_ports_outbound_to_the_vnet_is_wider_than_needed():
    wide = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '*')
    report = check(compliant(replace={'AllowSshRdpOutbound': wide}))
    assert kinds(report)['AllowSshRdpOutbound'] == 'wider'
    assert kinds(report)['DenyOtherVnetOutbound'] == 'wider'
    assert not report.ok      # every port to the virtual network ahead of the Deny: a leak, the check fails
    assert [f.rule for f in report.failing] == ['DenyOtherVnetOutbound']
    assert 'also allows ports' in finding(report, 'AllowSshRdpOutbound').detail


def test_other_ports_to_the_vnet_before_the_deny_are_wider():
    report = check(nsg_of(*compliant()['properties']['securityRules'],
                          arm_rule('their-rdp-gateway', 'Outbound', 500, '*', 'VirtualNetwork', '4433')))
    assert kinds(report)['DenyOtherVnetOutbound'] == 'wider'
    assert finding(report, 'DenyOtherVnetOutbound').related == ('their-rdp-gateway',)
    assert '4433' in finding(report, 'DenyOtherVnetOutbound').detail


def test_any_source_where_a_service_tag_belongs_is_wider():
    wide = arm_rule('AllowGatewayManagerInbound', 'Inbound', 130, '*', '*', '443')
    report = check(compliant(replace={'AllowGatewayManagerInbound': wide}))
    assert kinds(report)['AllowGatewayManagerInbound'] == 'wider'
    detail = finding(report, 'AllowGatewayManagerInbound').detail
    assert 'source * where the service tag GatewayManager belongs' in detail


def test_any_destination_where_a_service_tag_belongs_is_wider():
    wide = arm_rule('AllowAzureCloudOutbound', 'Outbound', 110, '*', '*', '443')
    report = check(compliant(replace={'AllowAzureCloudOutbound': wide}))
    assert kinds(report)['AllowAzureCloudOutbound'] == 'wider'


@pytest.mark.parametrize('deny, broken', [
    (arm_rule('no-web', 'Inbound', 110, 'Internet', '*', '443', access='Deny'), 'AllowHttpsInbound'),
    (arm_rule('no-gw', 'Inbound', 100, ['GatewayManager'], '*', '*', access='Deny'), 'AllowGatewayManagerInbound'),
    (arm_rule('no-peers', 'Outbound', 101, '*', '*', '5701', access='Deny'), 'AllowBastionCommunication'),
    (arm_rule('no-8080', 'Inbound', 101, '*', '*', '8080', access='Deny'), 'AllowBastionHostCommunication'),
])
def test_a_deny_with_higher_precedence_is_breaking(deny, broken):
    report = check(nsg_of(*compliant()['properties']['securityRules'], deny))
    assert kinds(report)[broken] == 'breaking'
    assert not report.ok
    assert finding(report, broken).related == (deny['name'],)


def test_a_deny_hiding_our_target_port_rule_is_breaking_and_stays_unless_asked():
    late_allow = arm_rule('AllowSshRdpOutbound', 'Outbound', 300, '*', 'VirtualNetwork', ['22', '3389'])
    deny = arm_rule('no-ssh', 'Outbound', 105, '*', 'VirtualNetwork', '22', access='Deny')
    nsg = compliant(replace={'AllowSshRdpOutbound': late_allow})
    nsg['properties']['securityRules'].append(deny)
    report = check(nsg)
    assert kinds(report)['AllowSshRdpOutbound'] == 'breaking'
    assert finding(report, 'AllowSshRdpOutbound').related == ('no-ssh',)
    plan = plan_apply(nsg)
    assert plan.writes == [] and len(plan.blocked) == 1 and 'no-ssh' in plan.blocked[0]
    plan = plan_apply(nsg, override_denies=True)
    assert [(w.action, w.rule.name, w.rule.priority) for w in plan.writes] == [('update', 'AllowSshRdpOutbound', 100)]
    assert plan.blocked == [] and check(apply_to_json(nsg, plan)).ok


def test_a_deny_where_nothing_allows_is_missing_not_breaking():
    deny = arm_rule('no-ssh', 'Outbound', 150, '*', 'VirtualNetwork', '22', access='Deny')
    nsg = compliant(without=('AllowSshRdpOutbound',))
    nsg['properties']['securityRules'].append(deny)
    assert kinds(check(nsg))['AllowSshRdpOutbound'] == 'missing'
    plan = plan_apply(nsg)
    assert [(w.rule.name, w.rule.priority) for w in plan.writes] == [('AllowSshRdpOutbound', 100)]


def test_a_deny_with_lower_precedence_is_harmless():
    late = arm_rule('no-web-late', 'Inbound', 4000, 'Internet', '*', '443', access='Deny')
    assert check(nsg_of(*compliant()['properties']['securityRules'], late)).ok


def test_no_deny_means_the_default_vnet_rule_lets_every_port_through():
    report = check(compliant(without=('DenyOtherVnetOutbound',)))
    assert kinds(report)['DenyOtherVnetOutbound'] == 'missing'
    assert 'AllowVnetOutBound' in finding(report, 'DenyOtherVnetOutbound').detail


def test_a_deny_by_address_prefix_is_a_warning():
    cidr = arm_rule('no-10', 'Outbound', 200, '*', '10.0.0.0/8', '*', access='Deny')
    report = check(nsg_of(*compliant()['properties']['securityRules'], cidr))
    assert report.ok
    assert any(f.kind == 'warning' and f.related == ('no-10',) for f in report.findings)


def test_a_vm_port_outside_the_list_that_is_blocked_is_a_warning():
    report = check(compliant(), vm_ports=(22, 2222))
    assert report.ok
    warnings = [f for f in report.findings if f.kind == 'warning']
    assert [w.detail.split(' used')[0] for w in warnings] == ['VM port 2222']
    assert check(compliant(ports=['2222']), ports=['2222'], vm_ports=(22, 2222)).findings == \
        check(compliant(ports=['2222']), ports=['2222']).findings
    assert not [f for f in check(compliant()).findings if f.kind == 'warning']


# --- leaks: what reaches the virtual network ahead of the Deny --------------------------------------------------

@pytest.mark.parametrize('leak', [
    arm_rule('their-vnet-cidr', 'Outbound', 200, '*', '10.20.0.0/16', '*'),      # the VNet's own address space
    arm_rule('their-subnet', 'Outbound', 200, '*', '10.20.5.0/24', '1000-2000'),  # a prefix inside it
    arm_rule('their-private', 'Outbound', 200, '*', '172.16.0.0/12', '*'),        # private: peered or on-premises
    to_addresses('their-vms', 200, ['10.20.0.4', '52.1.1.1']),                      # one address inside is enough
    to_asg('their-asg', 200),                                                      # an application security group
])
def test_an_allow_into_the_virtual_network_on_more_ports_ahead_of_the_deny_is_a_failing_leak(leak):
    report = check(with_rules(leak), network=VNET)
    deny = finding(report, 'DenyOtherVnetOutbound')
    assert deny.kind == 'wider' and deny.leak and deny.related == (leak['name'],)
    assert leak['name'] in deny.detail and 'in the virtual network ahead of the Deny' in deny.detail
    assert not report.ok and report.failing == [deny]
    plan = plan_apply(with_rules(leak), network=VNET)      # apply never removes it: reported, nothing written
    assert plan.writes == [] and plan.blocked == [] and any(leak['name'] in item for item in plan.unresolved)


@pytest.mark.parametrize('harmless', [
    arm_rule('their-ssh', 'Outbound', 200, '*', '10.20.0.0/16', ['22', '3389']),   # only the ports asked for
    arm_rule('after-the-deny', 'Outbound', 4010, '*', '10.20.0.0/16', '*'),       # our Deny comes first
    arm_rule('public-api', 'Outbound', 200, '*', '52.0.0.0/8', '*'),             # not the virtual network
    arm_rule('their-udp', 'Outbound', 200, '*', '10.20.0.0/16', '*', protocol='Icmp'),
    arm_rule('from-elsewhere', 'Outbound', 200, '10.99.0.0/16', '10.20.0.0/16', '*'),   # not from Bastion
])
def test_what_does_not_reach_the_virtual_network_past_the_deny_is_no_leak(harmless):
    report = check(with_rules(harmless), network=VNET)
    assert kinds(report)['DenyOtherVnetOutbound'] == 'present' and report.ok, report.findings


def test_a_deny_of_the_same_prefix_ahead_of_the_allow_stops_the_leak():
    deny = arm_rule('their-deny', 'Outbound', 150, '*', '10.0.0.0/8', '*', access='Deny')
    allow = arm_rule('their-vnet-cidr', 'Outbound', 200, '*', '10.20.0.0/16', '*')
    assert kinds(check(with_rules(deny, allow), network=VNET))['DenyOtherVnetOutbound'] == 'present'


def test_every_port_to_virtualnetwork_ahead_of_the_deny_fails_the_check_too():
    report = check(with_rules(arm_rule('their-any-vnet', 'Outbound', 300, '*', 'VirtualNetwork', '*')))
    deny = finding(report, 'DenyOtherVnetOutbound')
    assert deny.kind == 'wider' and deny.leak and not report.ok
    assert report.as_dict()['compliant'] is False
    assert [f['rule'] for f in report.as_dict()['findings'] if f['fails']] == ['DenyOtherVnetOutbound']


# --- source ports and application security groups ----------------------------------------------------------------

def test_an_allow_for_only_some_source_ports_does_not_count_and_says_why():
    narrowed = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', ['22', '3389'])
    narrowed['properties']['sourcePortRange'] = '1-2'
    nsg = compliant(replace={'AllowSshRdpOutbound': narrowed})
    report = check(nsg)
    ssh = finding(report, 'AllowSshRdpOutbound')
    assert ssh.kind == 'missing' and not report.ok
    assert 'AllowSshRdpOutbound allows it only from source ports 1-2' in ssh.detail
    plan = plan_apply(nsg)          # theirs is not widened to every source port: ours goes in beside it
    assert [(w.action, w.rule.name) for w in plan.writes] == [('add', 'AllowSshRdpOutbound-bastion')]
    assert narrowed in apply_to_json(nsg, plan)['properties']['securityRules']
    assert check(apply_to_json(nsg, plan)).ok


def test_source_port_ranges_as_a_list_that_covers_every_port_count():
    split = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', ['22', '3389'])
    del split['properties']['sourcePortRange']
    split['properties']['sourcePortRanges'] = ['0-1023', '1024-65535']
    assert kinds(check(compliant(replace={'AllowSshRdpOutbound': split})))['AllowSshRdpOutbound'] == 'present'


def test_a_deny_of_some_source_ports_is_a_warning():
    deny = arm_rule('odd-deny', 'Outbound', 115, '*', 'VirtualNetwork', '*', access='Deny')
    deny['properties']['sourcePortRange'] = '40000-50000'
    report = check(with_rules(deny))
    assert any(f.kind == 'warning' and f.related == ('odd-deny',) and '40000-50000' in f.detail
               for f in report.findings)


def test_an_allow_to_an_application_security_group_does_not_allow_a_required_flow():
    asg_ssh = to_asg('AllowSshRdpOutbound', 100, ['22', '3389'])
    assert kinds(check(compliant(replace={'AllowSshRdpOutbound': asg_ssh})))['AllowSshRdpOutbound'] == 'missing'


# --- Kerberos and the virtual network's DNS servers --------------------------------------------------------------

KERBEROS = Network(bastion_prefixes=('10.20.1.0/26',), vnet_prefixes=('10.20.0.0/16',), kerberos=True)
DC = Network(bastion_prefixes=('10.20.1.0/26',), vnet_prefixes=('10.20.0.0/16',),
             dns_servers=('10.20.0.4', '168.63.129.16'), kerberos=True)


def test_a_kerberos_host_needs_dns_kerberos_ldap_kpasswd_and_ldaps_ahead_of_the_deny():
    rules = {r.name: r for r in bastion_rule_set(network=KERBEROS)}
    kerberos = rules['AllowKerberosOutbound']
    assert kerberos.ports == ('53', '88', '389', '464', '636') and kerberos.destination == 'VirtualNetwork'
    assert kerberos.priority < rules['DenyOtherVnetOutbound'].priority and kerberos.probed == ('tcp', 'udp')
    assert 'AllowKerberosOutbound' not in {r.name for r in bastion_rule_set()}
    report = check(compliant(), network=KERBEROS)         # the rule set without Kerberos: the Deny blocks it
    assert kinds(report)['AllowKerberosOutbound'] == 'missing' and not report.ok
    plan = plan_apply(compliant(), network=KERBEROS)
    assert [(w.rule.name, w.rule.priority) for w in plan.writes] == [('AllowKerberosOutbound', 106)]
    assert check(apply_to_json(compliant(), plan), network=KERBEROS).ok


def test_with_the_domain_controller_as_the_networks_dns_server_kerberos_goes_to_it():
    rules = {r.name: r for r in bastion_rule_set(network=DC)}
    assert rules['AllowKerberosOutbound'].destination == '10.20.0.4'       # 168.63.129.16 is not in the VNet
    assert rule_to_arm(rules['AllowKerberosOutbound'])['properties']['destinationAddressPrefix'] == '10.20.0.4'
    assert 'AllowDnsOutbound' not in rules       # 53 is in the Kerberos rule


def test_dns_servers_inside_the_network_get_53_without_kerberos():
    dns = Network(vnet_prefixes=('10.20.0.0/16',), dns_servers=('10.20.0.4', '10.20.0.5', '8.8.8.8'))
    rules = {r.name: r for r in bastion_rule_set(network=dns)}
    assert rules['AllowDnsOutbound'].destinations == ('10.20.0.4', '10.20.0.5')
    assert rules['AllowDnsOutbound'].ports == ('53',)
    assert 'AllowDnsOutbound' not in {r.name for r in bastion_rule_set(network=Network(
        vnet_prefixes=('10.20.0.0/16',), dns_servers=('8.8.8.8',)))}
    # without it the Deny blocks them; an allow of 53 to all of VirtualNetwork covers both servers
    assert kinds(check(compliant(), network=dns))['AllowDnsOutbound'] == 'missing'
    theirs = arm_rule('their-dns', 'Outbound', 107, '*', 'VirtualNetwork', '53')
    report = check(nsg_of(*compliant()['properties']['securityRules'], theirs), network=dns)
    assert finding(report, 'AllowDnsOutbound').related == ('their-dns',) and report.ok


@pytest.mark.parametrize('deny, over', [
    (arm_rule('no-kdc', 'Outbound', 101, '*', 'VirtualNetwork', '88', access='Deny'), ''),
    (arm_rule('no-kdc-udp', 'Outbound', 101, '*', '10.20.0.0/24', '88', access='Deny', protocol='Udp'), ' over UDP'),
])
def test_a_deny_that_blocks_kerberos_is_breaking_and_names_what_breaks(deny, over):
    report = check(with_rules(deny, network=DC), network=DC)
    kerberos = finding(report, 'AllowKerberosOutbound')
    assert kerberos.kind == 'breaking' and kerberos.related == (deny['name'],)
    assert f'outbound 88{over} from * to 10.20.0.4 is denied by {deny["name"]}' in kerberos.detail
    assert kerberos.detail.endswith('Kerberos sign-in to domain-joined VMs fails')
    assert not report.ok


def test_a_tcp_only_allow_leaves_kerberos_over_udp_missing():
    rules = [r for r in with_rules(network=KERBEROS)['properties']['securityRules']
             if r['name'] != 'AllowKerberosOutbound']
    tcp = arm_rule('their-kerberos', 'Outbound', 106, '*', 'VirtualNetwork',
                   ['53', '88', '389', '464', '636'], protocol='Tcp')
    missing = finding(check(nsg_of(*rules, tcp), network=KERBEROS), 'AllowKerberosOutbound')
    assert missing.kind == 'missing' and ' over UDP ' in missing.detail


def test_a_blocked_custom_port_names_only_that_port():
    deny = arm_rule('no-9000', 'Outbound', 101, '*', 'VirtualNetwork', '9000', access='Deny')
    report = check(with_rules(deny, ports=['9000']), ports=['9000'])
    custom = finding(report, 'AllowCustomPortsOutbound')
    assert custom.kind == 'breaking'
    assert custom.detail.endswith('connections through Bastion to port 9000 fail (SSH 22 and RDP 3389 are not '
                                  'affected)')
    assert 'Bastion stops working' not in custom.detail
    assert 'Bastion stops working' in finding(check(with_rules(arm_rule(
        'no-web', 'Inbound', 110, 'Internet', '*', '443', access='Deny'))), 'AllowHttpsInbound').detail
