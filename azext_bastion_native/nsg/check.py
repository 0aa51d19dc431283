"""How an existing NSG (ARM JSON: properties.securityRules[]) compares with Bastion's rule set. Pure.

Evaluated the way NSGs are: per direction, lowest priority number first, first match wins. A rule decides a flow only
when it covers all of it: the protocol, the destination port, every source port (Bastion's connections leave from
any source port, so an Allow of source ports 1-2 lets none of them through) and both addresses. Bastion's own flows
are TCP; Kerberos and DNS use UDP as well. A '*' on Bastion's own side of a rule is its subnet: VirtualNetwork or a
prefix holding AzureBastionSubnet covers it too. Other address prefixes and application security groups cannot be
related to service tags without Azure's tag ranges: they never count as allowing a flow (a Deny using them is
reported as a warning), with one exception Microsoft documents: the inbound 443 rule may come from "a set of
public IP addresses that you specify" instead of Internet. Such a rule is "narrowed": Bastion still works for
those clients, so it is compliant and kept as it is.

What reaches the virtual network is judged more widely than what allows a flow: an outbound Allow to
VirtualNetwork, to a private prefix, to a prefix inside the virtual network's address space or to an application
security group, ahead of the Deny and on ports the rule set does not ask for, leaves those ports open. That is a
leak: reported as `wider` on the Deny, and the check fails."""

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Optional, Sequence, Tuple

from azext_bastion_native.nsg.ports import ALL_PORTS, PortRange, PortRanges, port_ranges, range_text, subtract
from azext_bastion_native.nsg.rule_set import AZURE_REQUIRED, Network, Rule, bastion_rule_set, target_ports

Json = dict[str, Any]
Net = Any       # ipaddress.IPv4Network | ipaddress.IPv6Network

ANY_ADDRESSES = ('*', 'any', '0.0.0.0/0', '::/0')
VNET = 'virtualnetwork'
INTERNET = 'internet'
BASTION_SIDE = '<azurebastionsubnet>'     # the subnet itself: what '*' stands for on Bastion's side of a rule
ASG = 'asg:'                              # an application security group among a rule's addresses: 'asg:<name>'
# The kinds `nsg apply` fixes with rules of its own; a leak through a rule of the user's fails the check as well.
FAILING_KINDS = ('no-nsg', 'missing', 'breaking')
# The kinds that need nothing: everything else is worth a look.
FINE_KINDS = ('present', 'narrowed')
# Azure's default AllowVnetOutBound: what reaches the virtual network when no rule of ours denies it.
DEFAULT_VNET_OUTBOUND = 'AllowVnetOutBound (default, 65000)'
EVERY_SOURCE_PORT: PortRanges = ((1, 65535),)
LEAK_PROTOCOLS = ('tcp', 'udp')


def _network(address: str) -> Optional[Net]:
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None


def _is_prefix(address: str) -> bool:
    return not address.startswith(ASG) and any(ch.isdigit() for ch in address) and address not in ANY_ADDRESSES


def _holds(address: str, inner: Net) -> bool:
    net = _network(address) if _is_prefix(address) else None
    return net is not None and inner.version == net.version and inner.subnet_of(net)


def _ip_tag(tag: str) -> Optional[Net]:
    """A probe tag that is an address (a DNS server, a domain controller) rather than a service tag."""
    return _network(tag) if _is_prefix(tag) else None


def _address_matches(addresses: Iterable[str], tag: str, bastion_nets: Sequence[Net] = ()) -> bool:
    addresses = tuple(addresses)
    if tag == BASTION_SIDE:
        return any(a in ANY_ADDRESSES or a == VNET or any(_holds(a, b) for b in bastion_nets) for a in addresses)
    address = _ip_tag(tag)
    if address is not None:     # only addresses inside the virtual network are probed: VirtualNetwork holds them
        return any(a in ANY_ADDRESSES or a == VNET or _holds(a, address) for a in addresses)
    return any(a in ANY_ADDRESSES or a == tag for a in addresses)


