"""The writes that make an NSG compliant, merged into the user's rules without touching the unrelated ones. Pure.

Priorities are unique per direction: when ours is taken, the nearest free one (inside the window that keeps the rule
effective) is used instead and recorded. Writes are ordered so Bastion works after each one: allow rules first, the
Deny last (the caller associates the NSG after all rules). The user's rules are never written wider than they are:
where a rule of the set's name exists but allows less than Bastion needs, ours is added beside it under another
name. A Deny of the user's that blocks a required flow is not outranked unless the caller asks (override_denies);
a plan that would still leave the NSG non-compliant lists why in `blocked`, and nothing of it should be written."""

from dataclasses import dataclass

from azext_bastion_native.nsg.check import (ANY_ADDRESSES, FAILING_KINDS, Report, arm_properties, check, decisions,
                                            user_rules)
from azext_bastion_native.nsg.ports import port_ranges, range_text, subtract
from azext_bastion_native.nsg.rule_set import CUSTOM_PORTS_RULE, Rule, bastion_rule_set, rule_as_row, rule_to_arm

MIN_PRIORITY, MAX_PRIORITY = 100, 4096


@dataclass(frozen=True)
class RuleWrite:
    action: str         # 'add' | 'update'
    rule: Rule          # the rule as it will be written (final priority)
    reason: str
    previous: dict = None   # the existing rule's row, for an update


@dataclass
class Plan:
    nsg: str
    create_nsg: bool
    writes: list
    moved: list         # [{'rule', 'wanted', 'priority', 'because'}]
    unresolved: list    # findings a write of ours cannot fix without changing the user's own rules
    report: Report
    blocked: list = None    # why the NSG would still be refused: nothing of this plan may be written

    @property
    def empty(self):
        return not self.create_nsg and not self.writes

    def as_dict(self):
        return {
            'nsg': self.nsg, 'createNsg': self.create_nsg,
            'writes': [dict(rule_as_row(w.rule), action=w.action, reason=w.reason,
                            previous=w.previous) for w in self.writes],
            'moved': list(self.moved), 'unresolved': list(self.unresolved), 'blocked': list(self.blocked or []),
        }


def _user_row(user_rule):
    props = arm_properties(user_rule.raw or {})

    def shown(single, plural):     # as the user wrote it, not lower-cased for matching
        return ','.join(([props[single]] if props.get(single) else []) + list(props.get(plural) or []))
    return {
        'name': user_rule.name, 'direction': user_rule.direction, 'priority': user_rule.priority,
        'access': user_rule.access, 'source': shown('sourceAddressPrefix', 'sourceAddressPrefixes'),
        'destination': shown('destinationAddressPrefix', 'destinationAddressPrefixes'),
        'ports': range_text(user_rule.ports), 'protocol': user_rule.protocol,
    }


def _same_content(user_rule, rule):
    return (user_rule.priority == rule.priority and user_rule.direction == rule.direction
            and user_rule.access == rule.access and user_rule.protocol.lower() == rule.protocol.lower()
            and user_rule.sources == (rule.source.lower(),) and user_rule.destinations == (rule.destination.lower(),)
            and user_rule.ports == port_ranges(rule.ports))


def _covered(wanted, have):
    return any(h in ANY_ADDRESSES or h == w for h in have for w in wanted) if wanted else True


def _within(rule, user_rule):
    """`rule` allows nothing `user_rule` does not: writing it in place of the user's rule does not widen it."""
    return (rule.direction == user_rule.direction and rule.access == user_rule.access
            and user_rule.protocol.lower() in ('*', rule.protocol.lower())
            and not subtract(port_ranges(rule.ports), user_rule.ports)
            and _covered((rule.source.lower(),), user_rule.sources)
            and _covered((rule.destination.lower(),), user_rule.destinations))


def _nearest_free(wanted, low, high, taken):
    for distance in range(0, MAX_PRIORITY - MIN_PRIORITY + 1):
        for candidate in (wanted - distance, wanted + distance):
            if low <= candidate <= high and candidate not in taken:
                return candidate
    return None


