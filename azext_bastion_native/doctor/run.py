"""Pre-flight for native client: why `az network bastion ssh/rdp/tunnel` will or will not work.

`az network bastion doctor`: gather the facts (environment, sign-in, host, VM, NSG, local programs, the data plane)
and let checks.py decide each row. Every check runs; one that needs a fact an earlier check could not get is
skipped and says why. A failed ARM read is a row, never an exception."""

import os
import shutil

from knack.log import get_logger

from azext_bastion_native.doctor import checks
from azext_bastion_native.bastion_facts import is_port
from azext_bastion_native.capabilities import client_os
from azext_bastion_native.errors import Kind, Refused

logger = get_logger(__name__)
# A session is only minted when these rows did not fail: it could not succeed otherwise.
SESSION_PREREQUISITES = ('Cloud Shell', 'Signed in', 'Bastion host', 'Native client', 'IP connect', 'Target VM',
                         'Network')


def _failure(err):
    """A failed read (a Refused: ARM's answer, a wrong resource ID) as the row's failure."""
    return checks.Failure(err.message or str(err), err.recommendation or '')


def _check_arguments(target_resource_id, target_ip_address, resource_port, method):
    from azext_bastion_native.connect.preflight import check_ip_address
    if target_resource_id and target_ip_address:
        raise Refused('Give at most one of --target-resource-id and --target-ip-address.',
                      kind=Kind.MUTUALLY_EXCLUSIVE)
    if resource_port is not None and not is_port(resource_port):
        raise Refused(f'--resource-port {resource_port} is not a port (1-65535).', kind=Kind.INVALID_ARGUMENT)
    if method and method not in checks.METHODS:
        raise Refused(f'--method must be one of {", ".join(checks.METHODS)}.', kind=Kind.INVALID_ARGUMENT)
    if target_ip_address:
        check_ip_address(target_ip_address)


def _sign_in_failure(cli_ctx):
    from azure.cli.core._profile import Profile
    try:
        Profile(cli_ctx=cli_ctx).get_raw_token()      # the token itself is dropped at once
    except Exception as err:  # pylint: disable=broad-except
        # Profile raises CLIError, MSAL and azure-identity errors alike; none of their messages carry a token.
        return checks.Failure(getattr(err, 'error_msg', None) or str(err) or type(err).__name__)
    return None


def _read_host(cli_ctx, resource_group, name):
    from azext_bastion_native.management.clients import cf_network
    from azext_bastion_native.management.hosts import get_host
    try:
        return get_host(cf_network(cli_ctx), resource_group, name), None
    except Refused as err:
        return None, _failure(err)


def _read_vm(cli_ctx, target_resource_id):
    """(VmFacts, the VM's model, None) or (None, None, Failure)."""
    from azext_bastion_native.management import vms
    try:
        ref = vms.parse_vm_id(target_resource_id)
        vm = vms.read_vm(cli_ctx, ref)
    except Refused as err:
        return None, None, _failure(err)
    label = ref.name if ref.instance is None else f'{ref.name}/{ref.instance}'
    return checks.VmFacts(label, ref.resource_group, vms.power_state(vm), vms.os_type(vm), ref.start_command), vm, \
        None


def _network_row(cli_ctx, host_model, vm_model, asked):
    """The Network row: the pre-flight's own reach check (connect.preflight.reach_refusal) on the facts read."""
    if not asked.target_resource_id:
        return checks.check_network(None, None, 'Connecting by IP address: the VM is not looked up.'
                                    if asked.target_ip_address else 'Not asked: no --target-resource-id.')
    if host_model is None or vm_model is None:
        return checks.check_network(None, None, 'The host or the VM was not read.')
    from azext_bastion_native.connect.preflight import ConnectRequest, reach_refusal
    from azext_bastion_native.management.network_reach import read_reach
    reach = read_reach(cli_ctx, host_model, vm_model)
    request = ConnectRequest(asked.resource_group, asked.name, asked.port, asked.target_resource_id)
    return checks.check_network(reach, reach_refusal(request, reach))


def _read_nsg(cli_ctx, resource_group, name):
    from azext_bastion_native.management.nsg import find_bastion_subnet, read_nsg
    try:
        subnet = find_bastion_subnet(cli_ctx, resource_group, name)
        return (read_nsg(cli_ctx, subnet.nsg_id)[3] if subnet.nsg_id else None), None
    except Refused as err:
        return None, _failure(err)


def _host_rows(cli_ctx, sign_in, resource_group, name, target_ip_address):
    """(the host's model or None, its two rows)."""
    if sign_in is not None:
        return None, [checks.skipped(check, 'Not signed in.') for check in ('Bastion host', 'Native client')]
    host_model, failure = _read_host(cli_ctx, resource_group, name)
    host = host_model.as_dict() if host_model is not None else None
    return host_model, [checks.check_host(host, failure, resource_group, name, target_ip_address),
                        checks.check_native_client(host, resource_group, name, target_ip_address)]


def _nsg_row(cli_ctx, host, asked):
    """The NSG row, and whether the NSG denies the target port outbound (None when that is not known)."""
    if host is None:
        return checks.skipped('NSG', 'The host was not read.'), None
    nsg, failure = _read_nsg(cli_ctx, asked.resource_group, asked.name)
    denies = None if failure is not None else nsg is not None and checks.outbound_blocker(nsg, asked.port) is not None
    return checks.check_nsg(nsg, failure, asked.port, asked.resource_group, asked.name), denies


