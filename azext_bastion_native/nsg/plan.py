"""The writes that make an NSG compliant, merged into the user's rules without touching the unrelated ones. Pure.

Priorities are unique per direction: when ours is taken, the nearest free one (inside the window that keeps the rule
effective) is used instead and recorded; with override_denies a rule of ours in the way moves aside when it stays
effective elsewhere. Writes are ordered so Bastion works after each one: allow rules first, the Deny last, a rule
that frees a priority before the one that takes it (the caller associates the NSG after all rules). The user's rules
are never written wider than they are: where a rule of the set's name exists but allows less than Bastion needs,
ours is added beside it under another name. A Deny of the user's that blocks a required flow is not outranked unless
the caller asks (override_denies); a plan that would still leave the NSG non-compliant lists why in `blocked`, and
nothing of it should be written."""

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from azext_bastion_native.nsg.check import (ANY_ADDRESSES, FAILING_KINDS, Finding, Json, Report, UserRule,
                                            arm_properties, check, decisions, user_rules)
from azext_bastion_native.nsg.ports import port_ranges, range_text, subtract
from azext_bastion_native.nsg.rule_set import CUSTOM_PORTS_RULE, Network, Rule, bastion_rule_set, rule_to_arm

MIN_PRIORITY, MAX_PRIORITY = 100, 4096


@dataclass(frozen=True)
class RuleWrite:
    action: str         # 'add' | 'update'
    rule: Rule          # the rule as it will be written (final priority)
    reason: str
    previous: Optional[Json] = None   # the existing rule's row, for an update


@dataclass
class Plan:  # pylint: disable=too-many-instance-attributes
    nsg: str
    create_nsg: bool
    writes: list[RuleWrite]
    moved: list[Json]       # [{'rule', 'wanted', 'priority', 'because'}]
    unresolved: list[str]   # findings a write of ours cannot fix without changing the user's own rules
    report: Report
    blocked: list[str] = field(default_factory=list)   # why the NSG would still be refused: write nothing of it

    @property
    def empty(self) -> bool:
        return not self.create_nsg and not self.writes


def _user_row(user_rule: UserRule) -> Json:
    props = arm_properties(user_rule.raw or {})

    def shown(single: str, plural: str) -> str:     # as the user wrote it, not lower-cased for matching
        return ','.join(([props[single]] if props.get(single) else []) + list(props.get(plural) or []))
    return {
        'name': user_rule.name, 'direction': user_rule.direction, 'priority': user_rule.priority,
        'access': user_rule.access, 'source': shown('sourceAddressPrefix', 'sourceAddressPrefixes'),
        'destination': shown('destinationAddressPrefix', 'destinationAddressPrefixes'),
        'ports': range_text(user_rule.ports), 'protocol': user_rule.protocol,
    }


def _same_content(user_rule: UserRule, rule: Rule) -> bool:
    return (user_rule.priority == rule.priority and user_rule.direction == rule.direction
            and user_rule.access == rule.access and user_rule.protocol.lower() == rule.protocol.lower()
            and user_rule.every_source_port
            and user_rule.sources == (rule.source.lower(),)
            and user_rule.destinations == tuple(d.lower() for d in rule.destinations)
            and user_rule.ports == port_ranges(rule.ports))


def _covered(wanted: Sequence[str], have: Sequence[str]) -> bool:
    return all(any(h in ANY_ADDRESSES or h == w for h in have) for w in wanted)


def _within(rule: Rule, user_rule: UserRule) -> bool:
    """`rule` allows nothing `user_rule` does not: writing it in place of the user's rule does not widen it."""
    return (rule.direction == user_rule.direction and rule.access == user_rule.access
            and user_rule.protocol.lower() in ('*', rule.protocol.lower())
            and user_rule.every_source_port      # ours is written for every source port
            and not subtract(port_ranges(rule.ports), user_rule.ports)
            and _covered((rule.source.lower(),), user_rule.sources)
            and _covered(tuple(d.lower() for d in rule.destinations), user_rule.destinations))


def _nearest_free(wanted: int, low: int, high: int, taken: set[int]) -> Optional[int]:
    for distance in range(0, MAX_PRIORITY - MIN_PRIORITY + 1):
        for candidate in (wanted - distance, wanted + distance):
            if low <= candidate <= high and candidate not in taken:
                return candidate
    return None


def _ordered(writes: list[RuleWrite]) -> list[RuleWrite]:
    """Allow rules first (inbound, then outbound, by priority), the Deny last; a write that frees a priority goes
    before the write that takes it, or ARM refuses the second rule of one priority."""
    writes = sorted(writes, key=lambda w: (w.rule.access == 'Deny', w.rule.direction != 'Inbound', w.rule.priority))
    for _ in range(len(writes)):
        pair = next(((i, j) for i, taker in enumerate(writes) for j, freer in enumerate(writes)
                     if j > i and freer.previous and freer.rule.direction == taker.rule.direction
                     and freer.previous.get('priority') == taker.rule.priority), None)
        if pair is None:
            break
        writes.insert(pair[0], writes.pop(pair[1]))
    return writes


