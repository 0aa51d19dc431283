"""What ARM checks before it accepts a PUT: one ``prepare_*`` per resource type.

Each takes the state, the resource id, the request body and the existing resource (or None), raises
``ArmError`` when Azure would refuse the request, and returns the body to store (read-only fields
filled in the way the service fills them).
"""
from __future__ import annotations

# every prepare_* has the same signature (a dispatch table calls them); not all need every argument
# pylint: disable=unused-argument

import copy
import ipaddress
import re

from ..responses import ArmError
from ..state import EmulatorState, new_etag, parse_resource_id
from . import bastion_nsg

SKU_RANK = {"Developer": 0, "Basic": 1, "Standard": 2, "Premium": 3}
# Microsoft's "About Bastion configuration settings" table: Basic offers Kerberos only, Standard all but session
# recording and private-only deployment, Premium everything, Developer none of these.
BASIC_FEATURES = ("enableKerberos",)
STANDARD_ONLY_FEATURES = ("enableTunneling", "enableIpConnect", "enableFileCopy", "enableShareableLink",
                          "disableCopyPaste")
PREMIUM_ONLY_FEATURES = ("enableSessionRecording", "enablePrivateOnlyBastion")
BASTION_FEATURE_DEFAULTS = {name: False for name in BASIC_FEATURES + STANDARD_ONLY_FEATURES
                            + PREMIUM_ONLY_FEATURES}
MAX_BASTION_SUBNET_PREFIX = 26
SECURITY_RULE_PROTOCOLS = {"tcp": "Tcp", "udp": "Udp", "icmp": "Icmp", "esp": "Esp", "ah": "Ah", "*": "*"}


# Microsoft.Network/bastionHosts names: 1-80 characters, alphanumerics, underscores, periods and hyphens, starting
# with an alphanumeric and ending with an alphanumeric or underscore ("Naming rules and restrictions for Azure
# resources"); NRP answers InvalidResourceName with the words below.
BASTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?")
# Properties an api-version of bastionHost.json does not have (azure-rest-api-specs stable/<version>/bastionHost.json):
# 2023-09-01 has neither enableSessionRecording nor enablePrivateOnlyBastion nor zones, 2024-03-01 no
# enablePrivateOnlyBastion; 2024-05-01 has them all. Each is absent up to and including the version named.
BASTION_ABSENT_UNTIL = {
    ("properties", "enableSessionRecording"): "2023-09-01",
    ("properties", "enablePrivateOnlyBastion"): "2024-03-01",
    ("zones",): "2023-09-01",
}


def check_resource_name(kind: str, name: str) -> None:
    if kind == "microsoft.network/bastionhosts" and not BASTION_NAME.fullmatch(name):
        raise _bad_request("InvalidResourceName",
                           f"Resource name {name} is invalid. The name can be up to 80 characters long. It must "
                           "begin with a word character, and it must end with a word character or with '_'. The "
                           "name may contain word characters or '.', '-', '_'.")


def check_api_version_properties(kind: str, body: dict, api_version: str) -> None:
    """A property the api-version's schema lacks is refused, as NRP's strict JSON reading refuses it."""
    if kind != "microsoft.network/bastionhosts":
        return
    for path, absent_until in BASTION_ABSENT_UNTIL.items():
        where = body
        for key in path[:-1]:
            where = where.get(key) if isinstance(where, dict) else None
        if isinstance(where, dict) and path[-1] in where and api_version[:10] <= absent_until:
            owner = "BastionHostPropertiesFormat" if path[0] == "properties" else "BastionHost"
            raise _bad_request("InvalidRequestFormat",
                               f"Cannot parse the request. Could not find member '{path[-1]}' on object of type "
                               f"'{owner}'. Path '{'.'.join(path)}' (api-version {api_version}).")


def _bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def _ref_id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else None


def _require_reference(state: EmulatorState, ref: str | None, owner_id: str, what: str) -> dict:
    target = state.get_resource(ref) if ref else None
    if target is None:
        raise _bad_request("InvalidResourceReference",
                           f"Resource {ref or '(none)'} referenced by resource {owner_id} was not found. "
                           f"Please make sure that the referenced {what} exists.")
    return target


def _canonical_sku(name: str, resource_id: str) -> str:
    for known in SKU_RANK:
        if known.lower() == str(name).lower():
            return known
    raise _bad_request("InvalidBastionHostSku",
                       f"SKU '{name}' of bastion host {resource_id} is not one of {', '.join(SKU_RANK)}.")


