"""What the Bastion data plane enforces before it opens a tunnel: SKU and feature flags, IP connect, NSG rules.

Pure functions over ARM JSON (no I/O, no aiohttp), so the rules read in one place and unit-test alone.
Every refusal is an :class:`AccessRefused` carrying the HTTP status and the message Bastion would give.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# The source port Bastion's connection to a VM leaves from: the first of the dynamic ports (IANA, RFC 6335).
SOURCE_PORT = 49152
# Ports that IP-based connect accepts (upstream `az network bastion tunnel`/`ssh --target-ip-address`).
IP_CONNECT_PORTS = (22, 3389)

# Azure's default outbound security rules, used when an NSG document does not carry `defaultSecurityRules`.
DEFAULT_OUTBOUND_RULES = (
    {"name": "AllowVnetOutBound", "properties": {
        "priority": 65000, "direction": "Outbound", "access": "Allow", "protocol": "*",
        "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "*"}},
    {"name": "AllowInternetOutBound", "properties": {
        "priority": 65001, "direction": "Outbound", "access": "Allow", "protocol": "*",
        "sourceAddressPrefix": "*", "destinationAddressPrefix": "Internet", "destinationPortRange": "*"}},
    {"name": "DenyAllOutBound", "properties": {
        "priority": 65500, "direction": "Outbound", "access": "Deny", "protocol": "*",
        "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "destinationPortRange": "*"}},
)

_HOST_CONNECT_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Network/"
    r"bh-hostConnect/(?P<ip>[^/]+)$", re.IGNORECASE)
_VM_ID_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachines/[^/]+$",
    re.IGNORECASE)


class AccessRefused(Exception):
    """A request the data plane refuses; `status` is the HTTP status, the text is Bastion's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class NsgVerdict:
    allowed: bool
    rule_name: str      # the rule that decided ('' when there is no NSG)
    nsg_name: str


def host_connect_ip(resource_id: str) -> str | None:
    """The target IP of an IP-connect resource id (`.../Microsoft.Network/bh-hostConnect/{ip}`), else None."""
    match = _HOST_CONNECT_RE.match(resource_id or "")
    return match.group("ip") if match else None


def is_vm_id(resource_id: str) -> bool:
    return bool(_VM_ID_RE.match(resource_id or ""))


def sku_name(bastion: dict) -> str:
    return ((bastion.get("sku") or {}).get("name") or "Standard")


def is_developer_sku(bastion: dict) -> bool:
    return sku_name(bastion).lower() in ("developer", "quickconnect")


def check_native_client(bastion: dict) -> None:
    """Refuse hosts whose SKU or settings do not allow native-client tunnels (Developer has its own path)."""
    sku = sku_name(bastion)
    if is_developer_sku(bastion):
        return
    if sku.lower() == "basic":
        raise AccessRefused(403, f"Native client is not supported on the Bastion {sku} SKU. Upgrade the host "
                                 "to Standard or Premium and enable native client support (enableTunneling).")
    if not (bastion.get("properties") or {}).get("enableTunneling"):
        raise AccessRefused(403, "Tunneling is not enabled for this Bastion host. Enable native client support "
                                 "(enableTunneling) on the host's configuration to connect with a native client.")


def check_mint_form(form) -> None:
    """Fields Microsoft's client never sends are not accepted either. Its tunnel.py passes ``'token': None``,
    which requests leaves out of the form, so a ``token`` field (empty or not) never reached Bastion from it."""
    if "token" in form and not (form.get("token") or "").strip():
        raise AccessRefused(400, "The form field 'token' is empty. Leave it out: a session needs resourceId, "
                                 "protocol, workloadHostPort and aztoken (and hostname for IP-based connections).")


def data_pod_host(dns_name: str) -> str:
    """The data pod a Developer host's /api/connection names. In Azure it is another host than the dnsName; here it
    is the same loopback listener under the name ``localhost`` (the emulator's certificate covers both), so a
    client that mints on the dnsName instead of the answered host is refused."""
    _, _, port = dns_name.rpartition(":")
    return f"localhost:{port}"


# The Developer SKU (MicrosoftDocs/azure-docs includes/bastion-sku.md): "Specify custom inbound port: No" (SSH 22
# and RDP 3389 only), "Support for concurrent connections: No". Azure's own words for these refusals are not
# published: the emulator's are its own (README, "Error codes").
DEVELOPER_PORTS = (22, 3389)


def check_developer_port(bastion: dict, port: int) -> None:
    if is_developer_sku(bastion) and port not in DEVELOPER_PORTS:
        raise AccessRefused(400, f"Custom ports are not allowed for the Bastion Developer SKU: port {port} is "
                                 "neither 22 (SSH) nor 3389 (RDP).")


def check_developer_concurrency(bastion: dict, connected_sessions: int) -> None:
    """A new session while another one's websocket is connected through the same Developer host is refused."""
    if is_developer_sku(bastion) and connected_sessions:
        raise AccessRefused(409, "The Bastion Developer SKU does not support concurrent connections: another "
                                 "session through this host is open. Close it first.")


def check_developer_host(bastion: dict, request_host: str, *, data_pod: bool) -> None:
    """A Developer host's dnsName answers /api/connection only; sessions are minted, deleted and connected on the
    data pod it names (upstream: developer_sku_helper._get_data_pod, then the tunnel on that host)."""
    if not is_developer_sku(bastion):
        return
    dns_name = (bastion.get("properties") or {}).get("dnsName") or ""
    on_data_pod = request_host.lower() == data_pod_host(dns_name).lower()
    if data_pod and not on_data_pod:
        raise AccessRefused(404, "This Developer SKU host's address serves POST /api/connection only: mint, "
                                 "delete and connect sessions on the host that /api/connection answered.")
    if not data_pod and on_data_pod:
        raise AccessRefused(404, "POST /api/connection is served on the Bastion host's dnsName, not on a data pod.")


