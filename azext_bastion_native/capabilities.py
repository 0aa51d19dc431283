"""Capability matrix of Azure Bastion's native client (DESIGN.md section 3) and the dispatch decision.

The seed's support table (which native client can reach which VM, how, with which features) as data. Pure: no
azure.cli imports; cli_errors.py turns CapabilityRefused into a typed azclierror."""

import platform
from dataclasses import dataclass

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS, IP_CONNECT_PORTS
from azext_bastion_native.errors import VALIDATION, Refused

CLIENT_LABELS = {'windows': 'Windows native client', 'linux': 'Linux native client',
                 'other': 'Other native client (macOS, PuTTY)'}
TARGET_LABELS = {'windows': 'Windows VM', 'linux': 'Linux VM', 'any': 'any VM'}
METHOD_COMMANDS = {'rdp': 'az network bastion rdp', 'ssh': 'az network bastion ssh',
                   'tunnel': 'az network bastion tunnel'}
AAD_AUTH = 'aad'


class CapabilityRefused(Refused):
    """The requested combination is not offered; `recommendation` says what to run instead."""

    def __init__(self, message, recommendation):
        super().__init__(message, recommendation, VALIDATION)


@dataclass(frozen=True)
class Row:  # pylint: disable=too-many-instance-attributes
    client: str             # 'windows' | 'linux' | 'other'
    target_os: str          # 'windows' | 'linux' | 'any'
    method: str             # 'rdp' | 'ssh' | 'tunnel'
    entra_auth: bool
    file_transfer: bool
    concurrent_sessions: bool
    custom_port: bool
    beyond_table: bool = False   # True: this extension offers it, the seed's table does not
    note: str = ''

    def describe(self):
        source = "This extension (beyond the seed's table)" if self.beyond_table else "The seed's table"
        features = ', '.join([
            f"Entra ID auth: {'yes' if self.entra_auth else 'no'}",
            f"file transfer: {'yes' if self.file_transfer else 'no'}",
            f"concurrent VM sessions: {'yes' if self.concurrent_sessions else 'no'}",
            f"custom port: {'yes' if self.custom_port else 'no'}",
        ])
        return (f'{source}: {CLIENT_LABELS[self.client]} -> {TARGET_LABELS[self.target_os]} via '
                f'`{METHOD_COMMANDS[self.method]}` ({features})')


SEED_TABLE = (
    Row('windows', 'windows', 'rdp', True, True, True, True, note='file transfer through RDP'),
    Row('windows', 'linux', 'ssh', True, False, True, True),
    Row('windows', 'any', 'tunnel', False, True, False, False),
    Row('linux', 'linux', 'ssh', True, False, True, True),
    Row('linux', 'any', 'tunnel', False, True, False, False),
    Row('other', 'any', 'tunnel', False, True, False, False),
)

# Where we go further than the seed: every one of these runs over our own tunnel to a local program.
BEYOND_TABLE = (
    Row('linux', 'windows', 'rdp', False, False, False, True, beyond_table=True,
        note='tunnel + a local RDP client (xfreerdp) when installed'),
    Row('other', 'windows', 'rdp', False, False, False, True, beyond_table=True,
        note='tunnel + a local RDP client (xfreerdp) when installed'),
    Row('other', 'linux', 'ssh', False, False, False, True, beyond_table=True,
        note='tunnel + the local OpenSSH client'),
)

ALL_ROWS = SEED_TABLE + BEYOND_TABLE


def _article(label):
    return label if label.startswith('any ') else f'a {label}'


def client_os(system=None):
    """'windows' | 'linux' | 'other' for this machine (or for a given platform.system() value)."""
    system = (system if system is not None else platform.system()).lower()
    if system == 'windows':
        return 'windows'
    if system == 'linux':
        return 'linux'
    return 'other'


def rows_for_client(client):
    return [row for row in ALL_ROWS if row.client == client]


