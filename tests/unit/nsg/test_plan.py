"""nsg/plan.py: the writes that make an NSG compliant, with their priorities; --override-denies finds room before a
Deny; writes go in an order ARM accepts one by one; the user's rules are never written wider."""
import pytest

from azext_bastion_native.nsg.check import check
from azext_bastion_native.nsg.plan import MIN_PRIORITY, apply_to_json, plan_apply
from azext_bastion_native.nsg.rule_set import Network, bastion_rule_set
from tests.unit.nsg.nsg_json import arm_rule, compliant, finding, kinds, nsg_of


def _priorities_unique_after_each_write(nsg, plan):
    """Apply the writes one at a time, as `nsg apply` PUTs them: no two rules of one direction share a priority."""
    from azext_bastion_native.nsg.plan import Plan
    for count in range(1, len(plan.writes) + 1):
        partial = Plan(plan.nsg, plan.create_nsg, plan.writes[:count], [], [], plan.report)
        seen = [(r['properties']['direction'], r['properties']['priority'])
                for r in apply_to_json(nsg, partial)['properties']['securityRules']]
        assert len(seen) == len(set(seen)), (count, seen)


def test_override_denies_before_a_deny_at_101_moves_our_own_rule_aside():
    deny = arm_rule('no-9000', 'Outbound', 101, '*', 'VirtualNetwork', '9000', access='Deny')
    nsg = nsg_of(*compliant(ports=['9000'])['properties']['securityRules'], deny)
    assert plan_apply(nsg, ports=['9000']).blocked          # not asked: refused as before
    plan = plan_apply(nsg, ports=['9000'], override_denies=True)
    assert plan.blocked == [] and plan.unresolved == []
    assert [(w.action, w.rule.name, w.rule.priority) for w in plan.writes] == [
        ('update', 'AllowSshRdpOutbound', 102), ('update', 'AllowCustomPortsOutbound', 100)]
    moved = {m['rule']: m for m in plan.moved}
    assert 'AllowCustomPortsOutbound' in moved['AllowSshRdpOutbound']['because']
    assert 'no-9000' in moved['AllowCustomPortsOutbound']['because']
    merged = apply_to_json(nsg, plan)
    assert deny in merged['properties']['securityRules']
    assert check(merged, ports=['9000']).ok and plan_apply(merged, ports=['9000']).empty
    _priorities_unique_after_each_write(nsg, plan)


def test_a_users_rule_in_the_way_is_never_moved():
    deny = arm_rule('no-9000', 'Outbound', 101, '*', 'VirtualNetwork', '9000', access='Deny')
    rules = [r for r in compliant(ports=['9000'])['properties']['securityRules'] if r['name'] != 'AllowSshRdpOutbound']
    theirs = arm_rule('their-ssh', 'Outbound', 100, '*', 'VirtualNetwork', ['22', '3389'])
    plan = plan_apply(nsg_of(*rules, theirs, deny), ports=['9000'], override_denies=True)
    assert all(w.rule.name != 'their-ssh' for w in plan.writes)
    assert plan.blocked and any('no free priority in 100-100' in item for item in plan.unresolved)


def test_a_deny_at_100_cannot_be_outranked_and_says_so():
    deny = arm_rule('no-9000', 'Outbound', MIN_PRIORITY, '*', 'VirtualNetwork', '9000', access='Deny')
    rules = [r for r in compliant(ports=['9000'])['properties']['securityRules'] if r['name'] != 'AllowSshRdpOutbound']
    rules.append(arm_rule('AllowSshRdpOutbound', 'Outbound', 102, '*', 'VirtualNetwork', ['22', '3389']))
    plan = plan_apply(nsg_of(*rules, deny), ports=['9000'], override_denies=True)
    assert plan.writes == [] and plan.blocked
    assert plan.unresolved == [
        f'AllowCustomPortsOutbound: your Deny no-9000 holds priority 100, the first an NSG rule can take, so no rule '
        f'can come before it ({next(f.detail for f in plan.report.findings if f.rule == "AllowCustomPortsOutbound")})']


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