def websocket_origin_refusal(origin: str | None, request_host: str) -> str | None:
    """A websocket from a page of another origin is refused (cross-site websocket hijacking); Microsoft's client
    (websocket-client) sends the data-plane host's own, ``https://`` + host (port left out when 443)."""
    if not origin:
        return None
    host, _, port = request_host.rpartition(":") if ":" in request_host else (request_host, "", "")
    allowed = {f"https://{request_host}".lower(), f"https://{host}".lower() if port in ("", "443") else ""}
    if origin.lower() not in allowed:
        return f"The Origin '{origin}' is not this Bastion host's; the tunnel websocket is refused."
    return None


def check_ip_connect(bastion: dict, port: int) -> None:
    if is_developer_sku(bastion) or not (bastion.get("properties") or {}).get("enableIpConnect"):
        raise AccessRefused(403, "IP-based connection is not enabled for this Bastion host (enableIpConnect). "
                                 "Enable IP-based connection or connect by the virtual machine's resource id.")
    if port not in IP_CONNECT_PORTS:
        raise AccessRefused(403, f"IP-based connection supports only ports 22 and 3389; port {port} was "
                                 "requested.")


def parse_port(value) -> int:
    try:
        port = int(str(value).strip())
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise AccessRefused(400, f"Invalid workload host port '{value}'. Give a port number between 1 and 65535.")
    return port


def check_power_state(vm_name: str, power_state: str) -> None:
    if (power_state or "").lower() != "running":
        raise AccessRefused(409, f"The virtual machine '{vm_name}' is not running (power state: {power_state}). "
                                 "Start the virtual machine and try again.")


def _as_list(props: dict, single: str, plural: str) -> list[str]:
    values = list(props.get(plural) or [])
    if props.get(single):
        values.append(props[single])
    return [str(v).strip() for v in values if str(v).strip()]


def _port_matches(spec: str, port: int) -> bool:
    if spec in ("*", "Any"):
        return True
    if "-" in spec:
        low, _, high = spec.partition("-")
        return int(low) <= port <= int(high)
    return int(spec) == port


def _address_matches(prefix: str, ip: str | None, *, default_for_cidr: bool = False) -> bool:
    """Does an NSG address prefix cover `ip`? Service tags other than VirtualNetwork never cover a VM."""
    if prefix in ("*", "Any", "0.0.0.0/0"):
        return True
    if prefix.lower() == "virtualnetwork":
        return True     # the target VM sits in the Bastion's VNet (or a peered one) by construction
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False    # Internet, AzureCloud, other service tags
    if ip is None:
        return default_for_cidr
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def _asg_only(props: dict, side: str) -> list[str]:
    """A side with no address prefix: nothing when it names application security groups, else any address."""
    return [] if props.get(f"{side}ApplicationSecurityGroups") else ["*"]


def outbound_rules(nsg: dict) -> list[dict]:
    props = nsg.get("properties") or {}
    rules = list(props.get("securityRules") or []) + list(props.get("defaultSecurityRules") or DEFAULT_OUTBOUND_RULES)
    rules = [r for r in rules if ((r.get("properties") or {}).get("direction") or "").lower() == "outbound"]
    return sorted(rules, key=lambda r: int((r.get("properties") or {}).get("priority") or 65535))


def evaluate_outbound(nsg: dict | None, dest_ip: str | None, port: int) -> NsgVerdict:
    """First outbound rule (by priority) matching TCP to dest_ip:port decides, as Azure evaluates NSGs.

    Sources: the Bastion subnet is inside the VNet, so `*`, `VirtualNetwork` and any CIDR (assumed to be the
    subnet's range) match; other service tags do not. The connection leaves from an ephemeral source port
    (SOURCE_PORT): a rule whose source ports leave it out does not apply. Application security groups are not
    modelled: a side given only by them never matches.
    """
    if not nsg:
        return NsgVerdict(True, "", "")
    nsg_name = nsg.get("name", "")
    for rule in outbound_rules(nsg):
        props = rule.get("properties") or {}
        if (props.get("protocol") or "*").lower() not in ("*", "tcp", "any"):
            continue
        source_ports = _as_list(props, "sourcePortRange", "sourcePortRanges") or ["*"]
        if not any(_port_matches(p, SOURCE_PORT) for p in source_ports):
            continue
        sources = _as_list(props, "sourceAddressPrefix", "sourceAddressPrefixes") or _asg_only(props, "source")
        if not any(_address_matches(s, None, default_for_cidr=True) for s in sources):
            continue
        dests = (_as_list(props, "destinationAddressPrefix", "destinationAddressPrefixes")
                 or _asg_only(props, "destination"))
        if not any(_address_matches(d, dest_ip) for d in dests):
            continue
        ports = _as_list(props, "destinationPortRange", "destinationPortRanges") or ["*"]
        if not any(_port_matches(p, port) for p in ports):
            continue
        return NsgVerdict((props.get("access") or "").lower() == "allow", rule.get("name", ""), nsg_name)
    return NsgVerdict(False, "(no matching rule)", nsg_name)


def check_nsg(nsg: dict | None, dest_ip: str | None, port: int) -> None:
    verdict = evaluate_outbound(nsg, dest_ip, port)
    if not verdict.allowed:
        raise AccessRefused(403, f"Port {port} on the target virtual machine is not reachable from Bastion: "
                                 f"outbound rule '{verdict.rule_name}' of network security group "
                                 f"'{verdict.nsg_name}' on AzureBastionSubnet denies it.")