def prepare_bastion_host(state: EmulatorState, resource_id: str, body: dict, existing: dict | None) -> dict:
    host = copy.deepcopy(body)
    props = host.setdefault("properties", {})
    old_props = (existing or {}).get("properties", {})
    old_sku = ((existing or {}).get("sku") or {}).get("name")
    sku = _canonical_sku((host.get("sku") or {}).get("name") or old_sku or "Standard", resource_id)
    host["sku"] = {"name": sku}
    if old_sku and SKU_RANK[sku] < SKU_RANK[_canonical_sku(old_sku, resource_id)]:
        raise _bad_request("BastionHostSkuDowngradeNotAllowed",
                           f"Downgrading the SKU of bastion host {parse_resource_id(resource_id)['name']} from "
                           f"{old_sku} to {sku} is not supported. Delete and recreate the host instead.")
    for name, default in BASTION_FEATURE_DEFAULTS.items():
        props.setdefault(name, old_props.get(name, default))
    if sku == "Developer":
        wanted = [name for name in BASTION_FEATURE_DEFAULTS if props.get(name)]
        if wanted:
            raise _bad_request("FeatureNotSupportedForDeveloperBastionSku",
                               f"{', '.join(wanted)} is not supported for the Developer Bastion SKU.")
    _check_network_acls(sku, props)
    if SKU_RANK[sku] < SKU_RANK["Standard"]:
        wanted = [name for name in STANDARD_ONLY_FEATURES if props.get(name)]
        if wanted:
            raise _bad_request("BastionFeatureNotSupportedForSku",
                               f"{', '.join(wanted)} requires the Standard or Premium SKU; bastion host "
                               f"{parse_resource_id(resource_id)['name']} would be {sku}.")
    if sku != "Premium":
        wanted = [name for name in PREMIUM_ONLY_FEATURES if props.get(name)]
        if wanted:
            raise _bad_request("BastionFeatureNotSupportedForSku",
                               f"{', '.join(wanted)} requires the Premium SKU; the host would be {sku}.")
    scale_units = props.get("scaleUnits", old_props.get("scaleUnits", 2))
    if not isinstance(scale_units, int) or not 2 <= scale_units <= 50:
        raise _bad_request("InvalidBastionHostScaleUnits", f"scaleUnits must be between 2 and 50, got {scale_units}.")
    if scale_units != 2 and sku in ("Basic", "Developer"):
        raise _bad_request("BastionHostScaleUnitsNotSupportedForSku",
                           f"Host scaling needs the Standard or Premium SKU; {sku} hosts have 2 scale units.")
    props["scaleUnits"] = scale_units
    if old_props.get("dnsName"):
        props["dnsName"] = old_props["dnsName"]
    else:
        props.pop("dnsName", None)
    if sku == "Developer":
        _prepare_developer_shape(state, resource_id, host, props)
    else:
        _prepare_bastion_ip_configurations(state, resource_id, props, private_only=props["enablePrivateOnlyBastion"])
    return host


def _check_network_acls(sku: str, props: dict) -> None:
    """networkAcls.ipRules: "IP ACL rules for Developer Bastion Host", IPv4 only (bastionHost.json IPRule)."""
    rules = (props.get("networkAcls") or {}).get("ipRules") or []
    if rules and sku != "Developer":
        raise _bad_request("BastionHostNetworkAclsNotSupportedForSku",
                           f"networkAcls.ipRules apply to Developer Bastion hosts only; the host would be {sku}.")
    for rule in rules:
        prefix = str((rule or {}).get("addressPrefix") or "")
        try:
            valid = ipaddress.ip_network(prefix, strict=False).version == 4
        except ValueError:
            valid = False
        if not valid:
            raise _bad_request("InvalidBastionHostIpRule",
                               f"networkAcls.ipRules addressPrefix '{prefix}' is not an IPv4 address or range in "
                               "CIDR format. Only IPV4 address is allowed.")


