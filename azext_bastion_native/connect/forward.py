"""`az network bastion forward`: many local forwards (-L) and a SOCKS5 proxy (-D) to VMs by name, through one Bastion
host, on the relay service (relay/tunnel.py) - one process, one ARM read of the host, one data-plane client.

A VM is named by its name (in --vm-resource-group, default the host's resource group), NAME.RESOURCEGROUP, its
resource id, or a private IP address (IP connect, which reaches ports 22 and 3389 only). Every -L target is
resolved and checked before anything listens; SOCKS5 names are resolved the same way per connection, from a list of
VMs read once and read again on a miss (at most every REREAD_INTERVAL seconds)."""

import ipaddress
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from knack.log import get_logger

from azext_bastion_native.bastion_facts import MAX_PORT
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.relay.socks import Reply

logger = get_logger(__name__)

COMMAND_NAME = 'network bastion forward'
DEFAULT_BIND = '127.0.0.1'
REREAD_INTERVAL = 5.0           # seconds between two reads of a resource group's VMs on a name miss
_EXAMPLE_L = '-L 8080:web-1:80 (or -L 127.0.0.1:0:web-1.other-rg:5432)'


@dataclass(frozen=True)
class LocalForward:
    """One -L: listen on bind_address:port, relay to vm:vm_port (vm as the user wrote it)."""
    spec: str
    bind_address: str
    port: int
    vm: str
    vm_port: int


def _fields(text: str) -> List[str]:
    """``text`` split at colons, except inside [brackets] (an IPv6 address), brackets removed."""
    fields, current, depth = [], '', 0
    for char in text:
        if char == '[':
            depth += 1
        elif char == ']':
            depth -= 1
        elif char == ':' and depth == 0:
            fields.append(current)
            current = ''
            continue
        else:
            current += char
    fields.append(current)
    return fields


def _port(text: str, option: str, spec: str, lowest: int) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not lowest <= port <= MAX_PORT:
        allowed = f'0-{MAX_PORT} (0: a free one)' if lowest == 0 else f'1-{MAX_PORT}'
        raise Refused(f"{option} '{spec}': '{text}' is not a port ({allowed}).", f'For example {_EXAMPLE_L}.',
                      Kind.INVALID_ARGUMENT)
    return port


def _bind(text: str) -> str:
    """ssh's reading: an empty or '*' address is every address of this machine."""
    return '0.0.0.0' if text in ('', '*') else text


def parse_local_forward(spec: str) -> LocalForward:
    fields = _fields(spec)
    if len(fields) == 3:
        fields.insert(0, DEFAULT_BIND)
    if len(fields) != 4 or not fields[2]:
        raise Refused(f"-L '{spec}' is not [BIND:]PORT:VM:VMPORT.", f'For example {_EXAMPLE_L}.',
                      Kind.INVALID_ARGUMENT)
    return LocalForward(spec, _bind(fields[0]), _port(fields[1], '-L', spec, 0), fields[2],
                        _port(fields[3], '-L', spec, 1))


def parse_socks(spec: str) -> Tuple[str, int]:
    """-D [BIND:]PORT -> (bind address, port)."""
    fields = _fields(spec)
    if len(fields) == 1:
        fields.insert(0, DEFAULT_BIND)
    if len(fields) != 2:
        raise Refused(f"-D '{spec}' is not [BIND:]PORT.", 'For example -D 1080, or -D 0 for a free port.',
                      Kind.INVALID_ARGUMENT)
    return _bind(fields[0]), _port(fields[1], '-D', spec, 0)


class TargetRefused(Refused):
    """A target that cannot be reached, with the SOCKS5 reply that says so to a SOCKS client."""

    def __init__(self, reply: Reply, message: str, recommendation: Optional[str] = None,
                 kind: Kind = Kind.VALIDATION):
        super().__init__(message, recommendation, kind)
        self.reply = reply


