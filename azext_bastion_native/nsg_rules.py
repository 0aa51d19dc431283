# --------------------------------------------------------------------------------------------
# The NSG rule set that AzureBastionSubnet needs, limited to the target ports native client uses.
# Pure data and functions: no Azure calls, no azure.cli imports (the CLI glue raises the typed errors).
# --------------------------------------------------------------------------------------------
"""Bastion's AzureBastionSubnet NSG rule set (DESIGN.md section 5), and port-list parsing."""

from dataclasses import dataclass, field

DEFAULT_TARGET_PORTS = ('22', '3389')


class PortListError(ValueError):
    """A --ports value that is not a port or a range of ports."""


@dataclass(frozen=True)
class Rule:  # pylint: disable=too-many-instance-attributes
    name: str
    direction: str          # 'Inbound' | 'Outbound'
    priority: int
    source: str
    destination: str
    ports: tuple = field(default_factory=tuple)   # destination port ranges, e.g. ('22', '3389') or ('*',)
    protocol: str = '*'     # 'Tcp' | '*'
    access: str = 'Allow'   # 'Allow' | 'Deny'
    description: str = ''


def _parse_one(token):
    token = token.strip()
    if not token:
        raise PortListError('empty port')
    low_text, sep, high_text = token.partition('-')
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise PortListError(f"'{token}' is not a port (1-65535) or a range like 8000-8010") from None
    for value in (low, high):
        if not 1 <= value <= 65535:
            raise PortListError(f"port {value} in '{token}' is outside 1-65535")
    if high < low:
        raise PortListError(f"range '{token}' is reversed; write it as {high}-{low}")
    return low, high


def parse_ports(values):
    """['22', '3389', '8000-8010'] (or comma-separated) -> sorted, merged-free, normalised range strings.

    Duplicates and overlapping ranges are refused rather than silently merged: they usually mean a typo."""
    if not values:
        return list(DEFAULT_TARGET_PORTS)
    tokens = [part for value in values for part in str(value).split(',')]
    ranges = sorted(_parse_one(token) for token in tokens)
    for (low_a, high_a), (low_b, high_b) in zip(ranges, ranges[1:]):
        if low_b <= high_a:
            first = f'{low_a}' if low_a == high_a else f'{low_a}-{high_a}'
            second = f'{low_b}' if low_b == high_b else f'{low_b}-{high_b}'
            raise PortListError(f"ports '{first}' and '{second}' overlap; list each port once")
    return [f'{low}' if low == high else f'{low}-{high}' for low, high in ranges]


def bastion_rule_set(ports=None):
    """The whole rule set, in priority order: Bastion stops working without any one of them."""
    target_ports = tuple(parse_ports(ports))
    return [
        Rule('AllowHttpsInbound', 'Inbound', 120, 'Internet', '*', ('443',), 'Tcp',
             description='Clients reach Bastion on 443'),
        Rule('AllowGatewayManagerInbound', 'Inbound', 130, 'GatewayManager', '*', ('443',), 'Tcp',
             description='Azure control plane'),
        Rule('AllowAzureLoadBalancerInbound', 'Inbound', 140, 'AzureLoadBalancer', '*', ('443',), 'Tcp',
             description='Health probes'),
        Rule('AllowBastionHostCommunication', 'Inbound', 150, 'VirtualNetwork', 'VirtualNetwork',
             ('8080', '5701'), '*', description='Bastion data plane between instances'),
        Rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', target_ports, '*',
             description='Native client target ports only'),
        Rule('AllowAzureCloudOutbound', 'Outbound', 110, '*', 'AzureCloud', ('443',), 'Tcp',
             description='Diagnostics and metering'),
        Rule('AllowBastionCommunication', 'Outbound', 120, 'VirtualNetwork', 'VirtualNetwork',
             ('8080', '5701'), '*', description='Bastion data plane between instances'),
        Rule('AllowHttpOutbound', 'Outbound', 130, '*', 'Internet', ('80',), '*',
             description='Session and certificate validation'),
        Rule('DenyOtherVnetOutbound', 'Outbound', 4000, '*', 'VirtualNetwork', ('*',), '*', 'Deny',
             description='Every other port to the virtual network (above the default AllowVnetOutBound)'),
    ]


def rule_as_row(rule):
    """A flat dict for -o table / -o json."""
    return {
        'name': rule.name,
        'direction': rule.direction,
        'priority': rule.priority,
        'access': rule.access,
        'source': rule.source,
        'destination': rule.destination,
        'ports': ','.join(rule.ports),
        'protocol': rule.protocol,
        'description': rule.description,
    }