def _prepare_developer_shape(state: EmulatorState, resource_id: str, host: dict, props: dict) -> None:
    """A Developer host names its virtual network and has no IP configuration, no zones and no scaling
    (azure-rest-api-specs BastionHostDeveloperPut.json: ``virtualNetwork``, ``ipConfigurations: []``)."""
    if not _ref_id(props.get("virtualNetwork")):
        raise _bad_request("BastionHostVnetIdNotProvided",
                           "Virtual Network Id is a mandatory field for Developer BastionHost SKU.")
    _require_reference(state, _ref_id(props.get("virtualNetwork")), resource_id, "virtual network")
    if props.get("ipConfigurations"):
        raise _bad_request("BastionHostDeveloperSkuDoesNotSupportIpConfigurations",
                           f"Bastion host {resource_id} of SKU Developer takes no ipConfigurations: it needs no "
                           "AzureBastionSubnet or public IP.")
    if host.get("zones"):
        raise _bad_request("BastionHostDeveloperSkuDoesNotSupportZones",
                           f"Bastion host {resource_id} of SKU Developer cannot be placed in availability zones.")
    props["ipConfigurations"] = []


def _prepare_bastion_ip_configurations(state: EmulatorState, resource_id: str, props: dict,
                                       private_only: bool) -> None:
    configs = props.get("ipConfigurations") or []
    if len(configs) != 1:
        raise _bad_request("BastionHostMustHaveOneIpConfiguration",
                           f"Bastion host {resource_id} must have exactly one IP configuration.")
    config = configs[0]
    name = config.get("name") or "IpConf"
    config_props = config.setdefault("properties", {})
    subnet_id = _ref_id(config_props.get("subnet"))
    subnet = _require_reference(state, subnet_id, resource_id, "subnet")
    if subnet["name"] != "AzureBastionSubnet":
        raise _bad_request("BastionHostSubnetNameMustBeAzureBastionSubnet",
                           f"Subnet {subnet['name']} cannot be used for a bastion host: its name must be "
                           "AzureBastionSubnet.")
    prefix = subnet["properties"].get("addressPrefix") or (subnet["properties"].get("addressPrefixes") or [""])[0]
    if ipaddress.ip_network(prefix, strict=False).prefixlen > MAX_BASTION_SUBNET_PREFIX:
        raise _bad_request("AzureBastionSubnetTooSmall",
                           f"Subnet AzureBastionSubnet ({prefix}) is too small: a bastion host needs a /26 or "
                           "larger prefix.")
    for other in state.list_resources("microsoft.network/bastionhosts", f"/subscriptions/{state.subscription_id}"):
        if other["id"].lower() == resource_id.lower():
            continue
        for other_config in other["properties"].get("ipConfigurations", []):
            if (_ref_id(other_config["properties"].get("subnet")) or "").lower() == subnet["id"].lower():
                raise _bad_request("SubnetInUseByAnotherBastionHost",
                                   f"Subnet {subnet['id']} is already used by bastion host {other['id']}; each "
                                   "virtual network has at most one bastion host.")
    pip_id = _ref_id(config_props.get("publicIPAddress"))
    if pip_id and private_only:
        raise _bad_request("PrivateOnlyBastionHostCannotHavePublicIp",
                           f"Bastion host {resource_id} is private-only (enablePrivateOnlyBastion); its IP "
                           "configuration takes no publicIPAddress.")
    if pip_id or not private_only:
        pip = _require_reference(state, pip_id, resource_id, "public IP address")
        pip_sku = (pip.get("sku") or {}).get("name", "Basic")
        allocation = pip["properties"].get("publicIPAllocationMethod", "Dynamic")
        if pip_sku != "Standard" or allocation != "Static":
            raise _bad_request("BastionHostPublicIpMustBeStandardStatic",
                               f"Public IP address {pip['name']} is {pip_sku}/{allocation}; a bastion host needs "
                               "a Standard SKU public IP with Static allocation.")
    config.update(id=f"{resource_id}/bastionHostIpConfigurations/{name}", name=name,
                  type="Microsoft.Network/bastionHosts/bastionHostIpConfigurations", etag=new_etag())
    config_props.setdefault("privateIPAllocationMethod", "Dynamic")
    config_props["provisioningState"] = "Succeeded"
    props["ipConfigurations"] = [config]


def _networks(prefixes: list[str], where: str) -> list:
    try:
        return [ipaddress.ip_network(p, strict=True) for p in prefixes]
    except ValueError as exc:
        raise _bad_request("InvalidAddressPrefixFormat", f"{where}: {exc}") from None


def _subnet_prefixes(props: dict) -> list[str]:
    return [props["addressPrefix"]] if props.get("addressPrefix") else list(props.get("addressPrefixes") or [])