@dataclass(frozen=True)
class KnownVm:
    name: str
    resource_group: str
    id: str
    vnet: Optional[str]             # lower-case VNet ID of its primary NIC, None when it has none


@dataclass(frozen=True)
class Resolved:
    target: object                  # dataplane.Target
    vm: Optional[KnownVm]           # None for an IP address


def _vnet_of_nic(nic) -> Optional[str]:
    from azext_bastion_native.management.network_reach import vnet_of_subnet
    for ip_config in getattr(nic, 'ip_configurations', None) or []:
        vnet = vnet_of_subnet(getattr(getattr(ip_config, 'subnet', None), 'id', None))
        if vnet:
            return vnet
    return None


class VmDirectory:
    """The VMs of the resource groups asked about, by name, with the VNet of each one's primary NIC (one list of VMs
    and one of NICs per group), and the networks the host reaches with their address spaces. Thread-safe: SOCKS5
    connections look names up from worker threads."""

    def __init__(self, cli_ctx, host, subscription):
        self.cli_ctx = cli_ctx
        self.host = host
        self.subscription = subscription
        self._groups: Dict[str, Tuple[float, Dict[str, KnownVm]]] = {}    # group (lower) -> (read at, VMs)
        self._reach: Optional[Tuple[frozenset, tuple]] = None
        self._lock = threading.Lock()

    def reach(self) -> Tuple[frozenset, tuple]:
        """(lower-case VNet IDs the host reaches, their address prefixes as ip_network objects)."""
        with self._lock:
            if self._reach is None:
                self._reach = self._read_reach()
            return self._reach

    def _read_reach(self):
        from azure.mgmt.core.tools import parse_resource_id
        from azext_bastion_native.management.clients import cf_network
        from azext_bastion_native.bastion_facts import subscription_of
        from azext_bastion_native.management.network_reach import host_vnet, reachable_vnets
        vnet_id = host_vnet(self.host)
        if not vnet_id:
            return frozenset(), ()
        vnets = frozenset(reachable_vnets(cf_network(self.cli_ctx, subscription_id=subscription_of(vnet_id)), vnet_id))
        prefixes = []
        for vnet in vnets:
            parts = parse_resource_id(vnet)
            network = cf_network(self.cli_ctx, subscription_id=parts['subscription'])
            read = network.virtual_networks.get(parts['resource_group'], parts['name'])
            for prefix in getattr(getattr(read, 'address_space', None), 'address_prefixes', None) or []:
                prefixes.append(ipaddress.ip_network(prefix, strict=False))
        return vnets, tuple(prefixes)

    def find(self, name: str, group: str) -> Optional[KnownVm]:
        """The VM ``name`` in ``group`` (case-insensitive), read again when missing and not read lately."""
        key = group.lower()
        with self._lock:
            cached = self._groups.get(key)
            if cached is None or (name.lower() not in cached[1] and time.monotonic() - cached[0] >= REREAD_INTERVAL):
                cached = self._groups[key] = (time.monotonic(), self._read_group(group))
            return cached[1].get(name.lower())

    def _read_group(self, group: str) -> Dict[str, KnownVm]:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.mgmt.core.tools import parse_resource_id
        from azext_bastion_native.management.clients import cf_compute, cf_network
        logger.debug("reading the VMs of resource group '%s'", group)
        compute = cf_compute(self.cli_ctx, subscription_id=self.subscription)
        network = cf_network(self.cli_ctx, subscription_id=self.subscription)
        try:
            found = list(compute.virtual_machines.list(group))
        except ResourceNotFoundError:
            return {}                   # no such resource group: no VM of that name
        nics = {(nic.id or '').lower(): nic for nic in network.network_interfaces.list(group)} if found else {}
        vms = {}
        for vm in found:
            refs = getattr(getattr(vm, 'network_profile', None), 'network_interfaces', None) or []
            primary = next((ref for ref in refs if getattr(ref, 'primary', False)), refs[0] if refs else None)
            nic = nics.get(primary.id.lower()) if primary is not None else None
            if primary is not None and nic is None:       # a NIC in another resource group
                parts = parse_resource_id(primary.id)
                nic = network.network_interfaces.get(str(parts['resource_group']), str(parts['name']))
            vms[vm.name.lower()] = KnownVm(vm.name, str(parse_resource_id(vm.id)['resource_group']), vm.id,
                                           _vnet_of_nic(nic) if nic is not None else None)
        return vms


