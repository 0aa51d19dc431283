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
class Rule:
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
