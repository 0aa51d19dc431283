"""The NSG rule set for AzureBastionSubnet: Azure's required rules, the target ports native client uses, what a
Kerberos host and the virtual network's own DNS servers need, and a Deny for every other port to the virtual
network, as data: the rules, their rows for -o table/json, and their ARM JSON. Pure: no Azure calls, no azure.cli
imports."""

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Tuple

from azext_bastion_native.nsg.ports import DEFAULT_TARGET_PORTS, parse_ports

# Azure refuses an NSG on AzureBastionSubnet without these (NetworkSecurityGroupNotCompliantForAzureBastionSubnet),
# Microsoft's published list: learn.microsoft.com/azure/bastion/bastion-nsg.
AZURE_REQUIRED = ('AllowHttpsInbound', 'AllowGatewayManagerInbound', 'AllowAzureLoadBalancerInbound',
                  'AllowBastionHostCommunication', 'AllowSshRdpOutbound', 'AllowAzureCloudOutbound',
                  'AllowBastionCommunication', 'AllowHttpOutbound')
# The rule for the other ports (--ports) native client should reach; 22 and 3389 stay in AllowSshRdpOutbound,
# which Azure requires whatever ports are used.
CUSTOM_PORTS_RULE = 'AllowCustomPortsOutbound'
DENY_RULE = 'DenyOtherVnetOutbound'
KERBEROS_RULE = 'AllowKerberosOutbound'
DNS_RULE = 'AllowDnsOutbound'
# What a Kerberos host reaches on its domain controller: DNS 53, Kerberos 88, LDAP 389, kpasswd 464 (TCP and UDP
# each) and LDAPS 636 (TCP). Microsoft's "Configure Bastion for Kerberos authentication" (learn.microsoft.com/azure/
# bastion/kerberos-authentication-portal) puts the domain controller in the host's virtual network and makes it the
# network's custom DNS server; the ports are Active Directory's own.
KERBEROS_PORTS = ('53', '88', '389', '464', '636')
DNS_PORTS = ('53',)
VIRTUAL_NETWORK = 'VirtualNetwork'


@dataclass(frozen=True)
class Network:
    """What the rule set and the check know about the host's network besides the NSG."""
    bastion_prefixes: Tuple[str, ...] = ()  # AzureBastionSubnet's address prefixes
    vnet_prefixes: Tuple[str, ...] = ()     # the virtual network's address space
    dns_servers: Tuple[str, ...] = ()       # the virtual network's custom DNS servers (dhcpOptions.dnsServers)
    kerberos: bool = False                  # the host has enableKerberos on

    def dns_inside(self) -> Tuple[str, ...]:
        """The DNS servers inside the virtual network's address space: the Deny of the virtual network hits them."""
        space = [net for net in (_network(p) for p in self.vnet_prefixes) if net is not None]
        inside = []
        for server in self.dns_servers:
            try:
                address = ipaddress.ip_address(str(server).strip())
            except ValueError:
                continue
            if any(address.version == net.version and address in net for net in space):
                inside.append(str(address))
        return tuple(inside)


def _network(prefix: str) -> Optional[Any]:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True)
class Rule:  # pylint: disable=too-many-instance-attributes
    name: str
    direction: str          # 'Inbound' | 'Outbound'
    priority: int
    source: str
    destination: str        # a service tag, '*', or addresses separated by ','
    ports: Tuple[str, ...] = field(default_factory=tuple)   # destination port ranges, e.g. ('22', '3389') or ('*',)
    protocol: str = '*'     # 'Tcp' | '*'
    access: str = 'Allow'   # 'Allow' | 'Deny'
    description: str = ''
    impact: str = ''        # what stops working when this rule's traffic is blocked
    probed: Tuple[str, ...] = ('tcp',)     # the protocols the traffic uses (Bastion's own flows are all TCP)

    @property
    def destinations(self) -> Tuple[str, ...]:
        return tuple(part.strip() for part in self.destination.split(','))

    @property
    def reaches_vnet(self) -> bool:
        """An outbound allow into the virtual network: its ports are ones the Deny leaves open on purpose."""
        return self.access == 'Allow' and self.direction == 'Outbound' and (
            self.destination == VIRTUAL_NETWORK or all(_network(d) is not None for d in self.destinations))


def custom_ports(ports: Optional[Sequence[object]] = None) -> list[str]:
    """The --ports beyond SSH 22 and RDP 3389 (those two are always in the rule set)."""
    return [p for p in parse_ports(ports) if p not in DEFAULT_TARGET_PORTS]


def target_ports(ports: Optional[Sequence[object]] = None) -> list[str]:
    """Every port the rule set lets Bastion reach the VMs on: 22, 3389 and the --ports."""
    return list(DEFAULT_TARGET_PORTS) + custom_ports(ports)


