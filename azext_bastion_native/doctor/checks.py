"""Decide pass / fail / warn / skip for each doctor check, with the detail and the exact fix.

`az network bastion doctor`: each check's decision, as pure functions of facts gathered elsewhere (the host's ARM
JSON, the VM's power state and OS, the NSG's ARM JSON, the environment, probe results). No azure.cli imports and no
network: run.py gathers the facts, probe.py runs the probes."""

from dataclasses import dataclass
from typing import Optional

from azext_bastion_native.bastion_facts import (
    ASSUMED_TARGET_OS, DEFAULT_METHOD_PORTS, DEVELOPER_SKUS, IP_CONNECT_PORTS, NATIVE_CLIENT_SKUS, in_cloud_shell,
    ip_connect_ports_text, native_method, sku_name)
from azext_bastion_native.capabilities import CLIENT_LABELS, CapabilityRefused, CommandArgs, decide

PASS, FAIL, WARN, SKIP = 'pass', 'fail', 'warn', 'skip'
METHODS = ('ssh', 'rdp', 'tunnel')


@dataclass(frozen=True)
class CheckRow:
    check: str
    status: str         # PASS | FAIL | WARN | SKIP
    detail: str
    fix: str = ''

    def as_dict(self):
        return {'check': self.check, 'status': self.status, 'detail': self.detail, 'fix': self.fix}


@dataclass(frozen=True)
class Asked:
    """The connection doctor checks: the host, the target (a VM resource ID or an IP address) and the port."""
    resource_group: str
    name: str
    port: int
    target_resource_id: Optional[str] = None
    target_ip_address: Optional[str] = None

    def command_args(self):
        """The host and target as the suggested commands name them."""
        if self.target_resource_id:
            target = f'--target-resource-id {self.target_resource_id}'
        elif self.target_ip_address:
            target = f'--target-ip-address {self.target_ip_address}'
        else:
            target = CommandArgs.target
        return CommandArgs(self.resource_group, self.name, target)

    def target_label(self):
        if self.target_resource_id:
            from azure.mgmt.core.tools import parse_resource_id
            parts = parse_resource_id(self.target_resource_id)
            instance = f"/{parts['child_name_1']}" if parts.get('child_name_1') else ''     # a scale set's VM
            return f"VM '{parts.get('name')}{instance}'"
        return self.target_ip_address or 'the target'


@dataclass(frozen=True)
class Failure:
    """Why a fact could not be had (an ARM read refused, no sign-in): the message and the tool's own fix."""
    message: str
    recommendation: str = ''


def skipped(check, because):
    return CheckRow(check, SKIP, because)


def _enable_command(resource_group, name):
    return f'az network bastion native-client enable -g {resource_group} -n {name}'


def host_fix(host, resource_group, name, target_ip_address=None):
    """The one command that gives this host what the connection needs - Standard SKU (confirmed with --yes: a
    fix must run without a terminal), native client, and IP connect when connecting by IP - so whichever failing
    row's fix the user runs, it works alone. Developer hosts cannot be upgraded in place: a Standard host is
    deployed instead."""
    sku = sku_name(host)
    if sku in DEVELOPER_SKUS:
        return (f'{sku} hosts cannot be upgraded in place; deploy a Standard host: az network bastion create '
                f'-g {resource_group} -n NEW_NAME --vnet-name VNET --public-ip-address STANDARD_STATIC_IP'
                + (' --enable-ip-connect true' if target_ip_address else ''))
    options = [] if sku in NATIVE_CLIENT_SKUS else ['--upgrade-sku']
    if target_ip_address and not _props(host).get('enableIpConnect'):
        options.append('--enable-ip-connect')
    if '--upgrade-sku' in options:
        options.append('--yes')
    return ' '.join([_enable_command(resource_group, name), *options])


# -- 1, 2: where and who -----------------------------------------------------------------------
def check_cloud_shell(environ):
    if in_cloud_shell(environ):
        return CheckRow('Cloud Shell', FAIL, 'Running in Azure Cloud Shell: native client connections are not '
                                             'supported there (configuration commands still work).',
                        'Connect from the Azure portal (Bastion > Connect, browser connection), or run az with this '
                        'extension on your own computer.')
    return CheckRow('Cloud Shell', PASS, 'Not in Azure Cloud Shell.')


def check_side_by_side(microsoft_extension_path):
    """A row only when Microsoft's `bastion` extension is installed too (side_by_side.py): which one runs is luck."""
    if not microsoft_extension_path:
        return None
    from azext_bastion_native.side_by_side import REMOVE_COMMAND, clash_message
    return CheckRow('Other bastion extension', FAIL, clash_message(microsoft_extension_path), REMOVE_COMMAND)