class _Planner:  # pylint: disable=too-many-instance-attributes
    def __init__(self, nsg: Optional[Json], ports: Optional[Sequence[object]], network: Network,
                 override_denies: bool = False):
        self.rules = user_rules(nsg, network)
        self.by_name = {r.name.lower(): r for r in self.rules}
        self.report = check(nsg, ports, network=network)
        self.required = bastion_rule_set(ports, network)
        self.required_names = {r.name.lower() for r in self.required}
        self.override_denies = override_denies
        self.writes: list[RuleWrite] = []
        self.moved: list[Json] = []
        self.unresolved: list[str] = []
        self.blocked: list[str] = []
        # priorities held per direction; a rule of ours that gets rewritten releases its own
        self.taken = {d: {r.priority for r in self.rules if r.direction == d} for d in ('Inbound', 'Outbound')}
        self.final: dict[str, int] = {}       # required rule name -> priority it ends with
        self.relocated: dict[str, int] = {}   # rules of ours moved aside to make room -> their new priority

    def window(self, required: Rule) -> tuple[int, int]:
        """Priorities where the rule takes effect: before any Deny that blocks it; the Deny after every allow
        that carries a target port to the virtual network."""
        low, high = MIN_PRIORITY, MAX_PRIORITY
        if required.access == 'Deny':
            vnet_allows = [self.final[r.name] for r in self.required if r.reaches_vnet and r.name in self.final]
            return max(vnet_allows + [low - 1]) + 1, high
        for decision in decisions(self.rules, required):
            rule = decision.rule
            if rule is not None and rule.access == 'Deny' and rule.name.lower() != required.name.lower():
                high = min(high, rule.priority - 1)
        return low, high

    def keep(self, required: Rule, finding: Finding) -> None:
        covering = [self.by_name[n.lower()] for n in finding.related if n.lower() in self.by_name]
        self.final[required.name] = self.relocated.get(
            required.name, max((r.priority for r in covering), default=required.priority))

    def blocking_deny(self, required: Rule, high: int) -> Optional[UserRule]:
        return next((r for r in self.rules if r.access == 'Deny' and r.direction == required.direction
                     and r.priority == high + 1), None)

    def why_moved(self, required: Rule, taken: set[int], high: int) -> str:
        if required.priority in taken:
            holder = next((r.name for r in self.rules
                           if r.priority == required.priority and r.direction == required.direction), 'a rule')
            return f'priority {required.priority} is taken by {holder}'
        deny = self.blocking_deny(required, high)
        if deny is not None and high < required.priority:
            return f'it must come before your Deny {deny.name} ({deny.priority}) to take effect (--override-denies)'
        return f'it must come within {MIN_PRIORITY}-{high} to take effect'

    def free_name(self, base: str) -> str:
        names = set(self.by_name) | {w.rule.name.lower() for w in self.writes}
        candidates = [f'{base}-bastion'] + [f'{base}-bastion-{n}' for n in range(2, 100)]
        return next(c for c in candidates if c.lower() not in names)

    def _movable_at(self, direction: str, priority: int) -> Optional[tuple[Rule, Optional[UserRule], Optional[int]]]:
        """A rule of ours holding `priority` that may move: (its definition, the existing rule, its pending write)."""
        for index, pending in enumerate(self.writes):
            if pending.rule.direction == direction and pending.rule.priority == priority \
                    and pending.rule.access == 'Allow':
                return pending.rule, None, index
        written = {w.rule.name for w in self.writes}
        for existing in self.rules:
            if existing.direction != direction or existing.priority != priority:
                continue
            definition = next((r for r in self.required if r.name.lower() == existing.name.lower()
                               and r.access == 'Allow' and r.name not in written), None)
            if definition is not None and _same_content(existing, replace(definition, priority=priority)):
                return definition, existing, None
        return None

    def make_room(self, required: Rule, low: int, high: int) -> Optional[int]:
        """A priority in low-high that a rule of ours gives up, moving to where it still takes effect."""
        taken = self.taken[required.direction]
        for candidate in sorted(range(low, high + 1), key=lambda p: abs(p - required.priority)):
            holder = self._movable_at(required.direction, candidate)
            if holder is None:
                continue
            definition, existing, index = holder
            holder_low, holder_high = self.window(definition)
            new = _nearest_free(candidate, holder_low, holder_high, taken)
            if new is None:
                continue
            deny = self.blocking_deny(required, high)
            because = f'priority {candidate} goes to {required.name}, which must come before your Deny ' \
                      f'{deny.name if deny is not None else ""}'.rstrip()
            moved = replace(definition, priority=new)
            if index is not None:
                pending = self.writes[index]
                self.writes[index] = RuleWrite(pending.action, moved, pending.reason, pending.previous)
                self.moved = [m for m in self.moved if m['rule'] != definition.name]
            elif existing is not None:
                self.writes.append(RuleWrite('update', moved, f'moved: {because}', _user_row(existing)))
            self.moved.append({'rule': definition.name, 'wanted': candidate, 'priority': new, 'because': because})
            taken.discard(candidate)
            taken.add(new)
            self.final[definition.name] = self.relocated[definition.name] = new
            return candidate
        return None

    def write(self, required: Rule, finding: Finding) -> None:
        existing = self.by_name.get(required.name.lower())
        if existing is not None and required.name != CUSTOM_PORTS_RULE and not _within(required, existing):
            # never written wider than it is: the user's rule stays, ours goes in beside it
            required = replace(required, name=self.free_name(required.name))
            finding = replace(finding, detail=f'{finding.detail}; your {existing.name} is kept as it is')
            existing = None
        taken = set(self.taken[required.direction])
        if existing is not None and existing.direction == required.direction:
            taken.discard(existing.priority)
        low, high = self.window(required)
        priority = _nearest_free(required.priority, low, high, taken)
        if priority is None and self.override_denies and high >= low:
            priority = self.make_room(required, low, high)
            taken = set(self.taken[required.direction]) | ({priority} if priority is not None else set())
            if existing is not None and existing.direction == required.direction:
                taken.discard(existing.priority)
        if priority is None:
            deny = self.blocking_deny(required, high)
            reason = (f'your Deny {deny.name} holds priority {deny.priority}, the first an NSG rule can take, so no '
                      'rule can come before it' if deny is not None and deny.priority <= MIN_PRIORITY
                      else f'no free priority in {low}-{high}')
            self.unresolved.append(f'{required.name}: {reason} ({finding.detail})')
            self.keep(required, finding)
            return
        rule = replace(required, priority=priority)
        if existing is not None and _same_content(existing, rule):
            self.keep(required, finding)
            return
        if priority != required.priority:
            self.moved.append({'rule': required.name, 'wanted': required.priority, 'priority': priority,
                               'because': self.why_moved(required, taken, high)})
        if existing is not None:
            self.taken[existing.direction].discard(existing.priority)
        self.taken[required.direction].add(priority)
        self.final[required.name] = self.final[finding.rule] = priority
        self.writes.append(RuleWrite('update' if existing is not None else 'add', rule,
                                     f'{finding.kind}: {finding.detail}',
                                     _user_row(existing) if existing is not None else None))

    def plan(self) -> '_Planner':
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
        self.writes = _ordered(self.writes)
        return self