def _network_rules(network: Network) -> list[Rule]:
    dns = ','.join(network.dns_inside())
    if network.kerberos:
        return [Rule(KERBEROS_RULE, 'Outbound', 106, '*', dns or VIRTUAL_NETWORK, KERBEROS_PORTS, '*',
                     description='Kerberos: DNS, Kerberos, LDAP, kpasswd and LDAPS to the domain controller '
                                 '(--enable-kerberos)',
                     impact='Kerberos sign-in to domain-joined VMs fails', probed=('tcp', 'udp'))]
    if dns:
        return [Rule(DNS_RULE, 'Outbound', 107, '*', dns, DNS_PORTS, '*',
                     description="DNS to the virtual network's own DNS servers",
                     impact="Bastion cannot resolve names through the virtual network's DNS servers",
                     probed=('tcp', 'udp'))]
    return []


def bastion_rule_set(ports: Optional[Sequence[object]] = None, network: Optional[Network] = None) -> list[Rule]:
    """The whole rule set, in priority order: Azure's required rules, the --ports, Kerberos and DNS when the host and
    its network need them, then the Deny that limits the virtual network to those ports (the source document's
    "limit port access")."""
    extra = tuple(custom_ports(ports))
    custom = [Rule(CUSTOM_PORTS_RULE, 'Outbound', 105, '*', VIRTUAL_NETWORK, extra, '*',
                   description='Other native client target ports (--ports)',
                   impact=f'connections through Bastion to port {",".join(extra)} fail (SSH 22 and RDP 3389 are '
                          'not affected)')] if extra else []
    stops = 'Bastion stops working'
    return [
        Rule('AllowHttpsInbound', 'Inbound', 120, 'Internet', '*', ('443',), 'Tcp',
             description='Clients reach Bastion on 443', impact=f'clients cannot reach Bastion: {stops}'),
        Rule('AllowGatewayManagerInbound', 'Inbound', 130, 'GatewayManager', '*', ('443',), 'Tcp',
             description='Azure control plane', impact=f'Azure cannot manage the host: {stops}'),
        Rule('AllowAzureLoadBalancerInbound', 'Inbound', 140, 'AzureLoadBalancer', '*', ('443',), 'Tcp',
             description='Health probes', impact=f'health probes fail: {stops}'),
        Rule('AllowBastionHostCommunication', 'Inbound', 150, VIRTUAL_NETWORK, VIRTUAL_NETWORK,
             ('8080', '5701'), '*', description='Bastion data plane between instances',
             impact=f"Bastion's instances cannot talk to each other: {stops}"),
        Rule('AllowSshRdpOutbound', 'Outbound', 100, '*', VIRTUAL_NETWORK, DEFAULT_TARGET_PORTS, '*',
             description='SSH and RDP to the VMs (Azure requires both)',
             impact='SSH and RDP through Bastion stop working'),
        *custom,
        *_network_rules(network or Network()),
        Rule('AllowAzureCloudOutbound', 'Outbound', 110, '*', 'AzureCloud', ('443',), 'Tcp',
             description='Diagnostics and metering', impact=f'diagnostics and metering fail: {stops}'),
        Rule('AllowBastionCommunication', 'Outbound', 120, VIRTUAL_NETWORK, VIRTUAL_NETWORK,
             ('8080', '5701'), '*', description='Bastion data plane between instances',
             impact=f"Bastion's instances cannot talk to each other: {stops}"),
        Rule('AllowHttpOutbound', 'Outbound', 130, '*', 'Internet', ('80',), '*',
             description='Session and certificate validation',
             impact=f'session and certificate validation fail: {stops}'),
        Rule(DENY_RULE, 'Outbound', 4000, '*', VIRTUAL_NETWORK, ('*',), '*', 'Deny',
             description='Every other port to the virtual network (above the default AllowVnetOutBound)'),
    ]


def rule_as_row(rule: Rule) -> dict[str, Any]:
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


def rule_to_arm(rule: Rule) -> dict[str, Any]:
    """A Rule in the ARM JSON shape of a security rule (what azure-mgmt-network's SecurityRule(mapping) takes)."""
    props: dict[str, Any] = {
        'priority': rule.priority, 'direction': rule.direction, 'access': rule.access, 'protocol': rule.protocol,
        'sourceAddressPrefix': rule.source, 'sourcePortRange': '*', 'description': rule.description,
    }
    if len(rule.destinations) == 1:
        props['destinationAddressPrefix'] = rule.destination
    else:
        props['destinationAddressPrefixes'] = list(rule.destinations)
    if len(rule.ports) == 1:
        props['destinationPortRange'] = rule.ports[0]
    else:
        props['destinationPortRanges'] = list(rule.ports)
    return {'name': rule.name, 'properties': props}
