"""How an existing NSG (ARM JSON: properties.securityRules[]) compares with Bastion's rule set. Pure.

Evaluated the way NSGs are: per direction, lowest priority number first, first match wins. Every Bastion flow is
TCP, so flows are probed with Tcp. A '*' on Bastion's own side of a rule is its subnet: VirtualNetwork or a
prefix holding AzureBastionSubnet covers it too. Other address prefixes and application security groups cannot
be related to service tags without Azure's tag ranges: they never count as allowing a flow (a Deny using them is
reported as a warning), with one exception Microsoft documents: the inbound 443 rule may come from "a set of
public IP addresses that you specify" instead of Internet. Such a rule is "narrowed": Bastion still works for
those clients, so it is compliant and kept as it is."""

from dataclasses import dataclass, field

from azext_bastion_native.nsg.ports import ALL_PORTS, port_ranges, range_text, subtract
from azext_bastion_native.nsg.rule_set import AZURE_REQUIRED, bastion_rule_set, target_ports

ANY_ADDRESSES = ('*', 'any', '0.0.0.0/0', '::/0')
VNET = 'virtualnetwork'
INTERNET = 'internet'
BASTION_SIDE = '<azurebastionsubnet>'     # the subnet itself: what '*' stands for on Bastion's side of a rule
FAILING_KINDS = ('no-nsg', 'missing', 'breaking')
# Azure's default AllowVnetOutBound: what reaches the virtual network when no rule of ours denies it.
DEFAULT_VNET_OUTBOUND = 'AllowVnetOutBound (default, 65000)'


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
    bastion_nets: tuple = field(default=(), compare=False, hash=False)    # AzureBastionSubnet's prefixes

    def _carries(self, port):
        return self.protocol.lower() in ('*', 'tcp') and any(low <= port <= high for low, high in self.ports)

    def matches(self, source, destination, port):
        """The rule applies to all of this traffic."""
        return (self._carries(port)
                and _address_matches(self.sources, source, self.bastion_nets)
                and _address_matches(self.destinations, destination, self.bastion_nets))

    def allows_narrowly(self, source, destination, port):
        """An Allow for only part of this traffic that Bastion still works with (see the module docstring)."""
        sides = ((self.sources, source), (self.destinations, destination))
        return (self.access == 'Allow' and self._carries(port) and not self.matches(source, destination, port)
                and all(_address_matches(a, tag, self.bastion_nets) or (tag == INTERNET and _public_only(a))
                        for a, tag in sides))

    @property
    def uses_prefixes(self):
        return any(_is_prefix(a) for a in self.sources + self.destinations)


@dataclass(frozen=True)
class Finding:
    rule: str           # the required rule this is about ('' for NSG-wide warnings)
    kind: str           # 'present' | 'narrowed' | 'missing' | 'wider' | 'breaking' | 'warning' | 'no-nsg'
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

    @property
    def azure_accepts(self):
        """Azure's own check would take this NSG on AzureBastionSubnet: only the rules it requires count."""
        return not any(f.rule in AZURE_REQUIRED and f.kind in FAILING_KINDS for f in self.findings)

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


def _network(address):
    import ipaddress
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None


def _holds_bastion(address, bastion_nets):
    net = _network(address) if _is_prefix(address) else None
    return net is not None and any(b.version == net.version and b.subnet_of(net) for b in bastion_nets)


def _address_matches(addresses, tag, bastion_nets=()):
    if tag == BASTION_SIDE:
        return any(a in ANY_ADDRESSES or a == VNET or _holds_bastion(a, bastion_nets) for a in addresses)
    return any(a in ANY_ADDRESSES or a == tag for a in addresses)


def _public_only(addresses):
    """Every address is a prefix on the public Internet (what Microsoft allows in place of the Internet tag)."""
    nets = [_network(a) if _is_prefix(a) else None for a in addresses]
    return bool(nets) and all(net is not None and net.is_global for net in nets)


def arm_properties(rule):
    """An ARM resource's properties (the resource itself when it is already flat)."""
    return rule.get('properties', rule)


def _listed(props, single, plural):
    values = props.get(plural) or []
    if props.get(single):
        values = [props[single]] + list(values)
    return tuple(str(v).lower() for v in values)