def _public_only(addresses: Sequence[str]) -> bool:
    """Every address is a prefix on the public Internet (what Microsoft allows in place of the Internet tag)."""
    nets = [_network(a) if _is_prefix(a) else None for a in addresses]
    return bool(nets) and all(net is not None and net.is_global for net in nets)


@dataclass(frozen=True)
class UserRule:  # pylint: disable=too-many-instance-attributes
    """One rule of the user's NSG, normalised for evaluation."""
    name: str
    priority: int
    direction: str
    access: str
    protocol: str
    sources: Tuple[str, ...]
    destinations: Tuple[str, ...]
    ports: PortRanges                       # destination ports ((low, high), ...)
    source_ports: PortRanges = ALL_PORTS
    raw: Optional[Json] = field(default=None, compare=False, hash=False)
    bastion_nets: Tuple[Net, ...] = field(default=(), compare=False, hash=False)    # AzureBastionSubnet's prefixes

    def carries(self, port: int, protocol: str = 'tcp') -> bool:
        return self.protocol.lower() in ('*', protocol) and any(low <= port <= high for low, high in self.ports)

    @property
    def every_source_port(self) -> bool:
        return not subtract(EVERY_SOURCE_PORT, self.source_ports)

    def _addressed(self, source: str, destination: str) -> bool:
        return (_address_matches(self.sources, source, self.bastion_nets)
                and _address_matches(self.destinations, destination, self.bastion_nets))

    def matches(self, source: str, destination: str, port: int, protocol: str = 'tcp') -> bool:
        """The rule applies to all of this traffic."""
        return self.every_source_port and self.carries(port, protocol) and self._addressed(source, destination)

    def allows_narrowly(self, source: str, destination: str, port: int, protocol: str = 'tcp') -> bool:
        """An Allow for only part of this traffic that Bastion still works with (see the module docstring)."""
        sides = ((self.sources, source), (self.destinations, destination))
        return (self.access == 'Allow' and self.every_source_port and self.carries(port, protocol)
                and not self.matches(source, destination, port, protocol)
                and all(_address_matches(a, tag, self.bastion_nets) or (tag == INTERNET and _public_only(a))
                        for a, tag in sides))

    def allows_only_some_source_ports(self, source: str, destination: str, port: int, protocol: str = 'tcp') -> bool:
        return (self.access == 'Allow' and not self.every_source_port and self.carries(port, protocol)
                and self._addressed(source, destination))

    @property
    def uses_prefixes(self) -> bool:
        return any(_is_prefix(a) or a.startswith(ASG) for a in self.sources + self.destinations)


class Flow(NamedTuple):
    direction: str
    source: str         # probe tags: BASTION_SIDE, a service tag (lower case) or an address
    destination: str
    protocol: str       # 'tcp' | 'udp'


class Decision(NamedTuple):
    piece: PortRange
    rule: Optional[UserRule]    # the rule that decides this piece of the flow, None when none does
    narrowed: bool
    flow: Flow


@dataclass(frozen=True)
class Finding:
    rule: str           # the required rule this is about ('' for NSG-wide warnings)
    kind: str           # 'present' | 'narrowed' | 'missing' | 'wider' | 'breaking' | 'warning' | 'no-nsg'
    detail: str
    related: Tuple[str, ...] = ()   # names of the user's rules involved
    leak: bool = False              # wider: ports reach the virtual network past the Deny

    @property
    def fails(self) -> bool:
        """`nsg check` exits 3 on this finding."""
        return self.kind in FAILING_KINDS or self.leak


@dataclass
class Report:
    nsg: str
    ports: list[str]
    findings: list[Finding]
    host: str = ''

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]

    @property
    def ok(self) -> bool:
        return not self.failing

    @property
    def azure_accepts(self) -> bool:
        """Azure's own check would take this NSG on AzureBastionSubnet: only the rules it requires count."""
        return not any(f.rule in AZURE_REQUIRED and f.kind in FAILING_KINDS for f in self.findings)

    def as_dict(self) -> Json:
        return {
            'host': self.host, 'nsg': self.nsg, 'ports': list(self.ports), 'compliant': self.ok,
            'findings': [{'rule': f.rule, 'kind': f.kind, 'detail': f.detail, 'related': list(f.related),
                          'fails': f.fails} for f in self.findings],
        }