def check_sign_in(failure: Optional[Failure]):
    if failure is not None:
        return CheckRow('Signed in', FAIL, f'No Azure Resource Manager token: {failure.message}', 'az login')
    return CheckRow('Signed in', PASS, 'An Azure Resource Manager access token can be had.')


# -- 3, 4, 5: the host ---------------------------------------------------------------------------
def _props(resource):
    return (resource or {}).get('properties') or {}


def check_host(host, failure: Optional[Failure], resource_group, name, target_ip_address=None):
    """host: the Bastion host's ARM JSON (None when the GET failed, see `failure`)."""
    if host is None:
        failure = failure or Failure('not read')
        return CheckRow('Bastion host', FAIL, failure.message,
                        failure.recommendation or f'az network bastion list -g {resource_group} -o table')
    sku = sku_name(host)
    state = _props(host).get('provisioningState') or 'unknown'
    if sku in NATIVE_CLIENT_SKUS:
        return CheckRow('Bastion host', PASS, f'{sku} SKU, provisioning state {state}.')
    if sku in DEVELOPER_SKUS:
        return CheckRow('Bastion host', WARN, f'{sku} SKU: native client goes through the shared developer '
                                              'endpoint (no IP connect, no custom settings).',
                        host_fix(host, resource_group, name, target_ip_address))
    return CheckRow('Bastion host', FAIL, f'{sku} SKU: native client needs Standard or Premium.',
                    host_fix(host, resource_group, name, target_ip_address))


def check_native_client(host, resource_group, name, target_ip_address=None):
    if host is None:
        return skipped('Native client', 'The host was not read.')
    if sku_name(host) in DEVELOPER_SKUS:
        return skipped('Native client', f'{sku_name(host)} SKU has no tunnelling switch.')
    if _props(host).get('enableTunneling'):
        return CheckRow('Native client', PASS, 'Native client support (enableTunneling) is on.')
    return CheckRow('Native client', FAIL, 'Native client support (enableTunneling) is off.',
                    host_fix(host, resource_group, name, target_ip_address))


def check_ip_connect(host, target_ip_address, port, resource_group, name):
    if not target_ip_address:
        return skipped('IP connect', 'Not asked: no --target-ip-address.')
    if host is None:
        return skipped('IP connect', 'The host was not read.')
    if sku_name(host) in DEVELOPER_SKUS:
        return CheckRow('IP connect', FAIL, f'{sku_name(host)} SKU has no IP connect; {target_ip_address} cannot be '
                                            'reached by address.',
                        'Connect by --target-resource-id, or ' + host_fix(host, resource_group, name,
                                                                          target_ip_address))
    if not _props(host).get('enableIpConnect'):
        return CheckRow('IP connect', FAIL, f'IP connect (enableIpConnect) is off; {target_ip_address} cannot be '
                                            'reached by address.',
                        host_fix(host, resource_group, name, target_ip_address))
    if port not in IP_CONNECT_PORTS:
        return CheckRow('IP connect', FAIL, f'IP connect reaches ports {ip_connect_ports_text()} only, not {port}.',
                        'Use --resource-port 22 or 3389, or connect by --target-resource-id.')
    return CheckRow('IP connect', PASS, f'IP connect is on; port {port} is allowed.')


# -- 6: the target and the documentation's support table -------------------------------------------
@dataclass(frozen=True)
class VmFacts:
    name: str
    resource_group: str
    power_state: Optional[str]      # 'running', 'stopped', 'deallocated', ... (None: no instance view)
    os_type: Optional[str]          # 'linux' | 'windows' | None
    start_command: str = ''


def check_target_vm(vm: Optional[VmFacts], failure: Optional[Failure], target_resource_id, target_ip_address):
    if not target_resource_id:
        return skipped('Target VM', f'Connecting by IP address ({target_ip_address}): the VM is not looked up.'
                       if target_ip_address else 'Not asked: no --target-resource-id.')
    if vm is None:
        failure = failure or Failure('not read')
        return CheckRow('Target VM', FAIL, failure.message,
                        failure.recommendation or 'Check the ID: az vm show -g RG -n VM --query id -o tsv')
    label = f"VM '{vm.name}'"
    if vm.power_state is None:
        return CheckRow('Target VM', WARN, f'{label}: no power state in its instance view.',
                        f'az vm get-instance-view -g {vm.resource_group} -n {vm.name}')
    if vm.power_state.lower() != 'running':
        return CheckRow('Target VM', FAIL, f'{label} is {vm.power_state}; Bastion can only reach a running VM.',
                        vm.start_command or f'az vm start -g {vm.resource_group} -n {vm.name}')
    if not vm.os_type:
        return CheckRow('Target VM', WARN, f'{label} is running; its OS type is not known.',
                        'Use --method tunnel, which works for any OS.')
    return CheckRow('Target VM', PASS, f'{label} is running, OS {vm.os_type.capitalize()}.')