def _probe_data_plane(cli_ctx, host_model, rows, asked):
    """(ProbeResult or None, why no session was tried)."""
    from azext_bastion_native.connect.preflight import ConnectRequest
    from azext_bastion_native.dataplane.settings import ConnectionSettings
    from azext_bastion_native.doctor.probe import session_round_trip, tls_handshake
    dns_name = getattr(host_model, 'dns_name', None) if host_model is not None else None
    if not dns_name:
        return None, 'The host has no DNS name (not read, or still deploying).'
    failed = [row.check for row in rows if row.check in SESSION_PREREQUISITES and row.status == checks.FAIL]
    request = ConnectRequest(asked.resource_group, asked.name, asked.port, asked.target_resource_id,
                             asked.target_ip_address)
    if not (request.target_resource_id or request.target_ip_address):
        why = 'Give --target-resource-id or --target-ip-address to also mint (and delete) a session.'
    elif failed:
        why = f'No session tried: {", ".join(failed)} failed.'
    else:
        from azext_bastion_native.connect.preflight import PreflightError
        try:
            return _session_probe(cli_ctx, host_model, request, session_round_trip), ''
        except PreflightError as err:
            why = f'No session tried: {err.message}'
    return tls_handshake(dns_name, ConnectionSettings.from_environ()), why


def _session_probe(cli_ctx, host_model, request, session_round_trip):
    from azext_bastion_native.bastion_facts import subscription_of
    from azext_bastion_native.connect.arm_token import arm_token_getter
    from azext_bastion_native.connect.data_plane import data_plane_client
    from azext_bastion_native.connect.engine_logs import route_engine_logs
    from azext_bastion_native.connect.preflight import plan_connection
    route_engine_logs()
    endpoint, target = plan_connection(host_model, request)     # the host already read: no second GET
    subscription = subscription_of(getattr(host_model, 'id', ''))
    return session_round_trip(data_plane_client(endpoint, arm_token_getter(cli_ctx, subscription)), target)


def run_doctor(cli_ctx, resource_group, name, target_resource_id=None, target_ip_address=None,
               resource_port=None, method=None, environ=None, which=None, system=None):
    """Every check, in order, as CheckRows. environ / which / system: injectable for tests."""
    _check_arguments(target_resource_id, target_ip_address, resource_port, method)
    environ = os.environ if environ is None else environ
    which = which or shutil.which
    rows = [checks.check_cloud_shell(environ)]
    from azext_bastion_native import side_by_side
    clash = checks.check_side_by_side(side_by_side.installed_path(side_by_side.extension_dirs()))
    rows += [clash] if clash else []
    sign_in = _sign_in_failure(cli_ctx)
    rows.append(checks.check_sign_in(sign_in))

    host_model, host_rows = _host_rows(cli_ctx, sign_in, resource_group, name, target_ip_address)
    rows += host_rows
    host = host_model.as_dict() if host_model is not None else None
    vm = vm_model = vm_failure = None
    if target_resource_id and sign_in is None:
        vm, vm_model, vm_failure = _read_vm(cli_ctx, target_resource_id)
    os_type = vm.os_type if vm else None
    method = checks.choose_method(method, resource_port, os_type)
    port = checks.choose_port(resource_port, method, os_type)
    asked = checks.Asked(resource_group, name, port, target_resource_id, target_ip_address)
    rows.append(checks.check_ip_connect(host, target_ip_address, port, resource_group, name))
    rows.append(checks.skipped('Target VM', 'Not signed in.') if target_resource_id and sign_in is not None
                else checks.check_target_vm(vm, vm_failure, target_resource_id, target_ip_address))
    rows.append(_network_row(cli_ctx, host_model, vm_model, asked))
    rows.append(checks.check_method(client_os(system), method, os_type, asked))
    nsg_row, nsg_denies_port = _nsg_row(cli_ctx, host, asked)
    rows += [nsg_row, checks.check_local_clients(method, client_os(system), which, environ)]
    rows.append(checks.check_data_plane(*_probe_data_plane(cli_ctx, host_model, rows, asked), asked, nsg_denies_port))
    return rows


def exit_when_failed(cli_ctx, rows):
    """Like `nsg check`: the rows are printed as usual (any -o / --query), then the exit status is 3 when a
    check failed; warnings do not fail."""
    from azext_bastion_native.exit_status import FINDINGS_EXIT_CODE, exit_after_output
    if not checks.exit_code(rows, FINDINGS_EXIT_CODE):
        return
    failed = [row.check for row in rows if row.status == checks.FAIL]
    exit_after_output(cli_ctx, f"{len(failed)} check(s) failed ({', '.join(failed)}); the Fix column says what "
                               'to do.')


def doctor_command(cmd, resource_group_name, name, target_resource_id=None, target_ip_address=None,
                   resource_port=None, method=None):
    """`az network bastion doctor`: every row printed (any -o / --query), then exit status 3 when a check failed."""
    rows = run_doctor(cmd.cli_ctx, resource_group_name, name, target_resource_id=target_resource_id,
                      target_ip_address=target_ip_address, resource_port=resource_port, method=method)
    exit_when_failed(cmd.cli_ctx, rows)
    return [row.as_dict() for row in rows]