# --------------------------------------------------------------------------------------------
# check: how an existing NSG (ARM JSON: properties.securityRules[]) compares with the rule set.
# Evaluated the way NSGs are: per direction, lowest priority number first, first match wins. Every Bastion
# flow is TCP, so flows are probed with Tcp. A '*' on Bastion's own side of a rule is its subnet, which is
# inside the VirtualNetwork tag. Address prefixes (CIDRs) and application security groups cannot be related
# to service tags without Azure's tag ranges: they never count as allowing a flow, and a Deny using them is
# reported as a warning.
# --------------------------------------------------------------------------------------------

ANY_ADDRESSES = ('*', 'any', '0.0.0.0/0', '::/0')
ALL_PORTS = ((0, 65535),)
BASTION_SIDE = 'virtualnetwork'
FAILING_KINDS = ('no-nsg', 'missing', 'breaking')
# Azure's default AllowVnetOutBound: what reaches the virtual network when no rule of ours denies it.
DEFAULT_VNET_OUTBOUND = 'AllowVnetOutBound (default, 65000)'
DENY_RULE_NAME = 'DenyOtherVnetOutbound'
MIN_PRIORITY, MAX_PRIORITY = 100, 4096


@dataclass(frozen=True)
class UserRule:  # pylint: disable=too-many-instance-attributes
    """One rule of the user's NSG, normalised for evaluation."""
    name: str
    priority: int
    direction: str
    access: str
    protocol: str
    sources: tuple
    destinations: tuple
    ports: tuple            # ((low, high), ...)
    raw: dict = field(default=None, compare=False, hash=False)

    def matches(self, source, destination, port):
        return (self.protocol.lower() in ('*', 'tcp')
                and _address_matches(self.sources, source)
                and _address_matches(self.destinations, destination)
                and any(low <= port <= high for low, high in self.ports))

    @property
    def uses_prefixes(self):
        return any(_is_prefix(a) for a in self.sources + self.destinations)


@dataclass(frozen=True)
class Finding:
    rule: str           # the required rule this is about ('' for NSG-wide warnings)
    kind: str           # 'present' | 'missing' | 'wider' | 'breaking' | 'warning' | 'no-nsg'
    detail: str
    related: tuple = ()  # names of the user's rules involved


@dataclass
class Report:
    nsg: str
    ports: list
    findings: list

    @property
    def ok(self):
        return not any(f.kind in FAILING_KINDS for f in self.findings)

    def kind_of(self, rule_name):
        return next((f.kind for f in self.findings if f.rule == rule_name and f.kind != 'warning'), None)

    def as_dict(self):
        return {
            'nsg': self.nsg, 'ports': list(self.ports), 'compliant': self.ok,
            'findings': [{'rule': f.rule, 'kind': f.kind, 'detail': f.detail, 'related': list(f.related)}
                         for f in self.findings],
        }


def _is_prefix(address):
    return any(ch.isdigit() for ch in address) and address not in ANY_ADDRESSES


def _address_matches(addresses, tag):
    return any(a in ANY_ADDRESSES or a == tag for a in addresses)


def _port_ranges(values):
    ranges = []
    for value in values:
        value = str(value).strip()
        if value in ('*', ''):
            return ALL_PORTS
        low, _, high = value.partition('-')
        ranges.append((int(low), int(high or low)))
    return tuple(sorted(ranges))


def _props(rule):
    return rule.get('properties', rule)


def _listed(props, single, plural):
    values = props.get(plural) or []
    if props.get(single):
        values = [props[single]] + list(values)
    return tuple(str(v).lower() for v in values)


def user_rules(nsg):
    """The NSG's own rules (not Azure's default ones), normalised, sorted by direction and priority."""
    rules = []
    for rule in _props(nsg or {}).get('securityRules') or []:
        props = _props(rule)
        rules.append(UserRule(
            name=rule.get('name', ''), priority=int(props.get('priority', 0)),
            direction=str(props.get('direction', '')).capitalize(), access=str(props.get('access', '')).capitalize(),
            protocol=str(props.get('protocol', '*')),
            sources=_listed(props, 'sourceAddressPrefix', 'sourceAddressPrefixes'),
            destinations=_listed(props, 'destinationAddressPrefix', 'destinationAddressPrefixes'),
            ports=_port_ranges(_listed(props, 'destinationPortRange', 'destinationPortRanges')),
            raw=rule))
    return sorted(rules, key=lambda r: (r.direction, r.priority))