class TargetResolver:  # pylint: disable=too-few-public-methods
    """VM text (a name, NAME.RESOURCEGROUP, a resource id or a private IP) and port -> the data-plane Target, with
    the checks the host and the documentation's table make; TargetRefused (with its SOCKS5 reply) otherwise."""

    def __init__(self, directory: VmDirectory, host, resource_group: str, name: str, vm_resource_group: str):
        self.directory = directory
        self.host = host
        self.resource_group = resource_group
        self.name = name
        self.vm_resource_group = vm_resource_group

    def resolve(self, vm_text: str, port: int) -> Resolved:
        try:
            address = ipaddress.ip_address(vm_text)
        except ValueError:
            address = None
        if address is not None:
            return Resolved(self._plan(port, ip_address=str(address)), None)
        vm = self._find(vm_text)
        vnets, _ = self.directory.reach()
        if vm.vnet not in vnets:
            raise TargetRefused(Reply.NETWORK_UNREACHABLE,
                                f"VM '{vm.name}' (resource group '{vm.resource_group}') is not in the Bastion host's "
                                'virtual network or one connected to it by peering.',
                                'Peer its virtual network with the host\'s (both ways), or use a Bastion host in its '
                                'own network.')
        return Resolved(self._plan(port, resource_id=vm.id), vm)

    def _find(self, vm_text: str) -> KnownVm:
        if vm_text.startswith('/'):
            from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id
            parts = parse_resource_id(vm_text) if is_valid_resource_id(vm_text) else {}
            if str(parts.get('type') or '').lower() != 'virtualmachines' or parts.get('child_type_1'):
                raise TargetRefused(Reply.HOST_UNREACHABLE, f"'{vm_text}' is not a virtual machine resource ID.",
                                    'Get it with: az vm show -g RG -n VM --query id -o tsv', Kind.INVALID_ARGUMENT)
            candidates: List[Tuple[str, str]] = [(str(parts['name']), str(parts['resource_group']))]
        else:
            # NAME in the VM resource group first; then NAME.RESOURCEGROUP at each dot (names may hold dots).
            candidates = [(vm_text, self.vm_resource_group)] + [
                (match.string[:match.start()], match.string[match.end():]) for match in re.finditer(r'\.', vm_text)
                if match.start() and match.end() < len(vm_text)]
        for vm_name, group in candidates:
            found = self.directory.find(vm_name, group)
            if found is not None:
                return found
        raise TargetRefused(Reply.HOST_UNREACHABLE,
                            f"No VM named '{vm_text}' in resource group '{self.vm_resource_group}'"
                            + (' (nor as NAME.RESOURCEGROUP).' if len(candidates) > 1 else '.'),
                            f'List them: az vm list -g {self.vm_resource_group} -o table; a VM of another group '
                            'is NAME.RESOURCEGROUP.', Kind.NOT_FOUND)

    def _plan(self, port: int, resource_id: Optional[str] = None, ip_address: Optional[str] = None):
        from azext_bastion_native.connect.preflight import ConnectRequest, PreflightError, plan_connection
        if ip_address is not None:
            _, prefixes = self.directory.reach()
            address = ipaddress.ip_address(ip_address)
            if not any(address in prefix for prefix in prefixes):
                raise TargetRefused(Reply.NETWORK_UNREACHABLE,
                                    f'{ip_address} is not in the address space of the Bastion host\'s virtual '
                                    'network or one connected to it by peering.',
                                    'Give a private IP address of a VM in those networks, or the VM\'s name.')
        try:
            _, target = plan_connection(self.host, ConnectRequest(self.resource_group, self.name, port, resource_id,
                                                                  ip_address))
        except PreflightError as refused:
            raise TargetRefused(Reply.NOT_ALLOWED, refused.message, refused.recommendation, refused.kind) from None
        return target