def check_network(reach, refusal, skipped_because=''):
    """Does the host reach the VM's virtual network? ``reach``: management.network_reach.Reach or None;
    ``refusal``: the pre-flight's refusal for it (connect.preflight.reach_refusal), whose words and fix the row
    shows, as `ssh`/`tunnel` would refuse."""
    if skipped_because:
        return skipped('Network', skipped_because)
    if refusal is not None:
        return CheckRow('Network', FAIL, refusal.message, refusal.recommendation or '')
    if reach is None or not (reach.host_vnet and reach.vm_vnet):
        return skipped('Network', "The host's or the VM's virtual network could not be read.")
    vm_network = reach.vm_vnet.rsplit('/', 1)[-1]
    how = "the host's own" if reach.vm_vnet == reach.host_vnet else "peered with the host's (Connected)"
    return CheckRow('Network', PASS, f"The VM is on virtual network '{vm_network}', {how}.")


def choose_method(method, port, os_type):
    """The method to check: as asked, else from the port (22 ssh, 3389 rdp, other tunnel), else from the OS."""
    if method:
        return method
    if port is not None:
        return {default: method for method, default in DEFAULT_METHOD_PORTS.items()}.get(int(port), 'tunnel')
    return native_method(os_type)


def choose_port(port, method, os_type):
    if port is not None:
        return int(port)
    if method in DEFAULT_METHOD_PORTS:
        return DEFAULT_METHOD_PORTS[method]
    return DEFAULT_METHOD_PORTS[native_method(os_type)]


def check_method(client, method, os_type, asked: Asked):
    """The documentation's support table (and this extension's additions) for this client OS, target OS and
    method; a refusal's fix names the user's own host and target."""
    port = asked.port
    target_os = os_type or ASSUMED_TARGET_OS[method]
    assumed = '' if os_type or not target_os else f' (VM OS not known: {target_os.capitalize()} assumed)'
    try:
        row = decide(client, target_os, method, custom_port=port if method != 'tunnel' else None,
                     ip_connect=bool(asked.target_ip_address), args=asked.command_args())
    except CapabilityRefused as refused:
        return CheckRow('Method', FAIL, refused.message + assumed, refused.recommendation or '')
    return CheckRow('Method', PASS, f'{method} on port {port}{assumed}: {row.describe()}, {row.source()}.')


# -- 7: the NSG on AzureBastionSubnet --------------------------------------------------------------
def outbound_blocker(nsg, port):
    """The user's rule that denies Bastion -> VirtualNetwork on `port` (first match wins), or None."""
    from azext_bastion_native.nsg.check import first_match, user_rules
    rule = first_match(user_rules(nsg), 'Outbound', 'virtualnetwork', 'virtualnetwork', int(port))
    return rule if rule is not None and rule.access == 'Deny' else None


def nsg_ports(port):
    """The ports the NSG should let through: 22 and 3389 (the rule set's default) plus the target port."""
    return [str(p) for p in sorted({22, 3389} | ({int(port)} if port else set()))]


def apply_command(resource_group, name, port):
    return f'az network bastion nsg apply -g {resource_group} -n {name} --ports {" ".join(nsg_ports(port))}'