def arm_properties(rule: Json) -> Json:
    """An ARM resource's properties (the resource itself when it is already flat)."""
    properties: Json = rule.get('properties', rule)
    return properties


def _listed(props: Json, single: str, plural: str) -> Tuple[str, ...]:
    values = list(props.get(plural) or [])
    if props.get(single):
        values = [props[single]] + values
    return tuple(str(v).lower() for v in values)


def _groups(props: Json, key: str) -> Tuple[str, ...]:
    """Application security groups (ARM: [{"id": ...}]) as addresses 'asg:<name>'."""
    return tuple(ASG + str((group or {}).get('id') or '').rstrip('/').rsplit('/', 1)[-1].lower()
                 for group in props.get(key) or [])


def user_rules(nsg: Optional[Json], network: Optional[Network] = None) -> list[UserRule]:
    """The NSG's own rules (not Azure's default ones), normalised, sorted by direction and priority."""
    network = network or Network()
    bastion_nets = tuple(net for net in (_network(p) for p in network.bastion_prefixes) if net is not None)
    rules = []
    for rule in arm_properties(nsg or {}).get('securityRules') or []:
        props = arm_properties(rule)
        rules.append(UserRule(
            name=rule.get('name', ''), priority=int(props.get('priority', 0)),
            direction=str(props.get('direction', '')).capitalize(), access=str(props.get('access', '')).capitalize(),
            protocol=str(props.get('protocol', '*')),
            sources=_listed(props, 'sourceAddressPrefix', 'sourceAddressPrefixes')
            + _groups(props, 'sourceApplicationSecurityGroups'),
            destinations=_listed(props, 'destinationAddressPrefix', 'destinationAddressPrefixes')
            + _groups(props, 'destinationApplicationSecurityGroups'),
            ports=port_ranges(_listed(props, 'destinationPortRange', 'destinationPortRanges')),
            source_ports=port_ranges(_listed(props, 'sourcePortRange', 'sourcePortRanges')) or ALL_PORTS,
            raw=rule, bastion_nets=bastion_nets))
    return sorted(rules, key=lambda r: (r.direction, r.priority))


def _probe_tag(address: str) -> str:
    return BASTION_SIDE if address == '*' else address.lower()


def first_match(rules: Sequence[UserRule], direction: str, source: str, destination: str, port: int,
                protocol: str = 'tcp') -> Optional[UserRule]:
    """The rule an NSG applies to this traffic (lowest priority number first), or None."""
    return first_decision(rules, Flow(direction, source, destination, protocol), port)[0]


def first_decision(rules: Sequence[UserRule], flow: Flow, port: int) -> Tuple[Optional[UserRule], bool]:
    """(rule, narrowed): the first rule that applies to all of this traffic, or an earlier Allow for the part of it
    Bastion needs (narrowed=True); (None, False) when no rule decides."""
    for rule in rules:
        if rule.direction != flow.direction:
            continue
        if rule.matches(flow.source, flow.destination, port, flow.protocol):
            return rule, False
        if rule.allows_narrowly(flow.source, flow.destination, port, flow.protocol):
            return rule, True
    return None, False


def _segments(needed: Iterable[PortRange], rules: Sequence[UserRule], direction: str) -> list[PortRange]:
    """Split the needed port ranges where any rule of the direction starts or ends: each piece is uniform."""
    pieces: list[PortRange] = []
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


def flows(required: Rule) -> list[Flow]:
    """The traffic a required rule is about: one flow per destination address and protocol."""
    return [Flow(required.direction, _probe_tag(required.source), _probe_tag(destination), protocol)
            for destination in required.destinations for protocol in required.probed]