def _check_subnet(state: EmulatorState, subnet_id: str, props: dict, vnet_prefixes: list[str]) -> None:
    prefixes = _subnet_prefixes(props)
    if not prefixes:
        raise _bad_request("InvalidRequestFormat", f"Subnet {subnet_id} needs addressPrefix.")
    space = _networks(vnet_prefixes, "virtual network address space")
    for net in _networks(prefixes, f"subnet {subnet_id}"):
        if not any(net.version == s.version and net.subnet_of(s) for s in space):
            raise _bad_request("NetcfgSubnetRangeOutsideVnet",
                               f"Subnet '{parse_resource_id(subnet_id)['name']}' is not valid because its IP address "
                               f"range is outside the IP address range of virtual network.")
    nsg_id = _ref_id(props.get("networkSecurityGroup"))
    if nsg_id:
        nsg = _require_reference(state, nsg_id, subnet_id, "network security group")
        props["networkSecurityGroup"] = {"id": nsg["id"]}
        stored = state.get_resource(subnet_id) or {}
        associated = _ref_id(stored.get("properties", {}).get("networkSecurityGroup")) or ""
        if parse_resource_id(subnet_id)["name"].lower() == bastion_nsg.BASTION_SUBNET_NAME \
                and associated.lower() != nsg["id"].lower():
            bastion_nsg.require_compliant(nsg["name"], nsg["properties"].get("securityRules") or [], prefixes)


def prepare_virtual_network(state: EmulatorState, resource_id: str, body: dict, existing: dict | None) -> dict:
    vnet = copy.deepcopy(body)
    props = vnet.setdefault("properties", {})
    prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
    if not prefixes:
        raise _bad_request("InvalidRequestFormat", "addressSpace.addressPrefixes is required.")
    _networks(prefixes, "virtual network address space")
    names = set()
    for subnet in props.get("subnets") or []:
        if not subnet.get("name") or subnet["name"].lower() in names:
            raise _bad_request("InvalidRequestFormat", "Each subnet needs a unique name.")
        names.add(subnet["name"].lower())
        _check_subnet(state, f"{resource_id}/subnets/{subnet['name']}", subnet.setdefault("properties", {}),
                      prefixes)
    return vnet


def prepare_subnet(state: EmulatorState, resource_id: str, body: dict, existing: dict | None) -> dict:
    subnet = copy.deepcopy(body)
    vnet = state.get_resource(parse_resource_id(resource_id)["parent_id"])
    _check_subnet(state, resource_id, subnet.setdefault("properties", {}),
                  vnet["properties"]["addressSpace"]["addressPrefixes"])
    return subnet


def prepare_public_ip(state: EmulatorState, resource_id: str, body: dict, existing: dict | None) -> dict:
    pip = copy.deepcopy(body)
    props = pip.setdefault("properties", {})
    sku = (pip.get("sku") or {}).get("name", "Standard")
    if sku not in ("Basic", "Standard"):
        raise _bad_request("InvalidPublicIpSku", f"Public IP SKU {sku} is not Basic or Standard.")
    pip["sku"] = {"name": sku, "tier": (pip.get("sku") or {}).get("tier", "Regional")}
    allocation = props.setdefault("publicIPAllocationMethod", "Static" if sku == "Standard" else "Dynamic")
    if sku == "Standard" and allocation != "Static":
        raise _bad_request("StandardSkuPublicIPCannotBeDynamic",
                           "Standard SKU public IP addresses must use Static allocation.")
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    old_address = (existing or {}).get("properties", {}).get("ipAddress")
    if allocation == "Static":
        props["ipAddress"] = old_address or _next_public_address(state)
    return pip


def _next_public_address(state: EmulatorState) -> str:
    used = {p["properties"].get("ipAddress") for p in
            state.list_resources("microsoft.network/publicipaddresses", f"/subscriptions/{state.subscription_id}")}
    for host in ipaddress.ip_network("203.0.113.0/24").hosts():  # TEST-NET-3: never routable
        if str(host) not in used:
            return str(host)
    raise ArmError(409, "PublicIPCountLimitReached", "The emulator ran out of public IP addresses.")


