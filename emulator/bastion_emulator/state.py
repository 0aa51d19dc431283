"""In-memory Azure state of the emulator, loaded from a seed JSON.

Seed format (see ``default_seed.json``)::

    {
      "tenant_id": "<guid>",                 # Entra tenant the service principal lives in
      "client_id": "<guid>",                 # service principal app id
      "client_secret": "<str>" | null,       # null/absent: a random secret, kept in the state dir
      "login_name": "azureuser",             # principal in Entra SSH certificates
      "location": "westeurope",              # default location for resources without one
      "subscription": {"id": "<guid>", "displayName": "..."},
      "resource_groups": ["demo-rg", ...],
      "resources": [ <ARM JSON>, ... ]
    }

Each resource is the ARM JSON a GET returns (``id`` required; ``name``, ``type``, ``etag``,
``location`` and ``properties.provisioningState`` are filled in when absent). ``{subscription}`` in
any string is replaced by the subscription id. Bastion hosts get ``properties.dnsName`` from the server
(``127.0.0.1:<port of the host's own data-plane listener>``). Child collections (``properties.subnets`` of a
virtual network, ``properties.securityRules`` of a network security group) are split into child resources and put
back together on GET, as ARM does. A network security group gets Azure's ``defaultSecurityRules``.

A ``Microsoft.Compute/virtualMachines`` resource may carry an ``"emulator"`` key, which is removed
from the ARM JSON and describes the machine behind it::

    "emulator": {"powerState": "running" | "stopped" | "deallocated",
                 "endpoints": {"22": "127.0.0.1:0"}}   # VM port -> loopback host:port (0 = not connected)
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from pathlib import Path

DEFAULT_SEED = Path(__file__).with_name("default_seed.json")

# parent type (lower case) -> (property holding the children, child type segment)
CHILD_COLLECTIONS = {
    "microsoft.network/virtualnetworks": ("subnets", "subnets"),
    "microsoft.network/networksecuritygroups": ("securityRules", "securityRules"),
}

# Canonical casing of the types we serve, keyed by lower case.
CANONICAL_TYPES = {t.lower(): t for t in (
    "Microsoft.Network/bastionHosts",
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Network/virtualNetworks/subnets",
    "Microsoft.Network/publicIPAddresses",
    "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/networkSecurityGroups/securityRules",
    "Microsoft.Network/applicationSecurityGroups",
    "Microsoft.Network/networkInterfaces",
    "Microsoft.Compute/virtualMachines",
)}

ACCESS_TOKEN_LIFETIME = 3600


def _default_rule(nsg_id, name, direction, priority, access, src, dst, description):
    return {
        "name": name,
        "id": f"{nsg_id}/defaultSecurityRules/{name}",
        "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
        "etag": new_etag(),
        "properties": {
            "provisioningState": "Succeeded",
            "description": description,
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": src,
            "sourceAddressPrefixes": [],
            "destinationAddressPrefix": dst,
            "destinationAddressPrefixes": [],
            "sourcePortRanges": [],
            "destinationPortRanges": [],
            "access": access,
            "priority": priority,
            "direction": direction,
        },
    }


def default_security_rules(nsg_id: str) -> list[dict]:
    """The rules Azure adds to every network security group."""
    return [
        _default_rule(nsg_id, "AllowVnetInBound", "Inbound", 65000, "Allow", "VirtualNetwork", "VirtualNetwork",
                      "Allow inbound traffic from all VMs in VNET"),
        _default_rule(nsg_id, "AllowAzureLoadBalancerInBound", "Inbound", 65001, "Allow", "AzureLoadBalancer", "*",
                      "Allow inbound traffic from azure load balancer"),
        _default_rule(nsg_id, "DenyAllInBound", "Inbound", 65500, "Deny", "*", "*", "Deny all inbound traffic"),
        _default_rule(nsg_id, "AllowVnetOutBound", "Outbound", 65000, "Allow", "VirtualNetwork", "VirtualNetwork",
                      "Allow outbound traffic from all VMs to all VMs in VNET"),
        _default_rule(nsg_id, "AllowInternetOutBound", "Outbound", 65001, "Allow", "*", "Internet",
                      "Allow outbound traffic from all VMs to Internet"),
        _default_rule(nsg_id, "DenyAllOutBound", "Outbound", 65500, "Deny", "*", "*", "Deny all outbound traffic"),
    ]


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def parse_resource_id(resource_id: str) -> dict | None:
    """Split an ARM id into subscription, resource group, namespace, type and name parts.

    Returns None when the id is not ``/subscriptions/S/resourceGroups/RG/providers/NS/T/N[/T2/N2...]``.
    """
    parts = resource_id.strip("/").split("/")
    if len(parts) < 8 or len(parts) % 2 or parts[0].lower() != "subscriptions" \
            or parts[2].lower() != "resourcegroups" or parts[4].lower() != "providers":
        return None
    namespace = parts[5]
    type_segments = parts[6::2]
    names = parts[7::2]
    raw_type = "/".join([namespace] + type_segments)
    return {
        "subscription": parts[1],
        "resource_group": parts[3],
        "type": CANONICAL_TYPES.get(raw_type.lower(), raw_type),
        "name": names[-1],
        "parent_id": "/" + "/".join(parts[:-2]) if len(type_segments) > 1 else None,
    }


def resource_group_id(subscription_id: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{name}"


class EmulatorState:  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    """The emulator's Azure: resources, virtual machine endpoints, and the secrets it handed out."""

    def __init__(self, seed: dict, *, default_client_secret: str | None = None, token_key: bytes | None = None):
        self._lock = threading.RLock()
        self.tenant_id: str = seed["tenant_id"]
        self.client_id: str = seed["client_id"]
        self.client_secret: str = seed.get("client_secret") or default_client_secret or secrets.token_urlsafe(24)
        self.login_name: str = seed.get("login_name", "azureuser")
        self.ssh_cert_lifetime: int | None = None    # seconds an issued SSH certificate is valid; None: the default
        self.location: str = seed.get("location", "westeurope")
        self.subscription_id: str = seed["subscription"]["id"]
        self.subscription_name: str = seed["subscription"].get("displayName", "Emulated subscription")
        self.issued_secrets: set[str] = set()
        self._token_key = token_key or secrets.token_bytes(32)
        self._resources: dict[str, dict] = {}      # lower-case id -> stored JSON (children split out)
        self._vm_runtime: dict[str, dict] = {}     # lower-case VM id -> {"powerState", "endpoints"}
        self._resource_groups: dict[str, dict] = {}
        self.remember_secret(self.client_secret)
        for rg_name in seed.get("resource_groups", []):
            self.put_resource_group(rg_name)
        for resource in seed.get("resources", []):
            resource = json.loads(json.dumps(resource).replace("{subscription}", self.subscription_id))
            runtime = resource.pop("emulator", None)
            self.put_resource(resource["id"], resource)
            if runtime is not None:
                self._vm_runtime[resource["id"].lower()] = {
                    "powerState": runtime.get("powerState", "running"),
                    "endpoints": {int(port): _split_endpoint(ep) for port, ep in runtime.get("endpoints", {}).items()},
                }

    @classmethod
    def from_file(cls, path: str | Path | None = None, **kwargs) -> "EmulatorState":
        with open(path or DEFAULT_SEED, encoding="utf-8") as handle:
            return cls(json.load(handle), **kwargs)

    # --- resource groups -------------------------------------------------------------------------
    def put_resource_group(self, name: str, location: str | None = None) -> dict:
        rg_id = resource_group_id(self.subscription_id, name)
        with self._lock:
            existing = self._resource_groups.get(rg_id.lower())
            if existing:
                return copy.deepcopy(existing)
            group = {"id": rg_id, "name": name, "type": "Microsoft.Resources/resourceGroups",
                     "location": location or self.location, "properties": {"provisioningState": "Succeeded"}}
            self._resource_groups[rg_id.lower()] = group
            return copy.deepcopy(group)

    def get_resource_group(self, subscription_id: str, name: str) -> dict | None:
        if subscription_id.lower() != self.subscription_id.lower():
            return None
        group = self._resource_groups.get(resource_group_id(subscription_id, name).lower())
        return copy.deepcopy(group) if group else None

    def list_resource_groups(self) -> list[dict]:
        return [copy.deepcopy(g) for g in self._resource_groups.values()]

    # --- resources -------------------------------------------------------------------------------
    def get_resource(self, resource_id: str) -> dict | None:
        """ARM JSON exactly as GET returns it (children folded in), or None. Case-insensitive id."""
        with self._lock:
            stored = self._resources.get(resource_id.rstrip("/").lower())
            if stored is None:
                return None
            return self._compose(stored)

    def put_resource(self, resource_id: str, body: dict) -> dict:
        """Store ``body`` under ``resource_id`` (keeping an existing resource's id casing); new ETag."""
        parsed = parse_resource_id(resource_id)
        if parsed is None:
            raise ValueError(f"not a resource id: {resource_id}")
        with self._lock:
            key = resource_id.rstrip("/").lower()
            existing = self._resources.get(key)
            canonical_id = existing["id"] if existing else resource_id.rstrip("/")
            resource = copy.deepcopy(body)
            resource["id"] = canonical_id
            resource["name"] = parsed["name"]
            resource["type"] = parsed["type"]
            resource["etag"] = new_etag()
            props = resource.setdefault("properties", {})
            props.setdefault("provisioningState", "Succeeded")
            if parsed["parent_id"] is None:
                resource.setdefault("location", self.location)
            type_lower = parsed["type"].lower()
            if type_lower == "microsoft.network/networksecuritygroups":
                props["defaultSecurityRules"] = (existing or {}).get("properties", {}).get(
                    "defaultSecurityRules") or default_security_rules(canonical_id)
                props.pop("subnets", None)  # back-references are computed on GET
                props.pop("networkInterfaces", None)
            if type_lower in CHILD_COLLECTIONS:
                prop, child_segment = CHILD_COLLECTIONS[type_lower]
                children = props.pop(prop, None)
                if children is not None:  # a PUT with the collection replaces it, as ARM does
                    for child_key in self._child_keys(key):
                        del self._resources[child_key]
                    for child in children:
                        child_id = f"{canonical_id}/{child_segment}/{child['name']}"
                        self._resources[child_id.lower()] = self._normalise_child(child_id, child)
            self._resources[key] = resource
            return self._compose(resource)

    def _normalise_child(self, child_id: str, child: dict) -> dict:
        parsed = parse_resource_id(child_id)
        stored = copy.deepcopy(child)
        stored.update(id=child_id, name=parsed["name"], type=parsed["type"], etag=new_etag())
        stored.setdefault("properties", {}).setdefault("provisioningState", "Succeeded")
        return stored

    def delete_resource(self, resource_id: str) -> None:
        with self._lock:
            key = resource_id.rstrip("/").lower()
            for child_key in self._child_keys(key):
                del self._resources[child_key]
            self._resources.pop(key, None)
            self._vm_runtime.pop(key, None)

    def list_resources(self, type_suffix: str, scope: str) -> list[dict]:
        """Resources whose type ends with ``type_suffix`` under ``scope`` (a subscription, RG or parent id)."""
        suffix = type_suffix.lower()
        prefix = scope.rstrip("/").lower() + "/"
        with self._lock:
            return [self._compose(r) for key, r in self._resources.items()
                    if key.startswith(prefix) and r["type"].lower().endswith(suffix)]

    def set_properties(self, resource_id: str, **values) -> None:
        """Change stored properties in place (service-side changes such as provisioningState; ETag kept)."""
        with self._lock:
            stored = self._resources.get(resource_id.rstrip("/").lower())
            if stored is not None:
                stored["properties"].update(values)

    def _child_keys(self, parent_key: str) -> list[str]:
        prefix = parent_key + "/"
        return [k for k in self._resources if k.startswith(prefix)]

    def _compose(self, stored: dict) -> dict:
        resource = copy.deepcopy(stored)
        type_lower = resource["type"].lower()
        if type_lower in CHILD_COLLECTIONS:
            prop, child_segment = CHILD_COLLECTIONS[type_lower]
            prefix = f"{resource['id'].lower()}/{child_segment.lower()}/"
            resource["properties"][prop] = [copy.deepcopy(r) for k, r in self._resources.items()
                                            if k.startswith(prefix) and "/" not in k[len(prefix):]]
        if type_lower == "microsoft.network/networksecuritygroups":
            nsg_key = resource["id"].lower()
            linked = [{"id": r["id"]} for r in self._resources.values()
                      if r["type"] == "Microsoft.Network/virtualNetworks/subnets"
                      and (r["properties"].get("networkSecurityGroup") or {}).get("id", "").lower() == nsg_key]
            if linked:
                resource["properties"]["subnets"] = linked
        if type_lower == "microsoft.network/virtualnetworks":
            for peering in resource["properties"].get("virtualNetworkPeerings") or []:
                # Azure sets peeringState (a client's value is ignored): Connected once the remote network has a
                # peering back to this one, Initiated until then.
                remote = ((peering.get("properties") or {}).get("remoteVirtualNetwork") or {}).get("id", "")
                peering.setdefault("properties", {})["peeringState"] = \
                    "Connected" if self._peers_back(remote, resource["id"]) else "Initiated"
        return resource

    def _peers_back(self, vnet_id: str, remote_id: str) -> bool:
        vnet = self._resources.get(vnet_id.rstrip("/").lower()) or {}
        return any(((p.get("properties") or {}).get("remoteVirtualNetwork") or {}).get("id", "").lower()
                   == remote_id.lower() for p in (vnet.get("properties") or {}).get("virtualNetworkPeerings") or [])

    # --- network reach ---------------------------------------------------------------------------
    def bastion_vnet(self, bastion_id: str) -> str | None:
        """The host's virtual network: its AzureBastionSubnet's, or the one a Developer host names."""
        props = (self.get_resource(bastion_id) or {}).get("properties") or {}
        for ip_config in props.get("ipConfigurations") or []:
            subnet_id = ((ip_config.get("properties") or {}).get("subnet") or {}).get("id") or ""
            if "/subnets/" in subnet_id:
                return subnet_id.rpartition("/subnets/")[0]
        return (props.get("virtualNetwork") or {}).get("id")

    def vm_vnet(self, vm_id: str) -> str | None:
        """The virtual network of the VM's first NIC's first IP configuration."""
        vm = self.get_resource(vm_id) or {}
        for nic_ref in vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", []):
            nic = self.get_resource(nic_ref["id"]) or {}
            for ip_config in nic.get("properties", {}).get("ipConfigurations", []):
                subnet_id = (ip_config.get("properties", {}).get("subnet") or {}).get("id") or ""
                if "/subnets/" in subnet_id:
                    return subnet_id.rpartition("/subnets/")[0]
        return None

    def bastion_reaches_vm(self, bastion_id: str, vm_id: str) -> bool:
        """Azure routes from the host's virtual network to its own and to networks peered both ways (Connected);
        a VM on any other network is out of the host's reach. Unknown networks are not judged."""
        host_vnet, vm_vnet = self.bastion_vnet(bastion_id), self.vm_vnet(vm_id)
        if not host_vnet or not vm_vnet or host_vnet.lower() == vm_vnet.lower():
            return True
        with self._lock:
            return self._peers_back(host_vnet, vm_vnet) and self._peers_back(vm_vnet, host_vnet)

    # --- virtual machines ------------------------------------------------------------------------
    def vm_target(self, vm_id: str, port: int) -> tuple[str, int] | None:
        """Loopback endpoint the data plane relays ``vm_id:port`` to; None when nothing is connected."""
        runtime = self._vm_runtime.get(vm_id.lower())
        if not runtime:
            return None
        endpoint = runtime["endpoints"].get(int(port))
        if endpoint is None or endpoint[1] == 0:
            return None
        return endpoint

    def set_vm_endpoint(self, vm_id: str, port: int, host: str, target_port: int) -> None:
        with self._lock:
            runtime = self._vm_runtime.setdefault(vm_id.lower(), {"powerState": "running", "endpoints": {}})
            runtime["endpoints"][int(port)] = (host, int(target_port))

    def vm_power_state(self, vm_id: str) -> str:
        runtime = self._vm_runtime.get(vm_id.lower())
        return runtime["powerState"] if runtime else "running"

    def set_vm_power_state(self, vm_id: str, power_state: str) -> None:
        with self._lock:
            self._vm_runtime.setdefault(vm_id.lower(), {"powerState": "running", "endpoints": {}})[
                "powerState"] = power_state

    def vm_private_ips(self, vm: dict) -> list[str]:
        ips = []
        for nic_ref in vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", []):
            nic = self.get_resource(nic_ref["id"])
            for ip_config in (nic or {}).get("properties", {}).get("ipConfigurations", []):
                address = ip_config.get("properties", {}).get("privateIPAddress")
                if address:
                    ips.append(address)
        return ips

    def find_vm_by_private_ip(self, ip: str) -> dict | None:
        for vm in self.list_resources("microsoft.compute/virtualmachines", f"/subscriptions/{self.subscription_id}"):
            if ip in self.vm_private_ips(vm):
                return vm
        return None

    def bastion_subnet_nsg(self, bastion_id: str) -> dict | None:
        """The NSG associated with the host's AzureBastionSubnet, or None."""
        host = self.get_resource(bastion_id)
        if not host:
            return None
        for ip_config in host.get("properties", {}).get("ipConfigurations", []):
            subnet_id = (ip_config.get("properties", {}).get("subnet") or {}).get("id")
            subnet = self.get_resource(subnet_id) if subnet_id else None
            nsg_ref = (subnet or {}).get("properties", {}).get("networkSecurityGroup")
            if nsg_ref and nsg_ref.get("id"):
                return self.get_resource(nsg_ref["id"])
        return None

    # --- tokens and secrets ----------------------------------------------------------------------
    def remember_secret(self, value: str) -> None:
        if value:
            with self._lock:
                self.issued_secrets.add(value)

    def issue_access_token(self, audience: str, lifetime: int = ACCESS_TOKEN_LIFETIME) -> tuple[str, int]:
        """A signed JWT (HS256 with a per-process key) for the service principal; returns (token, exp)."""
        now = int(time.time())
        claims = {"aud": audience, "iss": f"https://sts.windows.net/{self.tenant_id}/", "iat": now, "nbf": now,
                  "exp": now + lifetime, "appid": self.client_id, "oid": self.client_id, "sub": self.client_id,
                  "tid": self.tenant_id, "idtyp": "app", "jti": uuid.uuid4().hex}
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps(claims).encode())
        signature = _b64url(hmac.new(self._token_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        self.remember_secret(token)
        return token, claims["exp"]

    def verify_access_token(self, token: str) -> dict | None:
        """Claims of an unexpired token this emulator issued, else None."""
        try:
            header, payload, signature = token.split(".")
            expected = _b64url(hmac.new(self._token_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(expected, signature):
                return None
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        return claims if claims.get("exp", 0) > time.time() else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _split_endpoint(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)