def find_row(client, target_os, method):
    """The row for (client, target VM OS, method): an exact OS row wins over an 'any' row.

    target_os may be None when the VM's OS is not known; only 'any' rows match then."""
    target_os = target_os.lower() if target_os else None
    candidates = [row for row in ALL_ROWS if row.client == client and row.method == method]
    for row in candidates:
        if target_os is not None and row.target_os == target_os:
            return row
    for row in candidates:
        if row.target_os == 'any':
            return row
    return None


def row_as_dict(row):
    return {
        'client': row.client, 'targetOs': row.target_os, 'method': row.method,
        'command': METHOD_COMMANDS[row.method], 'entraAuth': row.entra_auth, 'fileTransfer': row.file_transfer,
        'concurrentSessions': row.concurrent_sessions, 'customPort': row.custom_port,
        'beyondSeedTable': row.beyond_table, 'note': row.note,
    }


def _alternative(client, target_os, port=None):
    """What to run when the requested method is refused: the tunnel row exists for every client."""
    default_port = DEFAULT_METHOD_PORTS['rdp' if (target_os or '').lower() == 'windows' else 'ssh']
    program = 'your RDP client' if default_port == 3389 else 'ssh/scp'
    resource_port = port or default_port
    tunnel = (f'az network bastion tunnel -g RG -n BASTION --target-resource-id VM_ID '
              f'--resource-port {resource_port} --port 50022')
    if client == 'windows' and default_port == 3389:
        return f'use `az network bastion rdp ...`, or `{tunnel}` and {program} to localhost:50022'
    return f'use `{tunnel}` and {program} to localhost:50022'


def decide(client, target_os, method, *, auth_type=None, custom_port=None, ip_connect=False, file_transfer=False):
    """The row allowing this connection, or CapabilityRefused naming the row and the alternative.

    custom_port: the target port asked for (None = the method's default). ip_connect: connecting by IP
    address instead of a VM resource id. file_transfer: the caller needs file transfer over this path."""
    row = find_row(client, target_os, method)
    target_label = TARGET_LABELS.get((target_os or 'any').lower(), f'{target_os} VM')
    if row is None:
        reachable = [r for r in rows_for_client(client) if r.target_os in ('any', (target_os or 'any').lower())]
        offered = '; '.join(r.describe() for r in reachable) or 'nothing'
        raise CapabilityRefused(
            f'`{METHOD_COMMANDS.get(method, method)}` to {_article(target_label)} is not offered from a '
            f'{CLIENT_LABELS[client]}. Offered: {offered}.',
            _alternative(client, target_os, custom_port))
    is_custom_port = custom_port is not None and method in DEFAULT_METHOD_PORTS \
        and int(custom_port) != DEFAULT_METHOD_PORTS[method]
    wants_aad = (auth_type or '').lower() == AAD_AUTH
    if ip_connect and wants_aad:
        raise CapabilityRefused(
            'Entra ID (AAD) sign-in is not offered with IP-based connect.',
            'connect by VM resource id (--target-resource-id) to use --auth-type aad, '
            'or use --auth-type password / ssh-key with --target-ip-address')
    if ip_connect and custom_port is not None and int(custom_port) not in IP_CONNECT_PORTS:
        raise CapabilityRefused(
            f'IP-based connect reaches only ports {", ".join(map(str, IP_CONNECT_PORTS))}, not {custom_port}.',
            'connect by VM resource id (--target-resource-id) to use a custom port')
    if wants_aad and not row.entra_auth:
        raise CapabilityRefused(f'{row.describe()}: Entra ID sign-in is not offered here.',
                                _entra_alternative(row, target_os, custom_port))
    if is_custom_port and not row.custom_port:
        raise CapabilityRefused(f'{row.describe()}: a custom port ({custom_port}) is not offered here.',
                                _alternative(client, target_os, custom_port))
    if file_transfer and not row.file_transfer:
        raise CapabilityRefused(f'{row.describe()}: file transfer is not offered here.',
                                'use `az network bastion file upload/download`, which runs over the tunnel')
    return row


def _entra_alternative(row, target_os, port):
    if row.method == 'tunnel':
        return ('sign in with a local key or password through the tunnel, e.g. '
                + _alternative(row.client, target_os, port))
    return 'use --auth-type password or --auth-type ssh-key'