def user_rules(nsg, bastion_prefixes=()):
    """The NSG's own rules (not Azure's default ones), normalised, sorted by direction and priority.

    bastion_prefixes: AzureBastionSubnet's address prefixes, so rules naming the subnet itself count for it."""
    bastion_nets = tuple(net for net in (_network(p) for p in bastion_prefixes) if net is not None)
    rules = []
    for rule in arm_properties(nsg or {}).get('securityRules') or []:
        props = arm_properties(rule)
        rules.append(UserRule(
            name=rule.get('name', ''), priority=int(props.get('priority', 0)),
            direction=str(props.get('direction', '')).capitalize(), access=str(props.get('access', '')).capitalize(),
            protocol=str(props.get('protocol', '*')),
            sources=_listed(props, 'sourceAddressPrefix', 'sourceAddressPrefixes'),
            destinations=_listed(props, 'destinationAddressPrefix', 'destinationAddressPrefixes'),
            ports=port_ranges(_listed(props, 'destinationPortRange', 'destinationPortRanges')),
            raw=rule, bastion_nets=bastion_nets))
    return sorted(rules, key=lambda r: (r.direction, r.priority))


def _probe_tag(address):
    return BASTION_SIDE if address == '*' else address.lower()


def first_match(rules, direction, source, destination, port):
    """The rule an NSG applies to this traffic (lowest priority number first), or None."""
    return first_decision(rules, direction, source, destination, port)[0]


def first_decision(rules, direction, source, destination, port):
    """(rule, narrowed): the first rule that applies to all of this traffic, or an earlier Allow for the part of it
    Bastion needs (narrowed=True); (None, False) when no rule decides."""
    for rule in rules:
        if rule.direction != direction:
            continue
        if rule.matches(source, destination, port):
            return rule, False
        if rule.allows_narrowly(source, destination, port):
            return rule, True
    return None, False


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


def _flow(required):
    return required.direction, _probe_tag(required.source), _probe_tag(required.destination)


def decisions(rules, required):
    """[(port range, deciding rule or None, narrowed)] for the traffic `required` is about."""
    direction, source, destination = _flow(required)
    needed = port_ranges(required.ports)
    return [(piece, *first_decision(rules, direction, source, destination, piece[0]))
            for piece in _segments(needed, rules, direction)]


def _allowed_elsewhere(required_set, required):
    """Ports other required rules of the same direction and destination allow: not 'wider' when reused."""
    return [r for rule in required_set if rule.access == 'Allow' and rule.direction == required.direction
            and rule.destination == required.destination for r in port_ranges(rule.ports)]


def _shadows(rules, deny, required, port):
    """A Deny breaks a flow when it hides an allow that comes later, or when it would still come first if
    the required rule were added at its documented priority; otherwise the flow is just missing."""
    if deny.priority < required.priority:
        return True
    direction, source, destination = _flow(required)
    return any(rule.access == 'Allow' and rule.priority > deny.priority and rule.direction == direction
               and (rule.matches(source, destination, port) or rule.allows_narrowly(source, destination, port))
               for rule in rules)


def _check_allow(rules, required, required_set):
    verdicts = [(piece, None if rule is not None and rule.access == 'Deny'
                 and not _shadows(rules, rule, required, piece[0]) else rule, narrowed)
                for piece, rule, narrowed in decisions(rules, required)]
    blocked = [(piece, rule) for piece, rule, _ in verdicts if rule is not None and rule.access == 'Deny']
    if blocked:
        names = tuple(dict.fromkeys(rule.name for _, rule in blocked))
        ports = range_text(piece for piece, _ in blocked)
        return Finding(required.name, 'breaking',
                       f'{required.direction.lower()} {ports} from {required.source} to {required.destination} is '
                       f'denied by {", ".join(names)} before any allow rule: Bastion stops working', names)
    uncovered = [piece for piece, rule, _ in verdicts if rule is None]
    covering = tuple(dict.fromkeys(rule for _, rule, _ in verdicts if rule is not None))
    if uncovered:
        refused = ' (Azure refuses this NSG on AzureBastionSubnet without it)' if required.name in AZURE_REQUIRED \
            else ''
        return Finding(required.name, 'missing',
                       f'no rule allows {required.direction.lower()} {range_text(uncovered)} from {required.source} '
                       f'to {required.destination}{refused}', tuple(r.name for r in covering))
    narrowing = tuple(dict.fromkeys(rule for _, rule, narrowed in verdicts if narrowed))
    if narrowing:
        return Finding(required.name, 'narrowed',
                       '; '.join(f'{rule.name} allows it only from {", ".join(rule.sources)}, not all of '
                                 f'{required.source}: Bastion works for those clients, kept as it is'
                                 for rule in narrowing), tuple(r.name for r in covering))
    wider = []
    for rule in covering:
        extra = subtract(rule.ports, _allowed_elsewhere(required_set, required))
        if extra:
            wider.append(f'{rule.name} also allows ports {range_text(extra)}')
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
    for piece, rule in ((p, first_match(rules, 'Outbound', BASTION_SIDE, VNET, p[0]))
                        for p in _segments(ALL_PORTS, rules, 'Outbound')):
        if rule is not None and rule.access == 'Deny':
            continue
        extra = subtract([piece], allowed_ports)
        if extra:
            leaks.append((extra, rule))
    return leaks