def check_nsg(nsg, failure: Optional[Failure], port, resource_group, name):
    """nsg: ARM JSON of the NSG on AzureBastionSubnet, None when there is none (or, with `failure`, unread)."""
    from azext_bastion_native.nsg.check import FINE_KINDS, check
    from azext_bastion_native.nsg.rule_set import bastion_rule_set
    if failure is not None:
        return CheckRow('NSG', WARN, f'Not checked: {failure.message}', failure.recommendation)
    fix = apply_command(resource_group, name, port)
    if nsg is None:
        return CheckRow('NSG', PASS, 'AzureBastionSubnet has no NSG: nothing blocks native client (nor limits its '
                                     f'ports; to limit them: {fix}).')
    blocker = outbound_blocker(nsg, port) if port else None
    if blocker is not None:
        return CheckRow('NSG', FAIL, f'Outbound port {port} to VirtualNetwork is denied by rule {blocker.name} '
                                     f'(priority {blocker.priority}): Bastion cannot reach the VM.', fix)
    direction = {rule.name: rule.direction for rule in bastion_rule_set()}
    report = check(nsg, nsg_ports(port))
    fails = [f for f in report.findings if f.kind == 'breaking'
             or (f.kind == 'missing' and direction.get(f.rule) == 'Inbound')]
    warns = [f for f in report.findings if f.kind not in FINE_KINDS and f not in fails]
    if fails:
        return CheckRow('NSG', FAIL, '; '.join(f'{f.rule}: {f.detail}' for f in fails), fix)
    if warns:
        return CheckRow('NSG', WARN, '; '.join(f'{f.rule or "NSG"}: {f.detail}' for f in warns),
                        f'az network bastion nsg check -g {resource_group} -n {name} -o table, then {fix}')
    return CheckRow('NSG', PASS, f'The NSG carries the rule set; port {port} is allowed.' if port
                    else 'The NSG carries the rule set.')


# -- 8: programs on this machine -----------------------------------------------------------------
def check_local_clients(method, client, which, environ=None):
    """which(name) -> path or None (shutil.which); environ: the environment (DISPLAY, WAYLAND_DISPLAY)."""
    if method == 'ssh':
        return _ssh_client_row(which)
    if method == 'rdp':
        return _rdp_client_row(client, which, environ)
    return CheckRow('Local client', PASS, 'The tunnel needs no local program of its own; point any client at it.')


def _ssh_client_row(which):
    ssh, scp = which('ssh'), which('scp')
    if not ssh:
        return CheckRow('Local client', FAIL, 'No OpenSSH client (ssh) on PATH.',
                        'Install OpenSSH: apt-get install openssh-client (Debian/Ubuntu), or Windows Settings > '
                        'Optional features > OpenSSH Client.')
    if not scp:
        return CheckRow('Local client', WARN, f'ssh: {ssh}; no scp on PATH (file copies will not work).',
                        'Install the full OpenSSH client package.')
    return CheckRow('Local client', PASS, f'ssh: {ssh}; scp: {scp}.')


def _rdp_client_row(client, which, environ):
    from azext_bastion_native.clients.rdp import find_launcher, no_display
    launcher = find_launcher(client, which, environ)
    if launcher is None and no_display(client, environ) and find_launcher(client, which, {'DISPLAY': ':0'}):
        return CheckRow('Local client', WARN, 'No display here (neither DISPLAY nor WAYLAND_DISPLAY is set): '
                                              '`az network bastion rdp` will only open the tunnel and print the '
                                              'command to connect.',
                        'Run it in a desktop session, or connect an RDP client on a machine with a display to '
                        'the tunnel (ssh -L PORT:127.0.0.1:PORT this machine).')
    if launcher is None:
        return CheckRow('Local client', WARN, f'No RDP client found for the {CLIENT_LABELS[client]} (xfreerdp, '
                                              'wlfreerdp, or macOS open): `az network bastion rdp` will only '
                                              'open the tunnel and print where to connect.',
                        'apt-get install freerdp2-x11 (Debian/Ubuntu), or install an RDP client.')
    return CheckRow('Local client', PASS, f'RDP client: {launcher.program} ({launcher.kind}).')


# -- 9: the data plane ---------------------------------------------------------------------------
MINT, WEBSOCKET = 'mint', 'websocket'


@dataclass(frozen=True)
class ProbeResult:  # pylint: disable=too-many-instance-attributes
    """What a data-plane probe found. kind: 'tls' (handshake only) or 'session' (minted, its websocket opened and
    closed, deleted); stage: the step of a session probe that failed (MINT or WEBSOCKET)."""
    kind: str
    endpoint: str
    ok: bool
    elapsed_ms: float = 0.0
    error: str = ''
    status: Optional[int] = None    # HTTP status of a refused mint or websocket
    deleted: bool = True            # 'session': the minted session was deleted again
    verify: bool = True             # TLS certificates verified (AZURE_CLI_DISABLE_CONNECTION_VERIFICATION unset)
    stage: str = ''