def _probe_tag(address):
    return BASTION_SIDE if address == '*' else address.lower()


def first_match(rules, direction, source, destination, port):
    """The rule an NSG applies to this traffic (lowest priority number first), or None."""
    for rule in rules:
        if rule.direction == direction and rule.matches(source, destination, port):
            return rule
    return None


def _segments(needed, rules, direction):
    """Split the needed port ranges where any rule of the direction starts or ends: each piece is uniform."""
    pieces = []
    for low, high in needed:
        cuts = {low, high + 1}
        for rule in rules:
            if rule.direction != direction:
                continue
            for r_low, r_high in rule.ports:
                if low < r_low <= high:
                    cuts.add(r_low)
                if low <= r_high < high:
                    cuts.add(r_high + 1)
        points = sorted(cuts)
        pieces.extend((a, b - 1) for a, b in zip(points, points[1:]))
    return pieces


def _range_text(ranges):
    return ','.join(f'{a}' if a == b else ('*' if (a, b) == ALL_PORTS[0] else f'{a}-{b}') for a, b in ranges)


def _subtract(ranges, removed):
    """Port ranges minus other port ranges."""
    result = []
    for low, high in ranges:
        pieces = [(low, high)]
        for r_low, r_high in removed:
            next_pieces = []
            for a, b in pieces:
                if r_high < a or r_low > b:
                    next_pieces.append((a, b))
                    continue
                if a < r_low:
                    next_pieces.append((a, r_low - 1))
                if r_high < b:
                    next_pieces.append((r_high + 1, b))
            pieces = next_pieces
        result.extend(pieces)
    return result


def _flow(required):
    return required.direction, _probe_tag(required.source), _probe_tag(required.destination)


def _decisions(rules, required):
    direction, source, destination = _flow(required)
    needed = _port_ranges(required.ports)
    return [(piece, first_match(rules, direction, source, destination, piece[0]))
            for piece in _segments(needed, rules, direction)]


def _allowed_elsewhere(required_set, required):
    """Ports other required rules of the same direction and destination allow: not 'wider' when reused."""
    return [r for rule in required_set if rule.access == 'Allow' and rule.direction == required.direction
            and rule.destination == required.destination for r in _port_ranges(rule.ports)]


def _shadows(rules, deny, required, port):
    """A Deny breaks a flow when it hides an allow that comes later, or when it would still come first if
    the required rule were added at its documented priority; otherwise the flow is just missing."""
    if deny.priority < required.priority:
        return True
    direction, source, destination = _flow(required)
    return any(rule.access == 'Allow' and rule.priority > deny.priority and rule.direction == direction
               and rule.matches(source, destination, port) for rule in rules)


def _check_allow(rules, required, required_set):
    decisions = [(piece, None if rule is not None and rule.access == 'Deny'
                  and not _shadows(rules, rule, required, piece[0]) else rule)
                 for piece, rule in _decisions(rules, required)]
    blocked = [(piece, rule) for piece, rule in decisions if rule is not None and rule.access == 'Deny']
    if blocked:
        names = tuple(dict.fromkeys(rule.name for _, rule in blocked))
        ports = _range_text(piece for piece, _ in blocked)
        return Finding(required.name, 'breaking',
                       f'{required.direction.lower()} {ports} from {required.source} to {required.destination} is '
                       f'denied by {", ".join(names)} before any allow rule: Bastion stops working', names)
    uncovered = [piece for piece, rule in decisions if rule is None]
    covering = tuple(dict.fromkeys(rule for _, rule in decisions if rule is not None))
    if uncovered:
        return Finding(required.name, 'missing',
                       f'no rule allows {required.direction.lower()} {_range_text(uncovered)} from {required.source} '
                       f'to {required.destination}', tuple(r.name for r in covering))
    wider = []
    for rule in covering:
        extra = _subtract(rule.ports, _allowed_elsewhere(required_set, required))
        if extra:
            wider.append(f'{rule.name} also allows ports {_range_text(extra)}')
        # only the remote side counts: the near side of every rule is AzureBastionSubnet itself
        if required.direction == 'Inbound' and required.source != '*' \
                and any(a in ANY_ADDRESSES for a in rule.sources):
            wider.append(f'{rule.name} allows source * where the service tag {required.source} belongs')
        if required.direction == 'Outbound' and required.destination != '*' \
                and any(a in ANY_ADDRESSES for a in rule.destinations):
            wider.append(f'{rule.name} allows destination * where the service tag {required.destination} belongs')
    names = tuple(r.name for r in covering)
    if wider:
        return Finding(required.name, 'wider', '; '.join(wider), names)
    return Finding(required.name, 'present', f'allowed by {", ".join(names)}', names)


