"""NSG rule set for AzureBastionSubnet: port parsing, check findings, and the apply plan."""
import pytest

from azext_bastion_native.nsg.check import check
from azext_bastion_native.nsg.plan import apply_to_json, plan_apply
from azext_bastion_native.nsg.ports import PortListError, parse_ports
from azext_bastion_native.nsg.rule_set import Network, bastion_rule_set, rule_as_row, rule_to_arm, target_ports


def arm_rule(name, direction, priority, source, destination, ports, access='Allow', protocol='*'):
    props = {'priority': priority, 'direction': direction, 'access': access, 'protocol': protocol,
             'sourcePortRange': '*'}
    props.update({'sourceAddressPrefixes': source} if isinstance(source, list) else {'sourceAddressPrefix': source})
    props.update({'destinationAddressPrefix': destination})
    props.update({'destinationPortRanges': ports} if isinstance(ports, list) else {'destinationPortRange': ports})
    return {'name': name, 'properties': props}


def nsg_of(*rules, name='user-nsg'):
    return {'id': f'/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/{name}',
            'name': name, 'properties': {'securityRules': list(rules)}}


def compliant(ports=None, without=(), replace=None):
    """The rule set as ARM JSON, minus some rules, with some replaced."""
    rules = []
    for rule in bastion_rule_set(ports):
        if rule.name in without:
            continue
        rules.append((replace or {}).get(rule.name) or rule_to_arm(rule))
    return nsg_of(*rules)


def kinds(report):
    return {f.rule: f.kind for f in report.findings if f.rule}


def finding(report, rule):
    return next(f for f in report.findings if f.rule == rule)


# --- parse_ports / rule set -----------------------------------------------------------------------------

@pytest.mark.parametrize('values, expected', [
    (None, ['22', '3389']), ([], ['22', '3389']), (['3389', '22'], ['22', '3389']), (['22,2222'], ['22', '2222']),
    (['8000-8010', '22'], ['22', '8000-8010']), (['1', '65535'], ['1', '65535']), ([' 22 '], ['22'])])
def test_parse_ports(values, expected):
    assert parse_ports(values) == expected


@pytest.mark.parametrize('values, message', [
    (['ssh'], 'is not a port'), (['0'], 'outside 1-65535'), (['65536'], 'outside 1-65535'),
    (['3389-22'], 'reversed'), (['22', '22'], 'overlap'), (['20-30', '22'], 'overlap'), (['22,'], 'empty'),
    (['-5'], 'is not a port'), (['22-'], 'is not a port')])
def test_parse_ports_refuses(values, message):
    with pytest.raises(PortListError, match=message):
        parse_ports(values)


def test_rule_set_keeps_ssh_and_rdp_and_adds_the_ports():
    rules = {r.name: r for r in bastion_rule_set(['22', '8000-8010'])}
    assert rules['AllowSshRdpOutbound'].ports == ('22', '3389')       # Azure requires both, whatever --ports says
    assert rules['AllowCustomPortsOutbound'].ports == ('8000-8010',)
    assert rules['AllowCustomPortsOutbound'].destination == 'VirtualNetwork'
    assert rules['DenyOtherVnetOutbound'].access == 'Deny'
    assert rule_as_row(rules['AllowCustomPortsOutbound'])['ports'] == '8000-8010'
    assert target_ports(['22', '8000-8010']) == ['22', '3389', '8000-8010']
    assert 'AllowCustomPortsOutbound' not in {r.name for r in bastion_rule_set(['22'])}
    assert bastion_rule_set(['22']) == bastion_rule_set(['3389']) == bastion_rule_set()


def test_rule_to_arm_uses_single_or_plural_port_fields():
    rules = {r.name: r for r in bastion_rule_set()}
    assert rule_to_arm(rules['AllowHttpsInbound'])['properties']['destinationPortRange'] == '443'
    assert rule_to_arm(rules['AllowSshRdpOutbound'])['properties']['destinationPortRanges'] == ['22', '3389']


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