def check_running(cli_ctx, vm: KnownVm) -> None:
    """One ARM GET of the VM's instance view: refused unless it runs (Bastion cannot connect to it otherwise)."""
    from azure.mgmt.core.tools import parse_resource_id
    from azext_bastion_native.management import vms
    parts = parse_resource_id(vm.id)
    ref = vms.VmRef(str(parts['subscription']), vm.resource_group, vm.name)
    power = vms.power_state(vms.read_vm(cli_ctx, ref))
    if power is not None and power.lower() != 'running':
        raise Refused(f'{ref.label} is not running (power state: {power}); Bastion cannot connect to it.',
                      f'Start it first: {ref.start_command}')


def socks_resolver(resolver: TargetResolver):
    """The SOCKS5 listener's ``resolve``: the same resolution on a worker thread; every failure a reply code. A name
    and port resolved once answer from memory after (as the VM list does: a hit is never read again), so a warm
    SOCKS5 connection costs no thread hop."""
    import asyncio
    from azext_bastion_native.relay.socks import SocksRefused
    resolved: Dict[Tuple[str, int], object] = {}

    def resolve_now(host_name, port):
        try:
            target = resolved[(host_name.lower(), port)] = resolver.resolve(host_name, port).target
            return target
        except TargetRefused as refused:
            raise SocksRefused(refused.reply, refused.message) from None
        except Exception as err:  # pylint: disable=broad-except
            # ARM could not be read (throttled, signed out): the client is told, and the next request tries again.
            raise SocksRefused(Reply.GENERAL_FAILURE, ' '.join(str(err).split())[:300] or type(err).__name__) \
                from None

    async def resolve(request):
        known = resolved.get((request.host.lower(), request.port))
        if known is not None:
            return known
        return await asyncio.get_running_loop().run_in_executor(None, resolve_now, request.host, request.port)
    return resolve


@dataclass(frozen=True)
class ForwardRequest:  # pylint: disable=too-many-instance-attributes
    """What one `forward` asks for, as the command takes it and as it goes to the connection agent (--background)."""
    resource_group: str
    name: str
    local_forward: Tuple[str, ...] = ()
    socks: Optional[str] = None
    vm_resource_group: Optional[str] = None
    timeout: Optional[float] = None
    idle_timeout: Optional[float] = None
    max_connections: Optional[int] = None
    subscription: Optional[str] = None

    def as_wire(self) -> dict:
        return {'resource_group': self.resource_group, 'name': self.name, 'local_forward': list(self.local_forward),
                'socks': self.socks, 'vm_resource_group': self.vm_resource_group, 'timeout': self.timeout,
                'idle_timeout': self.idle_timeout, 'max_connections': self.max_connections,
                'subscription': self.subscription}

    @classmethod
    def from_wire(cls, wire: dict) -> 'ForwardRequest':
        values: Dict[str, Any] = {key: wire.get(key) for key in cls.__dataclass_fields__}  # pylint: disable=no-member
        values['local_forward'] = tuple(values['local_forward'] or ())
        return cls(**values)


