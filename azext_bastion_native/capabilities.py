"""Capability matrix of Azure Bastion's native client and the dispatch decision.

The support table of Azure Bastion's documentation (which native client can reach which VM, how, with which
features) as data, with the rows this extension adds, and what to run instead when a combination is refused; the
one home of that page's title and link. Pure: no azure.cli imports; a refusal is a CapabilityRefused (an
errors.Refused), shown at the command boundary as the CLI's typed error."""

import platform
from dataclasses import dataclass

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS, IP_CONNECT_PORTS, native_method
from azext_bastion_native.errors import VALIDATION, Refused

# The page the table comes from (MicrosoftDocs/azure-docs articles/bastion/native-client.md, its "Connecting to
# VMs" table), as users should find it.
SUPPORT_TABLE_TITLE = 'Configure Bastion for native client connections'
SUPPORT_TABLE_URL = 'https://learn.microsoft.com/azure/bastion/native-client'
SUPPORT_TABLE = f'the support table of Azure Bastion\'s documentation "{SUPPORT_TABLE_TITLE}" ({SUPPORT_TABLE_URL})'

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
    beyond_table: bool = False   # True: this extension offers it, the documentation's table does not
    note: str = ''

    def describe(self):
        """The row in words, marked when this extension offers it beyond the documentation's table."""
        source = ' [offered by this extension, beyond the documentation\'s table]' if self.beyond_table else ''
        features = ', '.join([
            f"Entra ID auth: {'yes' if self.entra_auth else 'no'}",
            f"file transfer: {'yes' if self.file_transfer else 'no'}",
            f"concurrent VM sessions: {'yes' if self.concurrent_sessions else 'no'}",
            f"custom port: {'yes' if self.custom_port else 'no'}",
        ])
        return (f'{CLIENT_LABELS[self.client]} -> {TARGET_LABELS[self.target_os]} via '
                f'`{METHOD_COMMANDS[self.method]}` ({features}){source}')

    def source(self):
        """Where the row comes from, with the documentation's title and link."""
        return f'offered by this extension beyond {SUPPORT_TABLE}' if self.beyond_table else f'per {SUPPORT_TABLE}'


DOCUMENTED_TABLE = (
    Row('windows', 'windows', 'rdp', True, True, True, True, note='file transfer through RDP'),
    Row('windows', 'linux', 'ssh', True, False, True, True),
    Row('windows', 'any', 'tunnel', False, True, False, False),
    Row('linux', 'linux', 'ssh', True, False, True, True),
    Row('linux', 'any', 'tunnel', False, True, False, False),
    Row('other', 'any', 'tunnel', False, True, False, False),
)

# Where we go further than the documentation: every one of these runs over our own tunnel to a local program.
BEYOND_TABLE = (
    Row('linux', 'windows', 'rdp', False, False, False, True, beyond_table=True,
        note='tunnel + a local RDP client (xfreerdp) when installed'),
    Row('other', 'windows', 'rdp', False, False, False, True, beyond_table=True,
        note='tunnel + a local RDP client (xfreerdp) when installed'),
    Row('other', 'linux', 'ssh', False, False, False, True, beyond_table=True,
        note='tunnel + the local OpenSSH client'),
)

ALL_ROWS = DOCUMENTED_TABLE + BEYOND_TABLE


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
        'beyondDocumentedTable': row.beyond_table, 'note': row.note,
    }


@dataclass(frozen=True)
class CommandArgs:
    """How a suggested command names the host and the target: the user's own values when known (doctor), else
    placeholders."""
    resource_group: str = 'RG'
    name: str = 'BASTION'
    target: str = '--target-resource-id VM_ID'      # or '--target-ip-address 10.0.0.4'

    def command(self, method, *options):
        return ' '.join([METHOD_COMMANDS[method], '-g', self.resource_group, '-n', self.name, self.target,
                         *options])


# How to sign in without Entra ID, per connect method.
LOCAL_SIGN_IN = {
    'ssh': 'use --auth-type password, or --auth-type ssh-key --ssh-key PATH',
    'rdp': 'drop --auth-type aad: your RDP client then asks for a local account of the VM (RDP with Entra ID goes '
           'through the Bastion gateway, from a Windows native client)',
    'tunnel': 'sign in with a local account of the VM through the tunnel',
}
_LOCAL_PORTS = {22: 50022, 3389: 53389}