# --- plan_apply ----------------------------------------------------------------------------------------

def test_plan_for_a_bare_subnet_creates_the_whole_set_allows_first_deny_last():
    plan = plan_apply(None, nsg_name='bastion-nsg')
    assert plan.create_nsg and not plan.empty
    assert [w.rule.name for w in plan.writes] == [r.name for r in bastion_rule_set()]
    assert plan.writes[-1].rule.access == 'Deny'
    assert all(w.action == 'add' for w in plan.writes) and not plan.moved
    assert check(apply_to_json(None, plan)).ok


def test_a_compliant_nsg_gives_an_empty_plan():
    plan = plan_apply(compliant())
    assert plan.empty and plan.writes == [] and plan.moved == []


def test_plan_is_idempotent_after_merging():
    user = nsg_of(arm_rule('their-app', 'Inbound', 120, '10.1.0.0/16', '*', '8443'),
                  arm_rule('their-out', 'Outbound', 100, '*', 'Storage', '443'))
    merged = apply_to_json(user, plan_apply(user))
    assert check(merged).ok
    assert plan_apply(merged).empty


def test_clashing_priorities_move_ours_and_never_touch_theirs():
    theirs = [arm_rule('their-app', 'Inbound', 120, '10.1.0.0/16', '*', '8443'),
              arm_rule('their-out', 'Outbound', 100, '*', 'Storage', '443'),
              arm_rule('their-dns', 'Inbound', 4000, '*', '*', '53')]   # same number as our Deny, other direction
    plan = plan_apply(nsg_of(*theirs))
    written = {w.rule.name: w.rule.priority for w in plan.writes}
    assert written['AllowHttpsInbound'] == 119
    assert written['AllowSshRdpOutbound'] == 101     # 99 is outside the 100-4096 NSG range
    assert written['DenyOtherVnetOutbound'] == 4000
    assert {m['rule'] for m in plan.moved} == {'AllowHttpsInbound', 'AllowSshRdpOutbound'}
    assert 'their-app' in next(m['because'] for m in plan.moved if m['rule'] == 'AllowHttpsInbound')
    assert not {'their-app', 'their-out', 'their-dns'} & set(written)
    merged = apply_to_json(nsg_of(*theirs), plan)
    for rule in theirs:
        assert rule in merged['properties']['securityRules']
    priorities = [(r['properties']['direction'], r['properties']['priority'])
                  for r in merged['properties']['securityRules']]
    assert len(priorities) == len(set(priorities))


def test_moved_priority_stays_inside_the_allowed_range():
    theirs = [arm_rule(f'r{p}', 'Outbound', p, '*', 'Storage', str(p)) for p in range(100, 112)]
    plan = plan_apply(nsg_of(*theirs))
    written = {w.rule.name: w.rule.priority for w in plan.writes}
    assert min(written.values()) >= 100
    assert written['AllowSshRdpOutbound'] == 112


def test_breaking_deny_is_outranked_only_when_asked():
    deny = arm_rule('no-web', 'Inbound', 115, 'Internet', '*', '443', access='Deny')
    nsg = nsg_of(*compliant()['properties']['securityRules'], deny)
    refused = plan_apply(nsg)
    detail = finding(check(nsg), 'AllowHttpsInbound').detail
    assert refused.writes == [] and refused.blocked == [f'AllowHttpsInbound: {detail}']
    plan = plan_apply(nsg, override_denies=True)
    assert [(w.action, w.rule.name, w.rule.priority) for w in plan.writes] == [('update', 'AllowHttpsInbound', 114)]
    assert plan.writes[0].previous['priority'] == 120
    assert plan.moved[0]['because'] == 'it must come before your Deny no-web (115) to take effect (--override-denies)'
    merged = apply_to_json(nsg, plan)
    assert deny in merged['properties']['securityRules']
    assert check(merged).ok and plan_apply(merged).empty


