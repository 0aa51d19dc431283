"""Azure's check of the NSG on a subnet named AzureBastionSubnet: NetworkSecurityGroupNotCompliantForAzureBastionSubnet.

Azure refuses to associate an NSG with AzureBastionSubnet, and to change the rules of an NSG that is associated
with one, when the NSG lacks a rule Bastion needs. The flows come from Microsoft's published list
(learn.microsoft.com/azure/bastion/bastion-nsg); the message and code from the error users report
(e.g. Azure/azure-quickstart-templates#8655). How Azure decides is not published; modelled here as observed:
every required flow needs an explicit Allow that comes before any Deny covering it (Azure's default rules do not
count, MicrosoftDocs/azure-docs#80806 and #39840); the source of the inbound 443 rule may be narrowed to public
addresses ("the source can be either the Internet or a set of public IP addresses that you specify"); the
Bastion side of a rule ('*' in the list) may be VirtualNetwork or a prefix holding the subnet. All Bastion flows
are TCP. A Deny by address prefix covers only part of a flow and does not make the NSG non-compliant.
"""
from __future__ import annotations

import ipaddress

from ..responses import ArmError

BASTION_SUBNET_NAME = "azurebastionsubnet"
BASTION = "<AzureBastionSubnet>"
# (rule name in Microsoft's list, direction, source, destination, ports)
REQUIRED_FLOWS = (
    ("AllowHttpsInbound", "Inbound", "Internet", BASTION, (443,)),
    ("AllowGatewayManagerInbound", "Inbound", "GatewayManager", BASTION, (443,)),
    ("AllowAzureLoadBalancerInbound", "Inbound", "AzureLoadBalancer", BASTION, (443,)),
    ("AllowBastionHostCommunication", "Inbound", "VirtualNetwork", "VirtualNetwork", (8080, 5701)),
    ("AllowSshRdpOutbound", "Outbound", BASTION, "VirtualNetwork", (22, 3389)),
    ("AllowAzureCloudOutbound", "Outbound", BASTION, "AzureCloud", (443,)),
    ("AllowBastionCommunication", "Outbound", "VirtualNetwork", "VirtualNetwork", (8080, 5701)),
    ("AllowHttpOutbound", "Outbound", BASTION, "Internet", (80,)),
)
FULL, NARROWED = "full", "narrowed"


def _listed(props: dict, single: str, plural: str) -> list[str]:
    values = list(props.get(plural) or [])
    if props.get(single):
        values.insert(0, props[single])
    return [str(v).strip() for v in values]


def _network(address: str):
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None


def _covers(address: str, endpoint: str, subnet_nets: list) -> str | None:
    """How one address of a rule covers one end of a flow: FULL, NARROWED (part of it, still enough) or None."""
    lowered = address.lower()
    if lowered in ("*", "any", "0.0.0.0/0", "::/0"):
        return FULL
    if endpoint == BASTION:
        if lowered == "virtualnetwork":
            return FULL
        net = _network(address)
        holds = net is not None and any(s.version == net.version and s.subnet_of(net) for s in subnet_nets)
        return FULL if holds else None
    if lowered == endpoint.lower():
        return FULL
    if endpoint == "Internet":
        net = _network(address)
        return NARROWED if net is not None and net.is_global else None
    return None


def _side(addresses: list[str], endpoint: str, subnet_nets: list) -> str | None:
    grades = {_covers(a, endpoint, subnet_nets) for a in addresses}
    return FULL if FULL in grades else (NARROWED if NARROWED in grades else None)


def _ports(props: dict) -> list[tuple[int, int]]:
    ranges = []
    for value in _listed(props, "destinationPortRange", "destinationPortRanges"):
        if value == "*":
            return [(0, 65535)]
        low, _, high = value.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def _grade(props: dict, source: str, destination: str, port: int, subnet_nets: list) -> str | None:
    if str(props.get("protocol", "*")).lower() not in ("*", "tcp"):
        return None
    if not any(low <= port <= high for low, high in _ports(props)):
        return None
    grades = (_side(_listed(props, "sourceAddressPrefix", "sourceAddressPrefixes"), source, subnet_nets),
              _side(_listed(props, "destinationAddressPrefix", "destinationAddressPrefixes"), destination,
                    subnet_nets))
    if None in grades:
        return None
    return FULL if grades == (FULL, FULL) else NARROWED


def unmet_flows(security_rules: list[dict], subnet_prefixes: list[str]) -> list[str]:
    """'<rule name> <port>' for each required flow the rules do not allow (empty: compliant)."""
    subnet_nets = [n for n in (_network(p) for p in subnet_prefixes) if n is not None]
    rules = sorted((r.get("properties") or {} for r in security_rules), key=lambda p: int(p.get("priority", 0)))
    unmet = []
    for name, direction, source, destination, ports in REQUIRED_FLOWS:
        for port in ports:
            allowed = False
            for props in rules:
                if str(props.get("direction", "")).lower() != direction.lower():
                    continue
                grade = _grade(props, source, destination, port, subnet_nets)
                access = str(props.get("access", "")).lower()
                if grade is not None and access == "allow":
                    allowed = True
                    break
                if grade == FULL and access == "deny":
                    break
            if not allowed:
                unmet.append(f"{name} {port}")
    return unmet


def require_compliant(nsg_name: str, security_rules: list[dict], subnet_prefixes: list[str]) -> None:
    """Raise Azure's refusal when ``security_rules`` would sit on AzureBastionSubnet without what Bastion needs."""
    if unmet_flows(security_rules, subnet_prefixes):
        raise ArmError(400, "NetworkSecurityGroupNotCompliantForAzureBastionSubnet",
                       f"Network security group {nsg_name} does not have necessary rules for Azure Bastion Subnet "
                       "AzureBastionSubnet.")