def decisions(rules: Sequence[UserRule], required: Rule) -> list[Decision]:
    """Who decides each piece of the traffic `required` is about."""
    needed = port_ranges(required.ports)
    return [Decision(piece, *first_decision(rules, flow, piece[0]), flow)
            for flow in flows(required) for piece in _segments(needed, rules, flow.direction)]


def _allowed_elsewhere(required_set: Sequence[Rule], required: Rule) -> list[PortRange]:
    """Ports other required rules of the same direction and destination allow: not 'wider' when reused."""
    return [r for rule in required_set if rule.access == 'Allow' and rule.direction == required.direction
            and rule.destination == required.destination for r in port_ranges(rule.ports)]


def _shadows(rules: Sequence[UserRule], deny: UserRule, required: Rule, port: int, flow: Flow) -> bool:
    """A Deny breaks a flow when it hides an allow that comes later, or when it would still come first if
    the required rule were added at its documented priority; otherwise the flow is just missing."""
    if deny.priority < required.priority:
        return True
    return any(rule.access == 'Allow' and rule.priority > deny.priority and rule.direction == flow.direction
               and (rule.matches(flow.source, flow.destination, port, flow.protocol)
                    or rule.allows_narrowly(flow.source, flow.destination, port, flow.protocol))
               for rule in rules)


def _over(protocols: Iterable[str], required: Rule) -> str:
    """' over UDP' when only some of the rule's protocols are concerned."""
    concerned = sorted(set(protocols))
    return '' if len(required.probed) == 1 or len(concerned) == len(required.probed) else \
        f' over {"/".join(p.upper() for p in concerned)}'


def _only_some_source_ports(rules: Sequence[UserRule], uncovered: Sequence[Decision]) -> str:
    """Why an allow that seems to be there does not count: it covers only some source ports."""
    partial = dict.fromkeys(rule for rule in rules for d in uncovered if rule.allows_only_some_source_ports(
        d.flow.source, d.flow.destination, d.piece[0], d.flow.protocol))
    return ''.join(f"; {rule.name} allows it only from source ports {range_text(rule.source_ports)}, and Bastion's "
                   'connections leave from any source port' for rule in partial)


def _wide_parts(rule: UserRule, required: Rule, required_set: Sequence[Rule]) -> list[str]:
    wider = []
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
    return wider


def _check_allow(rules: Sequence[UserRule], required: Rule, required_set: Sequence[Rule]) -> Finding:
    verdicts = [d if d.rule is None or d.rule.access != 'Deny' or _shadows(rules, d.rule, required, d.piece[0], d.flow)
                else d._replace(rule=None) for d in decisions(rules, required)]
    blocked = [d for d in verdicts if d.rule is not None and d.rule.access == 'Deny']
    if blocked:
        names = tuple(dict.fromkeys(d.rule.name for d in blocked if d.rule is not None))
        ports = range_text(sorted(set(d.piece for d in blocked)))
        return Finding(required.name, 'breaking',
                       f'{required.direction.lower()} {ports}{_over((d.flow.protocol for d in blocked), required)} '
                       f'from {required.source} to {required.destination} is denied by {", ".join(names)} before '
                       f'any allow rule: {required.impact}', names)
    uncovered = [d for d in verdicts if d.rule is None]
    covering = tuple(dict.fromkeys(d.rule for d in verdicts if d.rule is not None))
    if uncovered:
        refused = ' (Azure refuses this NSG on AzureBastionSubnet without it)' if required.name in AZURE_REQUIRED \
            else ''
        ports = range_text(sorted(set(d.piece for d in uncovered)))
        return Finding(required.name, 'missing',
                       f'no rule allows {required.direction.lower()} {ports}'
                       f'{_over((d.flow.protocol for d in uncovered), required)} from {required.source} '
                       f'to {required.destination}{refused}{_only_some_source_ports(rules, uncovered)}',
                       tuple(r.name for r in covering))
    narrowing = tuple(dict.fromkeys(d.rule for d in verdicts if d.narrowed and d.rule is not None))
    if narrowing:
        return Finding(required.name, 'narrowed',
                       '; '.join(f'{rule.name} allows it only from {", ".join(rule.sources)}, not all of '
                                 f'{required.source}: Bastion works for those clients, kept as it is'
                                 for rule in narrowing), tuple(r.name for r in covering))
    wider = [part for rule in covering for part in _wide_parts(rule, required, required_set)]
    names = tuple(r.name for r in covering)
    if wider:
        return Finding(required.name, 'wider', '; '.join(wider), names)
    return Finding(required.name, 'present', f'allowed by {", ".join(names)}', names)