class _Planner:  # pylint: disable=too-many-instance-attributes
    def __init__(self, nsg, ports, bastion_prefixes=(), override_denies=False):
        self.rules = user_rules(nsg, bastion_prefixes)
        self.by_name = {r.name.lower(): r for r in self.rules}
        self.report = check(nsg, ports, bastion_prefixes=bastion_prefixes)
        self.required = bastion_rule_set(ports)
        self.required_names = {r.name.lower() for r in self.required}
        self.override_denies = override_denies
        self.writes, self.moved, self.unresolved, self.blocked = [], [], [], []
        # priorities held per direction; a rule of ours that gets rewritten releases its own
        self.taken = {d: {r.priority for r in self.rules if r.direction == d} for d in ('Inbound', 'Outbound')}
        self.final = {}     # required rule name -> priority it ends with

    def window(self, required):
        """Priorities where the rule takes effect: before any Deny that blocks it; the Deny after every allow
        that carries a target port to the virtual network."""
        low, high = MIN_PRIORITY, MAX_PRIORITY
        if required.access == 'Deny':
            vnet_allows = [self.final[r.name] for r in self.required
                           if r.access == 'Allow' and r.direction == 'Outbound' and r.destination == 'VirtualNetwork']
            return max(vnet_allows + [low - 1]) + 1, high
        for _, rule, _ in decisions(self.rules, required):
            if rule is not None and rule.access == 'Deny' and rule.name.lower() != required.name.lower():
                high = min(high, rule.priority - 1)
        return low, high

    def keep(self, required, finding):
        covering = [self.by_name[n.lower()] for n in finding.related if n.lower() in self.by_name]
        self.final[required.name] = max((r.priority for r in covering), default=required.priority)

    def why_moved(self, required, taken, low, high):
        if required.priority in taken:
            holder = next((r.name for r in self.rules
                           if r.priority == required.priority and r.direction == required.direction), 'a rule')
            return f'priority {required.priority} is taken by {holder}'
        deny = next((r for r in self.rules if r.access == 'Deny' and r.direction == required.direction
                     and r.priority == high + 1), None)
        if deny is not None and high < required.priority:
            return f'it must come before your Deny {deny.name} ({deny.priority}) to take effect (--override-denies)'
        return f'it must come within {low}-{high} to take effect'

    def free_name(self, base):
        names = set(self.by_name) | {w.rule.name.lower() for w in self.writes}
        candidates = [f'{base}-bastion'] + [f'{base}-bastion-{n}' for n in range(2, 100)]
        return next(c for c in candidates if c.lower() not in names)

    def write(self, required, finding):
        existing = self.by_name.get(required.name.lower())
        if existing is not None and required.name != CUSTOM_PORTS_RULE and not _within(required, existing):
            # never written wider than it is: the user's rule stays, ours goes in beside it
            required = Rule(self.free_name(required.name), required.direction, required.priority, required.source,
                            required.destination, required.ports, required.protocol, required.access,
                            required.description)
            finding = type(finding)(finding.rule, finding.kind, f'{finding.detail}; your {existing.name} is kept as '
                                    f'it is', finding.related)
            existing = None
        taken = set(self.taken[required.direction])
        if existing is not None and existing.direction == required.direction:
            taken.discard(existing.priority)
        low, high = self.window(required)
        priority = _nearest_free(required.priority, low, high, taken)
        if priority is None:
            self.unresolved.append(f'{required.name}: no free priority in {low}-{high} ({finding.detail})')
            self.keep(required, finding)
            return
        rule = Rule(required.name, required.direction, priority, required.source, required.destination,
                    required.ports, required.protocol, required.access, required.description)
        if existing is not None and _same_content(existing, rule):
            self.keep(required, finding)
            return
        if priority != required.priority:
            because = self.why_moved(required, taken, low, high)
            self.moved.append({'rule': required.name, 'wanted': required.priority, 'priority': priority,
                               'because': because})
        if existing is not None:
            self.taken[existing.direction].discard(existing.priority)
        self.taken[required.direction].add(priority)
        self.final[required.name] = self.final[finding.rule] = priority
        self.writes.append(RuleWrite('update' if existing is not None else 'add', rule,
                                     f'{finding.kind}: {finding.detail}',
                                     _user_row(existing) if existing is not None else None))

    def plan(self):
        for required in self.required:      # allow rules come first in the rule set, the Deny last
            finding = next(f for f in self.report.findings if f.rule == required.name)
            ours = self.by_name.get(required.name.lower())
            if finding.kind in ('present', 'narrowed'):
                self.keep(required, finding)
            elif finding.kind == 'breaking' and not self.override_denies:
                self.blocked.append(f'{required.name}: {finding.detail}')
                self.keep(required, finding)
            elif finding.kind == 'wider' and not (ours is not None and ours.name in finding.related):
                # the wide rule is the user's own: narrowing or shadowing it is their call. A rule of ours
                # that makes it wide is rewritten under its own name, in this same plan.
                if any(name.lower() not in self.required_names for name in finding.related):
                    self.unresolved.append(f'{required.name}: {finding.detail}')
                self.keep(required, finding)
            else:
                self.write(required, finding)
        self.writes.sort(key=lambda w: (w.rule.access == 'Deny', w.rule.direction != 'Inbound', w.rule.priority))
        return self


def plan_apply(nsg, ports=None, nsg_name='', bastion_prefixes=(), override_denies=False):
    """The writes that make `nsg` (ARM JSON, or None: a new NSG) compliant for `ports`; empty when it is.

    override_denies: place Bastion's allow rules above the user's Deny rules that block them. The result is
    checked again: whatever would still be missing or breaking is listed in `blocked`."""
    planner = _Planner(nsg, ports, bastion_prefixes, override_denies).plan()
    name = (nsg or {}).get('name') or nsg_name
    plan = Plan(name, nsg is None, planner.writes, planner.moved, planner.unresolved, planner.report,
                list(planner.blocked))
    if not plan.blocked:
        after = check(apply_to_json(nsg, plan), ports, bastion_prefixes=bastion_prefixes)
        plan.blocked = [f'{f.rule}: {f.detail}' for f in after.findings if f.kind in FAILING_KINDS]
    return plan


def apply_to_json(nsg, plan):
    """The NSG JSON after the plan's writes (a new NSG from scratch when `nsg` is None)."""
    result = {'name': plan.nsg, 'properties': {'securityRules': []}}
    if nsg is not None:
        result = dict(nsg, properties=dict(arm_properties(nsg)))
        result['properties']['securityRules'] = list(arm_properties(nsg).get('securityRules') or [])
    rules = result['properties']['securityRules']
    for write in plan.writes:
        arm = rule_to_arm(write.rule)
        index = next((i for i, r in enumerate(rules) if r.get('name', '').lower() == write.rule.name.lower()), None)
        if index is None:
            rules.append(arm)
        else:
            rules[index] = arm
    return result