def tunnel_suggestion(args, port, method='tunnel'):
    """`az network bastion tunnel` to `port`, then the program that speaks to it: ssh for an ssh method or port 22,
    an RDP client for rdp or 3389, else the service's own client."""
    port = int(port)
    local = _LOCAL_PORTS.get(port, 50000)
    speaks = method if method in DEFAULT_METHOD_PORTS else {22: 'ssh', 3389: 'rdp'}.get(port)
    then = {'ssh': f'ssh -p {local} USER@localhost (scp -P {local} for files)',
            'rdp': f'your RDP client to localhost:{local}'}.get(speaks, f'your client to localhost:{local}')
    return f'`{args.command("tunnel", "--resource-port", str(port), "--port", str(local))}`, then {then}'


def _alternative(target_os, method, port, args):
    """What to run when `method` has no row for this VM OS: the command every client reaches that OS with (ssh to
    Linux, rdp to Windows), or the tunnel to the port asked for, with the program `method` implies."""
    native = native_method(target_os)
    server = {'ssh': 'an SSH server', 'rdp': 'an RDP server (e.g. xrdp)'}.get(method, 'that service')
    wanted = port or DEFAULT_METHOD_PORTS.get(method) or DEFAULT_METHOD_PORTS[native]
    return (f'use `{args.command(native)}`, or, if the VM runs {server} on port {wanted}: '
            f'{tunnel_suggestion(args, wanted, method)}')


def decide(client, target_os, method, *, auth_type=None, custom_port=None, ip_connect=False, file_transfer=False,
           args=None):
    """The row allowing this connection, or CapabilityRefused naming the row and the alternative.

    custom_port: the target port asked for (None = the method's default). ip_connect: connecting by IP
    address instead of a VM resource id. file_transfer: the caller needs file transfer over this path.
    args: the host and target the suggested commands name (CommandArgs; placeholders when None)."""
    args = args or CommandArgs()
    row = find_row(client, target_os, method)
    target_label = TARGET_LABELS.get((target_os or 'any').lower(), f'{target_os} VM')
    if row is None:
        reachable = [r for r in rows_for_client(client) if r.target_os in ('any', (target_os or 'any').lower())]
        offered = '; '.join(r.describe() for r in reachable) or 'nothing'
        raise CapabilityRefused(
            f'`{METHOD_COMMANDS.get(method, method)}` to {_article(target_label)} is not offered from a '
            f'{CLIENT_LABELS[client]}, per {SUPPORT_TABLE} and this extension. Offered: {offered}.',
            _alternative(target_os, method, custom_port, args))
    is_custom_port = custom_port is not None and method in DEFAULT_METHOD_PORTS \
        and int(custom_port) != DEFAULT_METHOD_PORTS[method]
    wants_aad = (auth_type or '').lower() == AAD_AUTH
    if ip_connect and wants_aad:
        raise CapabilityRefused(
            'Entra ID (AAD) sign-in is not offered with IP-based connect.',
            f'connect by VM resource id (--target-resource-id) to use --auth-type aad, or '
            f'{LOCAL_SIGN_IN.get(method, LOCAL_SIGN_IN["tunnel"])} with --target-ip-address')
    if ip_connect and custom_port is not None and int(custom_port) not in IP_CONNECT_PORTS:
        raise CapabilityRefused(
            f'IP-based connect reaches only ports {", ".join(map(str, IP_CONNECT_PORTS))}, not {custom_port}.',
            'connect by VM resource id (--target-resource-id) to use a custom port')
    if wants_aad and not row.entra_auth:
        raise CapabilityRefused(f'{row.describe()}: Entra ID sign-in is not offered here ({row.source()}).',
                                _entra_alternative(row, target_os, custom_port, args))
    if is_custom_port and not row.custom_port:
        raise CapabilityRefused(f'{row.describe()}: a custom port ({custom_port}) is not offered here '
                                f'({row.source()}).', f'use {tunnel_suggestion(args, custom_port, method)}')
    if file_transfer and not row.file_transfer:
        raise CapabilityRefused(f'{row.describe()}: file transfer is not offered here ({row.source()}).',
                                'use `az network bastion file upload/download`, which runs over the tunnel')
    return row


def _entra_alternative(row, target_os, port, args):
    if row.method == 'tunnel':
        wanted = port or DEFAULT_METHOD_PORTS[native_method(target_os)]
        return f'{LOCAL_SIGN_IN["tunnel"]}: {tunnel_suggestion(args, wanted)}'
    return LOCAL_SIGN_IN[row.method]