def _vnet_outbound(rules, allowed_ports):
    """Ports that reach the virtual network although they are not target ports: (ports, deciding rules)."""
    leaks = []
    for piece, rule in ((p, first_match(rules, 'Outbound', BASTION_SIDE, BASTION_SIDE, p[0]))
                        for p in _segments(ALL_PORTS, rules, 'Outbound')):
        if rule is not None and rule.access == 'Deny':
            continue
        extra = _subtract([piece], allowed_ports)
        if extra:
            leaks.append((extra, rule))
    return leaks


def _check_deny(rules, required, required_set):
    allowed = [r for rule in required_set if rule.access == 'Allow' and rule.direction == 'Outbound'
               and rule.destination == 'VirtualNetwork' for r in _port_ranges(rule.ports)]
    leaks = _vnet_outbound(rules, allowed)
    if not leaks:
        deciding = tuple(dict.fromkeys(
            rule.name for rule in rules if rule.direction == 'Outbound' and rule.access == 'Deny'
            and rule.matches(BASTION_SIDE, BASTION_SIDE, 0)))
        return Finding(required.name, 'present', 'every other port to VirtualNetwork is denied', deciding)
    through_default = [piece for extra, rule in leaks if rule is None for piece in extra]
    through_rules = tuple(dict.fromkeys(rule.name for _, rule in leaks if rule is not None))
    if through_default:
        return Finding(required.name, 'missing',
                       f'no Deny rule: ports {_range_text(through_default)} reach VirtualNetwork through '
                       f'{DEFAULT_VNET_OUTBOUND}', through_rules)
    ports = _range_text(piece for extra, _ in leaks for piece in extra)
    return Finding(required.name, 'wider',
                   f'ports {ports} reach VirtualNetwork through {", ".join(through_rules)}', through_rules)


def _warnings(rules, ports, vm_ports):
    found = []
    for rule in rules:
        if rule.access == 'Deny' and rule.uses_prefixes:
            found.append(Finding('', 'warning', f'{rule.name} denies by address prefix; its effect on Bastion\'s '
                                                'service tags was not evaluated', (rule.name,)))
    target = _port_ranges(ports)
    for port in vm_ports:
        port = int(port)
        if any(low <= port <= high for low, high in target):
            continue
        rule = first_match(rules, 'Outbound', BASTION_SIDE, BASTION_SIDE, port)
        if rule is not None and rule.access == 'Deny':
            found.append(Finding('', 'warning', f'VM port {port} used by native client is blocked by {rule.name}: '
                                                'connections to it will be refused', (rule.name,)))
    return found


def check(nsg, ports=None, vm_ports=(22, 3389)):
    """Report on an NSG (ARM JSON, or None when AzureBastionSubnet has none) against the rule set for `ports`.

    vm_ports: ports the VMs are reached on by native client; one blocked and outside `ports` is a warning."""
    required_set = bastion_rule_set(ports)
    target_ports = list(required_set[4].ports)
    if nsg is None:
        findings = [Finding('', 'no-nsg', 'AzureBastionSubnet has no network security group: nothing limits the '
                                          'ports native client reaches')]
        findings += [Finding(r.name, 'missing', 'no NSG') for r in required_set]
        return Report('', target_ports, findings)
    rules = user_rules(nsg)
    findings = [(_check_deny if r.access == 'Deny' else _check_allow)(rules, r, required_set) for r in required_set]
    findings += _warnings(rules, target_ports, vm_ports)
    return Report(nsg.get('id') or nsg.get('name', ''), target_ports, findings)


# --------------------------------------------------------------------------------------------
# plan_apply: the writes that make an NSG compliant, merged into the user's rules without touching the
# unrelated ones. Priorities are unique per direction: when ours is taken, the nearest free one (inside the
# window that keeps the rule effective) is used instead and recorded. Writes are ordered so Bastion works
# after each one: allow rules first, the Deny last (the caller associates the NSG after all rules).
# --------------------------------------------------------------------------------------------

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

    @property
    def empty(self):
        return not self.create_nsg and not self.writes

    def as_dict(self):
        return {
            'nsg': self.nsg, 'createNsg': self.create_nsg,
            'writes': [dict(rule_as_row(w.rule), action=w.action, reason=w.reason,
                            previous=w.previous) for w in self.writes],
            'moved': list(self.moved), 'unresolved': list(self.unresolved),
        }