def check_data_plane(probe: Optional[ProbeResult], why_not='', asked: Optional[Asked] = None,
                     nsg_denies_port: Optional[bool] = False):
    """nsg_denies_port: the NSG row found the target port denied outbound (None: the NSG was not read)."""
    if probe is None:
        return skipped('Data plane', why_not or 'Nothing to probe.')
    unverified = '' if probe.verify else ' (certificate NOT verified: AZURE_CLI_DISABLE_CONNECTION_VERIFICATION)'
    port = f'port {asked.port}' if asked else 'the target port'
    if probe.ok and probe.kind == 'tls':
        return CheckRow('Data plane', PASS, f'TLS handshake with {probe.endpoint} in {probe.elapsed_ms:.0f} ms'
                                            f'{unverified}.{" " + why_not if why_not else ""}')
    if probe.ok and not probe.deleted:
        return CheckRow('Data plane', WARN, f'A session to the target was minted and {port} answered in '
                                            f'{probe.elapsed_ms:.0f} ms, but deleting the session failed; it ends '
                                            'when Bastion expires it.',
                        f'az network bastion session list -g {asked.resource_group} -n {asked.name}, then session '
                        'disconnect' if asked else 'az network bastion session list, then session disconnect')
    if probe.ok:
        return CheckRow('Data plane', PASS, f'Session minted through {probe.endpoint}, its websocket opened ({port} '
                                            f'answered) and closed, session deleted: {probe.elapsed_ms:.0f} ms round '
                                            f'trip{unverified}.')
    if probe.stage == WEBSOCKET:
        return CheckRow('Data plane', FAIL, f'A session was minted through {probe.endpoint}, but its websocket to '
                                            f'{port} of the target failed: {probe.error}',
                        _data_plane_fix(probe, asked, nsg_denies_port))
    return CheckRow('Data plane', FAIL, f'{probe.endpoint}: {probe.error}',
                    _data_plane_fix(probe, asked, nsg_denies_port))


# Bastion answers a websocket whose target does not accept the TCP connection with a gateway error.
TARGET_UNREACHABLE_STATUSES = (502, 504)


def _data_plane_fix(probe, asked: Optional[Asked], nsg_denies_port):
    """The fix for a failed probe, from its cause: the target port (websocket refused with a gateway error), the
    sign-in (401), the NSG or a role (403: the NSG row, or Bastion's own words, say which), the target (404),
    TLS, or the network."""
    if asked is not None:
        if probe.stage == WEBSOCKET and probe.status in TARGET_UNREACHABLE_STATUSES:
            return _target_port_fix(asked)
        if probe.status == 403:
            return _forbidden_fix(probe, asked, nsg_denies_port)
        if probe.status == 404:
            return _not_found_fix(asked)
    if probe.status == 401:
        return 'Sign in again: az login (Bastion did not accept your access token).'
    if 'certificate' in probe.error.lower() or 'ssl' in probe.error.lower():
        return ('Trust the CA that signs the endpoint: set REQUESTS_CA_BUNDLE to its PEM bundle (a TLS-inspecting '
                'proxy needs its own CA there).')
    return ('Check that this machine reaches the host on 443 (proxy: HTTPS_PROXY/NO_PROXY), then retry; '
            'az network bastion show shows the host\'s state.')


def _target_port_fix(asked: Asked):
    return (f'Nothing accepted the connection on port {asked.port} of {asked.target_label()}: start the service '
            f'that should listen there, allow port {asked.port} inbound from AzureBastionSubnet in the VM\'s own '
            'firewall and in the NSG on its subnet or NIC, or give the port it listens on with --resource-port.')


def _forbidden_fix(probe, asked: Asked, nsg_denies_port):
    apply = apply_command(asked.resource_group, asked.name, asked.port)
    if nsg_denies_port or 'network security group' in probe.error.lower():
        return apply
    scope = asked.target_resource_id or 'RESOURCE_ID'
    role = ('Your account needs the Reader role on the Bastion host, the VM, its NIC and its virtual network; an '
            f'owner grants it with az role assignment create --assignee YOUR_ACCOUNT --role Reader --scope {scope} '
            '(and the same for the others).')
    if nsg_denies_port is None:     # the NSG could not be read: it may be the cause as well
        return f'{role} If the NSG on AzureBastionSubnet denies port {asked.port}: {apply}'
    return role


def _not_found_fix(asked: Asked):
    if asked.target_ip_address:
        return (f'No VM answers at {asked.target_ip_address} from this host: check the address (az vm '
                f'list-ip-addresses -g {asked.resource_group} -o table) and that its virtual network is the '
                'host\'s or peered with it.')
    return f'Check the VM: az vm show --ids {asked.target_resource_id}'


def exit_code(rows, failing_code):
    """failing_code when any row failed (warnings and skips do not fail), else 0."""
    return failing_code if any(row.status == FAIL for row in rows) else 0
