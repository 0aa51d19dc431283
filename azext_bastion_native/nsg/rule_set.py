"""The NSG rule set for AzureBastionSubnet (DESIGN.md section 5): Azure's required rules, the target ports native
client uses, and a Deny for every other port to the virtual network, as data: the rules, their rows for
-o table/json, and their ARM JSON. Pure: no Azure calls, no azure.cli imports."""

from dataclasses import dataclass, field

from azext_bastion_native.nsg.ports import DEFAULT_TARGET_PORTS, parse_ports

# Azure refuses an NSG on AzureBastionSubnet without these (NetworkSecurityGroupNotCompliantForAzureBastionSubnet),
# Microsoft's published list: learn.microsoft.com/azure/bastion/bastion-nsg.
AZURE_REQUIRED = ('AllowHttpsInbound', 'AllowGatewayManagerInbound', 'AllowAzureLoadBalancerInbound',
                  'AllowBastionHostCommunication', 'AllowSshRdpOutbound', 'AllowAzureCloudOutbound',
                  'AllowBastionCommunication', 'AllowHttpOutbound')
# The rule for the other ports (--ports) native client should reach; 22 and 3389 stay in AllowSshRdpOutbound,
# which Azure requires whatever ports are used.
CUSTOM_PORTS_RULE = 'AllowCustomPortsOutbound'


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


def custom_ports(ports=None):
    """The --ports beyond SSH 22 and RDP 3389 (those two are always in the rule set)."""
    return [p for p in parse_ports(ports) if p not in DEFAULT_TARGET_PORTS]


def target_ports(ports=None):
    """Every port the rule set lets Bastion reach the VMs on: 22, 3389 and the --ports."""
    return list(DEFAULT_TARGET_PORTS) + custom_ports(ports)


def bastion_rule_set(ports=None):
    """The whole rule set, in priority order: Azure's required rules, the --ports, then the Deny that limits the
    virtual network to those ports (the source document's "limit port access")."""
    extra = tuple(custom_ports(ports))
    custom = [Rule(CUSTOM_PORTS_RULE, 'Outbound', 105, '*', 'VirtualNetwork', extra, '*',
                   description='Other native client target ports (--ports)')] if extra else []
    return [
        Rule('AllowHttpsInbound', 'Inbound', 120, 'Internet', '*', ('443',), 'Tcp',
             description='Clients reach Bastion on 443'),
        Rule('AllowGatewayManagerInbound', 'Inbound', 130, 'GatewayManager', '*', ('443',), 'Tcp',
             description='Azure control plane'),
        Rule('AllowAzureLoadBalancerInbound', 'Inbound', 140, 'AzureLoadBalancer', '*', ('443',), 'Tcp',
             description='Health probes'),
        Rule('AllowBastionHostCommunication', 'Inbound', 150, 'VirtualNetwork', 'VirtualNetwork',
             ('8080', '5701'), '*', description='Bastion data plane between instances'),
        Rule('AllowSshRdpOutbound', 'Outbound', 100, '*', 'VirtualNetwork', DEFAULT_TARGET_PORTS, '*',
             description='SSH and RDP to the VMs (Azure requires both)'),
        *custom,
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