def _check_security_rule(state: EmulatorState, rule_id: str, props: dict) -> None:
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise _bad_request("SecurityRuleInvalidPriority",
                           f"Security rule {rule_id} has invalid priority {priority}. Value provided: {priority} "
                           "Allowed range 100-4096.")
    for name, allowed in (("direction", ("Inbound", "Outbound")), ("access", ("Allow", "Deny"))):
        if props.get(name) not in allowed:
            raise _bad_request("SecurityRuleParameterContainsUnsupportedValue",
                               f"Security rule {rule_id}: {name} must be one of {', '.join(allowed)}.")
    protocol = SECURITY_RULE_PROTOCOLS.get(str(props.get("protocol", "")).lower())
    if protocol is None:
        raise _bad_request("SecurityRuleParameterContainsUnsupportedValue",
                           f"Security rule {rule_id}: protocol {props.get('protocol')} is not supported.")
    props["protocol"] = protocol
    # azure-rest-api-specs networkSecurityGroup.json (2024-05-01) SecurityRulePropertiesFormat: each side is an
    # address prefix (or prefixes) or application security groups; the ports a range or ranges, source ports too.
    for single, plural, groups in (("sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups"),
                                   ("destinationAddressPrefix", "destinationAddressPrefixes",
                                    "destinationApplicationSecurityGroups"),
                                   ("sourcePortRange", "sourcePortRanges", None),
                                   ("destinationPortRange", "destinationPortRanges", None)):
        if not props.get(single) and not props.get(plural) and not (groups and props.get(groups)):
            raise _bad_request("SecurityRuleParameterContainsUnsupportedValue",
                               f"Security rule {rule_id}: {single}, {plural}"
                               f"{f' or {groups}' if groups else ''} is required.")
        props.setdefault(plural, [])
        if groups and props.get(groups):
            props[groups] = [{"id": _require_reference(state, _ref_id(group), rule_id, "application security group")
                              ["id"]} for group in props[groups]]


def prepare_application_security_group(state: EmulatorState, resource_id: str, body: dict,
                                       existing: dict | None) -> dict:
    """An application security group: a name VMs' NICs join; security rules use it as source or destination."""
    return copy.deepcopy(body)


def _check_rule_priorities(rules: list[dict]) -> None:
    seen: dict[tuple, str] = {}
    for rule in rules:
        key = (rule["properties"]["direction"], rule["properties"]["priority"])
        if key in seen:
            raise _bad_request("SecurityRuleConflict",
                               f"Security rules {seen[key]} and {rule['name']} have the same priority {key[1]} and "
                               f"direction {key[0]}.")
        seen[key] = rule["name"]


def prepare_network_security_group(state: EmulatorState, resource_id: str, body: dict,
                                   existing: dict | None) -> dict:
    nsg = copy.deepcopy(body)
    props = nsg.setdefault("properties", {})
    rules = props.get("securityRules")
    if rules is not None:
        for rule in rules:
            if not rule.get("name"):
                raise _bad_request("InvalidRequestFormat", "Each security rule needs a name.")
            _check_security_rule(state, f"{resource_id}/securityRules/{rule['name']}",
                                 rule.setdefault("properties", {}))
        _check_rule_priorities(rules)
        _require_bastion_compliance(state, existing, rules)
    return nsg


def prepare_security_rule(state: EmulatorState, resource_id: str, body: dict, existing: dict | None) -> dict:
    rule = copy.deepcopy(body)
    props = rule.setdefault("properties", {})
    _check_security_rule(state, resource_id, props)
    parsed = parse_resource_id(resource_id)
    siblings = [r for r in state.list_resources("microsoft.network/networksecuritygroups/securityrules",
                                                parsed["parent_id"]) if r["name"].lower() != parsed["name"].lower()]
    _check_rule_priorities(siblings + [{"name": parsed["name"], "properties": props}])
    _require_bastion_compliance(state, state.get_resource(parsed["parent_id"]),
                                siblings + [{"name": parsed["name"], "properties": props}])
    return rule


def _require_bastion_compliance(state: EmulatorState, nsg: dict | None, rules: list[dict]) -> None:
    """The rules an NSG would have, checked as Azure checks them when it sits on an AzureBastionSubnet."""
    for ref in (nsg or {}).get("properties", {}).get("subnets") or []:
        subnet = state.get_resource(ref["id"])
        if subnet is not None and subnet["name"].lower() == bastion_nsg.BASTION_SUBNET_NAME:
            bastion_nsg.require_compliant(nsg["name"], rules, _subnet_prefixes(subnet["properties"]))


def check_security_rule_delete(state: EmulatorState, rule_id: str) -> None:
    """Deleting a rule is a rule change too: refused when it would leave AzureBastionSubnet's NSG non-compliant."""
    parent_id = parse_resource_id(rule_id)["parent_id"]
    siblings = [r for r in state.list_resources("microsoft.network/networksecuritygroups/securityrules", parent_id)
                if r["id"].lower() != rule_id.lower()]
    _require_bastion_compliance(state, state.get_resource(parent_id), siblings)