def test_a_deny_at_the_lowest_priority_cannot_be_outranked():
    deny = arm_rule('no-web', 'Inbound', 100, 'Internet', '*', '443', access='Deny')
    plan = plan_apply(nsg_of(*compliant()['properties']['securityRules'], deny), override_denies=True)
    assert plan.writes == []
    assert plan.unresolved and 'AllowHttpsInbound' in plan.unresolved[0]
    assert plan.blocked and 'no-web' in plan.blocked[0]


def test_our_wide_rule_is_narrowed_theirs_is_reported_only():
    ours = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '*')
    plan = plan_apply(compliant(replace={'AllowSshRdpOutbound': ours}))
    assert [(w.action, w.rule.name, w.rule.ports) for w in plan.writes] == \
        [('update', 'AllowSshRdpOutbound', ('22', '3389'))]
    assert plan.writes[0].previous['ports'] == '*'
    assert plan.writes[0].previous['destination'] == 'VirtualNetwork'
    assert plan.unresolved == []

    theirs = arm_rule('their-any-vnet', 'Outbound', 300, '*', 'VirtualNetwork', '*')
    plan = plan_apply(nsg_of(*compliant()['properties']['securityRules'], theirs))
    assert plan.writes == []
    assert plan.unresolved and 'their-any-vnet' in plan.unresolved[0]


def test_the_deny_goes_after_the_users_own_allow_for_the_target_ports():
    rules = compliant(without=('AllowSshRdpOutbound', 'DenyOtherVnetOutbound'))['properties']['securityRules']
    rules.append(arm_rule('their-ssh-rdp', 'Outbound', 4050, '*', 'VirtualNetwork', ['22', '3389']))
    plan = plan_apply(nsg_of(*rules))
    assert [(w.rule.name, w.rule.priority) for w in plan.writes] == [('DenyOtherVnetOutbound', 4051)]
    assert check(apply_to_json(nsg_of(*rules), plan)).ok


def test_ports_add_a_rule_and_never_take_ssh_or_rdp_away():
    assert plan_apply(compliant(), ports=['22']).empty          # 22 alone: 3389 stays, nothing to write
    plan = plan_apply(compliant(), ports=['22', '3389', '2222'])
    assert [(w.action, w.rule.name, w.rule.ports, w.rule.priority) for w in plan.writes] == \
        [('add', 'AllowCustomPortsOutbound', ('2222',), 105)]
    assert plan.blocked == []
    # a later --ports rewrites that one rule to exactly the ports asked for
    plan = plan_apply(compliant(ports=['2222']), ports=['8443'])
    assert [(w.action, w.rule.name, w.rule.ports) for w in plan.writes] == \
        [('update', 'AllowCustomPortsOutbound', ('8443',))]
    assert plan.writes[0].previous['ports'] == '2222'


# --- narrowed rules are kept, no rule is written wider (issue: user NSG rules widened) -------------------------

OFFICES = ['131.107.0.0/16', '20.190.128.5']


def _office_https(name='AllowHttpsInbound', priority=120):
    return arm_rule(name, 'Inbound', priority, OFFICES, '*', '443', protocol='Tcp')


def test_https_from_a_list_of_office_addresses_is_narrowed_and_compliant():
    nsg = compliant(replace={'AllowHttpsInbound': _office_https()})
    report = check(nsg)
    assert kinds(report)['AllowHttpsInbound'] == 'narrowed' and report.ok
    assert '131.107.0.0/16' in finding(report, 'AllowHttpsInbound').detail
    assert plan_apply(nsg).empty