def _reaches_vnet(address: str, vnet_nets: Sequence[Net]) -> bool:
    """An address of a rule's destination inside the virtual network, or private (a peered network's, on-premises
    behind the gateway: what the VirtualNetwork tag holds), or an application security group (VMs' NICs)."""
    if address.startswith(ASG):
        return True
    net = _network(address) if _is_prefix(address) else None
    return net is not None and (net.is_private or any(net.version == v.version and net.overlaps(v)
                                                      for v in vnet_nets))


def _denies_all_of(deny: UserRule, address: str, protocol: str, piece: PortRange) -> bool:
    """`deny` stops this piece of the traffic to `address` (a prefix or 'asg:<name>') before it gets further."""
    net = _network(address) if _is_prefix(address) else None
    covered = any(a in ANY_ADDRESSES or a == VNET or a == address or (net is not None and _holds(a, net))
                  for a in deny.destinations)
    return (deny.access == 'Deny' and deny.every_source_port and deny.carries(piece[0], protocol)
            and _address_matches(deny.sources, BASTION_SIDE, deny.bastion_nets) and covered)


def _leaks_by_address(rules: Sequence[UserRule], allowed: Sequence[PortRange],
                      vnet_nets: Sequence[Net]) -> list[Tuple[UserRule, list[PortRange], Tuple[str, ...]]]:
    """Allows to prefixes and application security groups in the virtual network, ahead of any Deny that covers them,
    on ports nobody asked for: (rule, ports, addresses)."""
    outbound = [r for r in rules if r.direction == 'Outbound']
    leaks = []
    for rule in outbound:
        inside = tuple(a for a in rule.destinations if _reaches_vnet(a, vnet_nets))
        if rule.access != 'Allow' or not inside or any(a in ANY_ADDRESSES or a == VNET for a in rule.destinations) \
                or not _address_matches(rule.sources, BASTION_SIDE, rule.bastion_nets):
            continue    # VirtualNetwork and '*' are judged by the flow to VirtualNetwork itself
        earlier = [r for r in outbound if r.priority < rule.priority]
        protocols = [p for p in LEAK_PROTOCOLS if rule.protocol.lower() in ('*', p)]
        open_pieces = [piece for piece in _segments(subtract(rule.ports, allowed), outbound, 'Outbound')
                       if not all(any(_denies_all_of(deny, address, protocol, piece) for deny in earlier)
                                  for address in inside for protocol in protocols)]
        if open_pieces:
            leaks.append((rule, open_pieces, inside))
    return leaks


def _vnet_outbound(rules: Sequence[UserRule],
                   allowed: Sequence[PortRange]) -> list[Tuple[list[PortRange], Optional[UserRule]]]:
    """Ports that reach VirtualNetwork although they are not target ports: (ports, deciding rule or None)."""
    leaks = []
    for protocol in LEAK_PROTOCOLS:
        for piece in _segments(ALL_PORTS, rules, 'Outbound'):
            rule = first_match(rules, 'Outbound', BASTION_SIDE, VNET, piece[0], protocol)
            if rule is not None and rule.access == 'Deny':
                continue
            extra = subtract([piece], allowed)
            if extra:
                leaks.append((extra, rule))
    return leaks