def rule_to_arm(rule):
    """A Rule in the ARM JSON shape of a security rule (what azure-mgmt-network's SecurityRule(mapping) takes)."""
    props = {
        'priority': rule.priority, 'direction': rule.direction, 'access': rule.access, 'protocol': rule.protocol,
        'sourceAddressPrefix': rule.source, 'sourcePortRange': '*', 'destinationAddressPrefix': rule.destination,
        'description': rule.description,
    }
    if len(rule.ports) == 1:
        props['destinationPortRange'] = rule.ports[0]
    else:
        props['destinationPortRanges'] = list(rule.ports)
    return {'name': rule.name, 'properties': props}


def _user_row(user_rule):
    props = _props(user_rule.raw or {})

    def shown(single, plural):     # as the user wrote it, not lower-cased for matching
        return ','.join(([props[single]] if props.get(single) else []) + list(props.get(plural) or []))
    return {
        'name': user_rule.name, 'direction': user_rule.direction, 'priority': user_rule.priority,
        'access': user_rule.access, 'source': shown('sourceAddressPrefix', 'sourceAddressPrefixes'),
        'destination': shown('destinationAddressPrefix', 'destinationAddressPrefixes'),
        'ports': _range_text(user_rule.ports), 'protocol': user_rule.protocol,
    }


def _same_content(user_rule, rule):
    return (user_rule.priority == rule.priority and user_rule.direction == rule.direction
            and user_rule.access == rule.access and user_rule.protocol.lower() == rule.protocol.lower()
            and user_rule.sources == (rule.source.lower(),) and user_rule.destinations == (rule.destination.lower(),)
            and user_rule.ports == _port_ranges(rule.ports))


def _nearest_free(wanted, low, high, taken):
    for distance in range(0, MAX_PRIORITY - MIN_PRIORITY + 1):
        for candidate in (wanted - distance, wanted + distance):
            if low <= candidate <= high and candidate not in taken:
                return candidate
    return None


class _Planner:  # pylint: disable=too-many-instance-attributes
    def __init__(self, nsg, ports):
        self.rules = user_rules(nsg)
        self.by_name = {r.name.lower(): r for r in self.rules}
        self.report = check(nsg, ports)
        self.required = bastion_rule_set(ports)
        self.required_names = {r.name.lower() for r in self.required}
        self.writes, self.moved, self.unresolved = [], [], []
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
        for _, rule in _decisions(self.rules, required):
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
        return f'it must come within {low}-{high} to take effect'

    def write(self, required, finding):
        existing = self.by_name.get(required.name.lower())
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
        self.final[required.name] = priority
        self.writes.append(RuleWrite('update' if existing is not None else 'add', rule,
                                     f'{finding.kind}: {finding.detail}',
                                     _user_row(existing) if existing is not None else None))

    def plan(self):
        for required in self.required:      # allow rules come first in the rule set, the Deny last
            finding = next(f for f in self.report.findings if f.rule == required.name)
            ours = self.by_name.get(required.name.lower())
            if finding.kind == 'present':
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


def plan_apply(nsg, ports=None, nsg_name=''):
    """The writes that make `nsg` (ARM JSON, or None: a new NSG) compliant for `ports`; empty when it is."""
    planner = _Planner(nsg, ports).plan()
    name = (nsg or {}).get('name') or nsg_name
    return Plan(name, nsg is None, planner.writes, planner.moved, planner.unresolved, planner.report)


def apply_to_json(nsg, plan):
    """The NSG JSON after the plan's writes (a new NSG from scratch when `nsg` is None)."""
    result = {'name': plan.nsg, 'properties': {'securityRules': []}}
    if nsg is not None:
        result = dict(nsg, properties=dict(_props(nsg)))
        result['properties']['securityRules'] = list(_props(nsg).get('securityRules') or [])
    rules = result['properties']['securityRules']
    for write in plan.writes:
        arm = rule_to_arm(write.rule)
        index = next((i for i, r in enumerate(rules) if r.get('name', '').lower() == write.rule.name.lower()), None)
        if index is None:
            rules.append(arm)
        else:
            rules[index] = arm
    return result