@dataclass
class Planned:
    """A forward resolved and checked: its -L specs, its listeners (-L in order, then SOCKS5), and the host's."""
    forwards: List[LocalForward]
    listeners: list
    endpoint: object
    subscription: Optional[str]

    def ready(self, bound) -> dict:
        """The ready line for what the listeners bound."""
        forwards = [{'address': address, 'port': port, 'target': forward.vm, 'targetPort': forward.vm_port}
                    for forward, (address, port) in zip(self.forwards, bound)]
        socks = {'address': bound[-1][0], 'port': bound[-1][1]} if len(bound) > len(self.forwards) else None
        return {'forwards': forwards, 'socks': socks}

    async def listen(self, service) -> dict:
        """Start the service's listeners (all or none); its ready line. A listener that cannot listen is refused
        with its option, and the service's client closed."""
        try:
            bound = await service.start_listeners()
        except OSError as err:
            await service.client.aclose()
            raise listen_refusal(service, err) from None
        return self.ready(bound)

    def service(self, cli_ctx, request: ForwardRequest):
        """The relay service over the listeners, with a data-plane client of its own."""
        from azext_bastion_native.connect import arm_token, data_plane
        from azext_bastion_native.relay.tunnel import RelayService
        client = data_plane.data_plane_client(self.endpoint, arm_token.arm_token_getter(cli_ctx, self.subscription))
        return RelayService(client, self.listeners, max_connections=request.max_connections,
                            timeout=request.timeout, idle_timeout=request.idle_timeout)


def plan_forward(cli_ctx, request: ForwardRequest) -> Planned:
    """The specs read, the host read (native client on), every -L target resolved and checked: the one place the
    foreground command, --background and the agent decide what a forward is (blocking: ARM reads)."""
    from azext_bastion_native.management.clients import cf_network
    from azext_bastion_native.bastion_facts import subscription_of
    from azext_bastion_native.connect.preflight import ConnectRequest, plan_connection
    from azext_bastion_native.management.hosts import get_host
    forwards = [parse_local_forward(spec) for spec in request.local_forward]
    socks_at = parse_socks(request.socks) if request.socks else None
    if not forwards and socks_at is None:
        raise Refused('Give at least one -L [BIND:]PORT:VM:VMPORT or -D [BIND:]PORT.',
                      f'For example {_EXAMPLE_L}, or -D 1080 for a SOCKS5 proxy to every VM by name.', Kind.MISSING)
    host = get_host(cf_network(cli_ctx, subscription_id=request.subscription), request.resource_group, request.name)
    # The host's own checks (SKU, native client, DNS name): its own ID stands in for a target here.
    endpoint, _ = plan_connection(host, ConnectRequest(request.resource_group, request.name, 22, host.id))
    subscription = subscription_of(host.id)
    resolver = TargetResolver(VmDirectory(cli_ctx, host, subscription), host, request.resource_group, request.name,
                              request.vm_resource_group or request.resource_group)
    return Planned(forwards, _listeners(cli_ctx, resolver, forwards, socks_at), endpoint, subscription)


def forward_command(cmd, resource_group_name, name, local_forward=None, socks=None, vm_resource_group=None,
                    timeout=None, idle_timeout=None, max_connections=None, background=False):
    from azext_bastion_native.connect import engine_logs
    from azext_bastion_native.connect.ssh_config import given_subscription
    from azext_bastion_native.guards import refuse_in_cloud_shell
    refuse_in_cloud_shell(COMMAND_NAME)
    request = ForwardRequest(resource_group_name, name, tuple(local_forward or ()), socks, vm_resource_group,
                             timeout, idle_timeout, max_connections, given_subscription(cmd.cli_ctx))
    engine_logs.route_engine_logs()
    planned = plan_forward(cmd.cli_ctx, request)
    if background:
        _hand_to_agent(cmd.cli_ctx, request, planned)
        return
    _serve(cmd.cli_ctx, planned, planned.service(cmd.cli_ctx, request))


def _listeners(cli_ctx, resolver, forwards, socks_at):
    """Every -L resolved and checked (one refused refuses them all, before anything listens), then SOCKS5."""
    from azext_bastion_native.relay.socks_listener import SocksListener
    from azext_bastion_native.relay.tunnel import Listener
    listeners = []
    for forward in forwards:
        try:
            resolved = resolver.resolve(forward.vm, forward.vm_port)
            if resolved.vm is not None:
                check_running(cli_ctx, resolved.vm)
        except Refused as refused:
            raise Refused(f'-L {forward.spec}: {refused.message}', refused.recommendation, refused.kind) from None
        listeners.append(Listener(resolved.target, forward.bind_address, forward.port,
                                  name=f'{forward.vm}:{forward.vm_port}'))
    if socks_at is not None:
        listeners.append(SocksListener(socks_resolver(resolver), socks_at[0], socks_at[1]))
    return listeners


