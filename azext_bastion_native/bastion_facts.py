"""Facts about Azure Bastion this extension relies on, each defined once: which SKUs have native client, how a
host's SKU name is read, the ports IP connect reaches, the port and VM OS each connect method assumes, and how
Cloud Shell is recognised. Pure: no azure.cli imports, loads at command-table time."""

import os
import re
from dataclasses import dataclass

# SKUs whose hosts have the native client switch (enableTunneling).
NATIVE_CLIENT_SKUS = ('Standard', 'Premium')
# SKUs served from the shared developer endpoint: native client without the switch, no IP connect.
DEVELOPER_SKUS = ('Developer', 'QuickConnect')
SKUS = ('Developer', 'Basic', 'Standard', 'Premium')     # cheapest first; ARM never downgrades a host


@dataclass(frozen=True)
class HostFeature:
    """A boolean setting of a host: its REST property, its flag on create/update, and the SKUs offering it."""
    rest_name: str
    flag: str
    skus: tuple


# bastionHost.json (Azure/azure-rest-api-specs, stable/2024-05-01) properties; the SKUs from Microsoft's "About Bastion
# configuration settings" table: Basic has Kerberos only, Standard everything but session recording and
# private-only deployment, Premium everything, Developer none of them. Flag names as in Microsoft's `bastion`
# extension (src/bastion/azext_bastion/aaz/latest/network/bastion/_create.py) where it has them.
HOST_FEATURES = (
    HostFeature('enableTunneling', '--enable-tunneling', ('Standard', 'Premium')),
    HostFeature('enableIpConnect', '--enable-ip-connect', ('Standard', 'Premium')),
    HostFeature('enableFileCopy', '--file-copy', ('Standard', 'Premium')),
    HostFeature('disableCopyPaste', '--disable-copy-paste', ('Standard', 'Premium')),
    HostFeature('enableShareableLink', '--shareable-link', ('Standard', 'Premium')),
    HostFeature('enableKerberos', '--enable-kerberos', ('Basic', 'Standard', 'Premium')),
    HostFeature('enableSessionRecording', '--session-recording', ('Premium',)),
    HostFeature('enablePrivateOnlyBastion', '--private-only', ('Premium',)),
)
SCALE_UNITS_RANGE = (2, 50)                 # bastionHost.json scaleUnits minimum/maximum
SCALING_SKUS = ('Standard', 'Premium')      # "Host scaling": other SKUs have a fixed 2 units
# IP-based connect only reaches these ports upstream.
IP_CONNECT_PORTS = (22, 3389)
# The port each connect method uses when none is given; another port is the table's "custom port".
# The tunnel has none: its --resource-port is the target itself.
DEFAULT_METHOD_PORTS = {'ssh': 22, 'rdp': 3389}
# A port on the target: 1-65535 (0 is no port).
MAX_PORT = 65535
# When the VM's OS is not known (connecting by IP), each method implies the only OS the table reaches with it;
# the tunnel reaches any.
ASSUMED_TARGET_OS = {'ssh': 'linux', 'rdp': 'windows', 'tunnel': None}


def is_port(value):
    return 1 <= int(value) <= MAX_PORT


def native_method(os_type):
    """The method a VM's OS takes natively: 'rdp' for Windows, 'ssh' for any other (or an unknown) OS."""
    return 'rdp' if (os_type or '').lower() == 'windows' else 'ssh'


# Azure's naming rules for Microsoft.Network/bastionHosts ("Naming rules and restrictions for Azure resources":
# 1-80 characters; letters, digits, underscores, periods and hyphens; starts with a letter or digit, ends with a
# letter, digit or underscore).
BASTION_NAME_RULE = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?')
BASTION_NAME_RULE_TEXT = ('1-80 characters: letters, digits, underscores, periods and hyphens, starting with a letter '
                          'or digit and ending with a letter, digit or underscore')


@dataclass(frozen=True)
class SkuLimits:
    """What a SKU's hosts do not offer native client: ports beyond its own, sessions at the same time."""
    ports: tuple                # the target ports it connects to; any other is a custom port
    concurrent_sessions: bool


# The Developer SKU, per Microsoft's SKU comparison (MicrosoftDocs/azure-docs includes/bastion-sku.md): "Specify
# custom inbound port: No", "Support for concurrent connections: No". Its ports are SSH's and RDP's, as Microsoft's
# ssh extension refuses others ("Custom Ports are not allowed for the Bastion Developer Sku", src/ssh/azext_ssh/
# bastion_utils.py).
SKU_LIMITS = {sku: SkuLimits(ports=(22, 3389), concurrent_sessions=False) for sku in DEVELOPER_SKUS}


def sku_limits(sku):
    """The SkuLimits of `sku`, or None when its hosts have none of these limits."""
    return SKU_LIMITS.get(sku)


def canonical_sku(value):
    """'premium', 'name=Premium', '{name:Premium}' or '{"name": "Premium"}' -> 'Premium': `update --sku` in our form
    and in Microsoft's object form (their _update.py: an AAZObjectArg `--sku` with `name`). ValueError otherwise."""
    text = str(value).strip()
    if text.startswith('{') and text.endswith('}'):
        text = text[1:-1].strip()
    key, separator, name = text.partition('=') if '=' in text else text.partition(':')
    if separator:
        if key.strip().strip('"\'').lower() != 'name':
            raise ValueError(f"'{value}': the only field of --sku is name")
        text = name.strip().strip('"\'')
    for sku in SKUS:
        if sku.lower() == text.lower():
            return sku
    raise ValueError(f"'{value}' is not one of {', '.join(SKUS)}")


def sku_name(host):
    """The SKU name of a host: an azure-mgmt-network BastionHost or its ARM JSON (dict); 'Basic' when absent."""
    sku = host.get('sku') if isinstance(host, dict) else getattr(host, 'sku', None)
    name = sku.get('name') if isinstance(sku, dict) else getattr(sku, 'name', None)
    return str(getattr(name, 'value', name) or 'Basic')


def ip_connect_ports_text():
    """'22 and 3389': the IP-connect ports as a sentence says them."""
    return ' and '.join(str(port) for port in IP_CONNECT_PORTS)


def in_cloud_shell(environ=None):
    """The same test as azure.cli.core.util.in_cloud_console(), without importing azure.cli."""
    return bool((os.environ if environ is None else environ).get('ACC_CLOUD'))


def subscription_of(resource_id):
    """The subscription in an ARM resource ID, or None."""
    from azure.mgmt.core.tools import parse_resource_id
    return parse_resource_id(resource_id or '').get('subscription') or None


def resource_group_of(resource_id):
    """The resource group in an ARM resource ID, or None."""
    from azure.mgmt.core.tools import parse_resource_id
    return parse_resource_id(resource_id or '').get('resource_group') or None


def host_label(resource_group, name):
    """A Bastion host as messages name it."""
    return f"Bastion host '{name}' in resource group '{resource_group}'"