def test_a_private_source_does_not_reach_bastion_from_the_internet():
    private = arm_rule('AllowHttpsInbound', 'Inbound', 120, '10.0.0.0/8', '*', '443', protocol='Tcp')
    nsg = compliant(replace={'AllowHttpsInbound': private})
    assert kinds(check(nsg))['AllowHttpsInbound'] == 'missing'
    plan = plan_apply(nsg)
    # theirs is not rewritten to Internet; ours goes in beside it
    assert [(w.action, w.rule.name, w.rule.source) for w in plan.writes] == \
        [('add', 'AllowHttpsInbound-bastion', 'Internet')]
    merged = apply_to_json(nsg, plan)
    assert private in merged['properties']['securityRules'] and check(merged).ok


def test_a_same_named_rule_that_allows_too_little_is_kept_and_ours_added_beside_it():
    ssh_only = arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', '22')
    nsg = compliant(replace={'AllowSshRdpOutbound': ssh_only})
    plan = plan_apply(nsg)
    assert [(w.action, w.rule.name, w.rule.ports, w.rule.priority) for w in plan.writes] == \
        [('add', 'AllowSshRdpOutbound-bastion', ('22', '3389'), 101)]
    assert 'kept as it is' in plan.writes[0].reason
    assert ssh_only in apply_to_json(nsg, plan)['properties']['securityRules']


def test_a_deny_before_a_narrowed_allow_is_breaking():
    nsg = compliant(replace={'AllowHttpsInbound': _office_https(priority=300)})
    nsg['properties']['securityRules'].append(arm_rule('no-web', 'Inbound', 200, 'Internet', '*', '443',
                                                       access='Deny'))
    assert kinds(check(nsg))['AllowHttpsInbound'] == 'breaking'
    assert plan_apply(nsg).blocked


def test_rules_naming_the_bastion_subnet_count_for_it():
    subnet = '10.9.1.0/26'
    to_subnet = arm_rule('AllowGatewayManagerInbound', 'Inbound', 130, 'GatewayManager', subnet, '443')
    nsg = compliant(replace={'AllowGatewayManagerInbound': to_subnet})
    assert kinds(check(nsg, network=Network(bastion_prefixes=(subnet,))))['AllowGatewayManagerInbound'] == 'present'
    assert kinds(check(nsg))['AllowGatewayManagerInbound'] == 'missing'      # subnet unknown: not assumed


@pytest.mark.parametrize('nsg', [
    compliant(replace={'AllowHttpsInbound': _office_https()}),
    compliant(replace={'AllowSshRdpOutbound': arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*',
                                                       'VirtualNetwork', '22')}),
    compliant(replace={'AllowAzureCloudOutbound': arm_rule('AllowAzureCloudOutbound', 'Outbound', 110, '*',
                                                           '52.0.0.0/8', '443')}),
    compliant(replace={'AllowGatewayManagerInbound': arm_rule('AllowGatewayManagerInbound', 'Inbound', 130,
                                                              'GatewayManager', '*', '443', protocol='Udp')}),
    compliant(replace={'AllowSshRdpOutbound': arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*', '*', '*')}),
    nsg_of(arm_rule('AllowHttpOutbound', 'Outbound', 130, '*', 'Internet', '8080')),
])
@pytest.mark.parametrize('override', [False, True])
def test_no_existing_rule_is_ever_written_wider(nsg, override):
    from azext_bastion_native.nsg.check import user_rules
    from azext_bastion_native.nsg.plan import _within    # pylint: disable=protected-access
    before = {r.name.lower(): r for r in user_rules(nsg)}
    plan = plan_apply(nsg, override_denies=override)
    for write in plan.writes:
        if write.action == 'update':
            assert _within(write.rule, before[write.rule.name.lower()]), write
    if not plan.blocked:
        assert check(apply_to_json(nsg, plan)).ok


def test_azure_accepts_only_looks_at_the_rules_azure_requires():
    assert not check(compliant(without=('DenyOtherVnetOutbound',))).ok
    assert check(compliant(without=('DenyOtherVnetOutbound',))).azure_accepts
    assert not check(compliant(without=('AllowAzureCloudOutbound',))).azure_accepts
    assert not check(None).azure_accepts
