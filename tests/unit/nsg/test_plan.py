"""nsg/plan.py: --override-denies finds room before a Deny, and writes go in an order ARM accepts one by one."""
from azext_bastion_native.nsg.check import check
from azext_bastion_native.nsg.plan import MIN_PRIORITY, apply_to_json, plan_apply
from tests.unit.nsg.test_nsg_rules import arm_rule, compliant, nsg_of


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