def listen_refusal(service, err: OSError) -> Refused:
    """Why a listener of ``service`` could not listen, naming its option (-L or -D)."""
    from azext_bastion_native.connect.tunnel import cannot_listen
    failed = service.failed_listener
    option = '-D' if failed is not None and failed.target is None else '-L'
    refused = cannot_listen(err, failed.bind_address if failed else '?', failed.port if failed else 0)
    return Refused(f'{option}: {refused.message}', refused.recommendation, refused.kind)


def _say_ready(cli_ctx, planned: Planned, ready: dict, where: str) -> None:
    from azext_bastion_native.connect.tunnel import is_loopback, write_ready_line
    for listener, item in zip(planned.listeners, ready['forwards'] + ([ready['socks']] if ready['socks'] else [])):
        if not is_loopback(listener.bind_address):
            logger.warning('%s listens on %s: anyone who can reach that address and port gets into the VMs, '
                           'with no sign-in of their own. Use the default 127.0.0.1 unless you mean it.',
                           'SOCKS5' if listener.target is None else f'-L to {listener.name}', item['address'])
    said = [f"{item['address']}:{item['port']} -> {item['target']}:{item['targetPort']}" for item in ready['forwards']]
    if ready['socks']:
        said.append(f"SOCKS5 on {ready['socks']['address']}:{ready['socks']['port']}")
    sys.stderr.write(f"Forwarding is ready{where}: {'; '.join(said)}\n")
    sys.stderr.flush()
    write_ready_line(cli_ctx, ready)


def _serve(cli_ctx, planned: Planned, service):
    from azext_bastion_native.relay.tunnel import run_service
    try:
        reason = run_service(service, on_ready=lambda bound: _say_ready(cli_ctx, planned, planned.ready(bound), ''))
    except OSError as err:
        raise listen_refusal(service, err) from None
    logger.info('Forwarding closed (%s); every session it opened has been deleted.', reason.value)
    if reason.exit_code:
        sys.exit(reason.exit_code)      # 130 after Ctrl+C, 143 after SIGTERM, 129 after SIGHUP (shell conventions)


def _hand_to_agent(cli_ctx, request: ForwardRequest, planned: Planned):
    """--background: the connection agent (started if need be) listens and relays; its answer is the ready line."""
    import socket
    from azext_bastion_native.agent.proxy_helper import (
        PROTOCOL_VERSION, AgentUnavailable, agent_paths, ask, connect_or_start)
    from azext_bastion_native.connect.proxy_command import az_argv
    try:
        paths = agent_paths()
        sock = connect_or_start(paths, az_argv())
    except (AgentUnavailable, OSError) as err:
        raise Refused(f'The connection agent did not start: {err}', 'Run the forward without --background, or see '
                      'az network bastion agent status.', Kind.LOCAL) from None
    try:
        answer, _ = ask(sock, {'v': PROTOCOL_VERSION, 'op': 'forward', **request.as_wire()}, timeout=120)
    except (OSError, ValueError, socket.timeout) as err:
        raise Refused(f'The connection agent did not answer: {err}', 'Try again; az network bastion agent status '
                      'shows whether it runs.', Kind.LOCAL) from None
    finally:
        sock.close()
    if not answer or not answer.get('ok'):
        raise Refused((answer or {}).get('error') or 'The connection agent refused the forward.',
                      'Run it without --background to see the whole error.', Kind.VALIDATION)
    ready = {'forwards': answer['forwards'], 'socks': answer['socks'], 'id': answer['id']}
    _say_ready(cli_ctx, planned, ready, f" in the connection agent (forward {answer['id']}, pid {answer['pid']}; "
                                        f"az network bastion agent stop --forward {answer['id']} ends it)")