def _check_deny(rules, required, required_set):
    allowed = [r for rule in required_set if rule.access == 'Allow' and rule.direction == 'Outbound'
               and rule.destination == 'VirtualNetwork' for r in port_ranges(rule.ports)]
    leaks = _vnet_outbound(rules, allowed)
    if not leaks:
        deciding = tuple(dict.fromkeys(
            rule.name for rule in rules if rule.direction == 'Outbound' and rule.access == 'Deny'
            and rule.matches(BASTION_SIDE, VNET, 0)))
        return Finding(required.name, 'present', 'every other port to VirtualNetwork is denied', deciding)
    through_default = [piece for extra, rule in leaks if rule is None for piece in extra]
    through_rules = tuple(dict.fromkeys(rule.name for _, rule in leaks if rule is not None))
    if through_default:
        return Finding(required.name, 'missing',
                       f'no Deny rule: ports {range_text(through_default)} reach VirtualNetwork through '
                       f'{DEFAULT_VNET_OUTBOUND}', through_rules)
    ports = range_text(piece for extra, _ in leaks for piece in extra)
    return Finding(required.name, 'wider',
                   f'ports {ports} reach VirtualNetwork through {", ".join(through_rules)}', through_rules)


def _warnings(rules, ports, vm_ports):
    found = []
    for rule in rules:
        if rule.access == 'Deny' and rule.uses_prefixes:
            found.append(Finding('', 'warning', f'{rule.name} denies by address prefix; its effect on Bastion\'s '
                                                'service tags was not evaluated', (rule.name,)))
    target = port_ranges(ports)
    for port in vm_ports:
        port = int(port)
        if any(low <= port <= high for low, high in target):
            continue
        rule = first_match(rules, 'Outbound', BASTION_SIDE, VNET, port)
        if rule is not None and rule.access == 'Deny':
            found.append(Finding('', 'warning', f'VM port {port} used by native client is blocked by {rule.name}: '
                                                'connections to it will be refused', (rule.name,)))
    return found


def check(nsg, ports=None, vm_ports=(22, 3389), bastion_prefixes=()):
    """Report on an NSG (ARM JSON, or None when AzureBastionSubnet has none) against the rule set for `ports`.

    vm_ports: ports the VMs are reached on by native client; one blocked and outside `ports` is a warning.
    bastion_prefixes: AzureBastionSubnet's address prefixes (rules may name the subnet instead of '*')."""
    required_set = bastion_rule_set(ports)
    ports_reached = target_ports(ports)
    if nsg is None:
        findings = [Finding('', 'no-nsg', 'AzureBastionSubnet has no network security group: nothing limits the '
                                          'ports native client reaches')]
        findings += [Finding(r.name, 'missing', 'no NSG') for r in required_set]
        return Report('', ports_reached, findings)
    rules = user_rules(nsg, bastion_prefixes)
    findings = [(_check_deny if r.access == 'Deny' else _check_allow)(rules, r, required_set) for r in required_set]
    findings += _warnings(rules, ports_reached, vm_ports)
    return Report(nsg.get('id') or nsg.get('name', ''), ports_reached, findings)