def _check_deny(rules: Sequence[UserRule], required: Rule, required_set: Sequence[Rule],
                network: Network) -> Finding:
    allowed = [r for rule in required_set if rule.reaches_vnet for r in port_ranges(rule.ports)]
    vnet_nets = [net for net in (_network(p) for p in network.vnet_prefixes) if net is not None]
    leaks = _vnet_outbound(rules, allowed)
    by_address = _leaks_by_address(rules, allowed, vnet_nets)
    through_default = sorted(set(piece for extra, rule in leaks if rule is None for piece in extra))
    through_rules = tuple(dict.fromkeys(rule.name for _, rule in leaks if rule is not None))
    if through_default:
        return Finding(required.name, 'missing',
                       f'no Deny rule: ports {range_text(through_default)} reach VirtualNetwork through '
                       f'{DEFAULT_VNET_OUTBOUND}', through_rules)
    if not leaks and not by_address:
        deciding = tuple(dict.fromkeys(
            rule.name for rule in rules if rule.direction == 'Outbound' and rule.access == 'Deny'
            and rule.matches(BASTION_SIDE, VNET, 0)))
        return Finding(required.name, 'present', 'every other port to VirtualNetwork is denied', deciding)
    parts = []
    if leaks:
        ports = range_text(sorted(set(piece for extra, _ in leaks for piece in extra)))
        parts.append(f'ports {ports} reach VirtualNetwork through {", ".join(through_rules)}')
    for rule, pieces, inside in by_address:
        parts.append(f'{rule.name} allows ports {range_text(pieces)} to {", ".join(inside)} in the virtual network '
                     'ahead of the Deny')
    names = tuple(dict.fromkeys(through_rules + tuple(rule.name for rule, _, _ in by_address)))
    return Finding(required.name, 'wider', '; '.join(parts), names, leak=True)


def _warnings(rules: Sequence[UserRule], ports: Sequence[str], vm_ports: Iterable[object]) -> list[Finding]:
    found = []
    for rule in rules:
        if rule.access == 'Deny' and rule.uses_prefixes:
            found.append(Finding('', 'warning', f'{rule.name} denies by address prefix; its effect on Bastion\'s '
                                                'service tags was not evaluated', (rule.name,)))
        elif rule.access == 'Deny' and not rule.every_source_port:
            found.append(Finding('', 'warning', f'{rule.name} denies only source ports '
                                                f'{range_text(rule.source_ports)}: connections that happen to leave '
                                                'from those ports fail', (rule.name,)))
    target = port_ranges(ports)
    for value in vm_ports:
        port = int(str(value))
        if any(low <= port <= high for low, high in target):
            continue
        blocker = first_match(rules, 'Outbound', BASTION_SIDE, VNET, port)
        if blocker is not None and blocker.access == 'Deny':
            found.append(Finding('', 'warning', f'VM port {port} used by native client is blocked by {blocker.name}: '
                                                'connections to it will be refused', (blocker.name,)))
    return found


def check(nsg: Optional[Json], ports: Optional[Sequence[object]] = None, vm_ports: Iterable[object] = (22, 3389),
          network: Optional[Network] = None) -> Report:
    """Report on an NSG (ARM JSON, or None when AzureBastionSubnet has none) against the rule set for `ports`.

    vm_ports: ports the VMs are reached on by native client; one blocked and outside `ports` is a warning.
    network: AzureBastionSubnet's prefixes (rules may name the subnet instead of '*'), the virtual network's address
    space and DNS servers, and whether the host has Kerberos on."""
    network = network or Network()
    required_set = bastion_rule_set(ports, network)
    ports_reached = target_ports(ports)
    if nsg is None:
        findings = [Finding('', 'no-nsg', 'AzureBastionSubnet has no network security group: nothing limits the '
                                          'ports native client reaches')]
        findings += [Finding(r.name, 'missing', 'no NSG') for r in required_set]
        return Report('', ports_reached, findings)
    rules = user_rules(nsg, network)
    findings = [_check_deny(rules, r, required_set, network) if r.access == 'Deny'
                else _check_allow(rules, r, required_set) for r in required_set]
    findings += _warnings(rules, ports_reached, vm_ports)
    return Report(nsg.get('id') or nsg.get('name', ''), ports_reached, findings)
