"""The NSG rule set AzureBastionSubnet needs (DESIGN.md section 5), limited to the target ports native client uses,
as data: the rules, their rows for -o table/json, and their ARM JSON. Pure: no Azure calls, no azure.cli imports."""

from dataclasses import dataclass, field

from azext_bastion_native.nsg.ports import parse_ports

# The one rule of the set that carries the target ports (--ports).
TARGET_PORTS_RULE = 'AllowSshRdpOutbound'


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
        Rule(TARGET_PORTS_RULE, 'Outbound', 100, '*', 'VirtualNetwork', target_ports, '*',
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


def rule_named(rules, name):
    """The rule called ``name`` in ``rules`` (a rule set)."""
    return next(rule for rule in rules if rule.name == name)


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