def plan_apply(nsg: Optional[Json], ports: Optional[Sequence[object]] = None, nsg_name: str = '',
               network: Optional[Network] = None, override_denies: bool = False) -> Plan:
    """The writes that make `nsg` (ARM JSON, or None: a new NSG) compliant for `ports`; empty when it is.

    override_denies: place Bastion's allow rules above the user's Deny rules that block them. The result is
    checked again: whatever would still be missing or breaking is listed in `blocked`."""
    network = network or Network()
    planner = _Planner(nsg, ports, network, override_denies).plan()
    name = (nsg or {}).get('name') or nsg_name
    plan = Plan(name, nsg is None, planner.writes, planner.moved, planner.unresolved, planner.report,
                list(planner.blocked))
    if not plan.blocked:
        after = check(apply_to_json(nsg, plan), ports, network=network)
        plan.blocked = [f'{f.rule}: {f.detail}' for f in after.findings if f.kind in FAILING_KINDS]
    return plan


def apply_to_json(nsg: Optional[Json], plan: Plan) -> Json:
    """The NSG JSON after the plan's writes (a new NSG from scratch when `nsg` is None)."""
    result: Json = {'name': plan.nsg, 'properties': {'securityRules': []}}
    if nsg is not None:
        result = dict(nsg, properties=dict(arm_properties(nsg)))
        result['properties']['securityRules'] = list(arm_properties(nsg).get('securityRules') or [])
    rules: list[Any] = result['properties']['securityRules']
    for write in plan.writes:
        arm = rule_to_arm(write.rule)
        index = next((i for i, r in enumerate(rules) if r.get('name', '').lower() == write.rule.name.lower()), None)
        if index is None:
            rules.append(arm)
        else:
            rules[index] = arm
    return result
