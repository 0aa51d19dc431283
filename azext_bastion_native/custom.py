# --------------------------------------------------------------------------------------------
# One function per command: turn arguments into calls to the layers below. Keep it thin.
# --------------------------------------------------------------------------------------------
from azext_bastion_native._client_factory import cf_network


# -- configure (issue 4) -----------------------------------------------------------------------
def bastion_create(cmd, resource_group_name, name, vnet_name, public_ip_address, location=None, sku='Standard',
                   enable_tunneling=None, enable_ip_connect=False, enable_file_copy=False, scale_units=None,
                   tags=None, no_wait=False):
    from azext_bastion_native.management import hosts
    from azext_bastion_native.management.operations import wait_for
    client = cf_network(cmd.cli_ctx)
    if enable_tunneling is None:
        enable_tunneling = sku in hosts.NATIVE_CLIENT_SKUS      # native client on by default where it exists
    hosts.check_sku_options(sku, enable_tunneling, enable_ip_connect, enable_file_copy, scale_units)
    vnet, subnet = hosts.check_bastion_subnet(client, resource_group_name, vnet_name)
    pip = hosts.check_public_ip(client, resource_group_name, public_ip_address)
    host = hosts.build_host(location or vnet.location, sku, subnet.id, pip.id, enable_tunneling, enable_ip_connect,
                            enable_file_copy, scale_units, tags)
    poller = hosts.put_host(client, resource_group_name, name, host, no_wait=no_wait)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, hosts.host_label(resource_group_name, name))


def bastion_show(cmd, resource_group_name, name):
    from azext_bastion_native.management.hosts import get_host
    return get_host(cf_network(cmd.cli_ctx), resource_group_name, name)


def bastion_list(cmd, resource_group_name=None):
    from azext_bastion_native.management.errors import arm_errors
    client = cf_network(cmd.cli_ctx)
    if resource_group_name:
        with arm_errors(f"Resource group '{resource_group_name}'"):
            return list(client.bastion_hosts.list_by_resource_group(resource_group_name))
    with arm_errors('The subscription'):
        return list(client.bastion_hosts.list())


def bastion_delete(cmd, resource_group_name, name, no_wait=False):
    from azure.cli.core.util import sdk_no_wait
    from azext_bastion_native.management.errors import arm_errors
    from azext_bastion_native.management.hosts import host_label
    from azext_bastion_native.management.operations import wait_for
    client = cf_network(cmd.cli_ctx)
    with arm_errors(host_label(resource_group_name, name)):
        poller = sdk_no_wait(no_wait, client.bastion_hosts.begin_delete, resource_group_name, name)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, host_label(resource_group_name, name))


def native_client_show(cmd, resource_group_name, name):
    from azext_bastion_native.management.hosts import get_host
    from azext_bastion_native.native_client import describe
    return describe(get_host(cf_network(cmd.cli_ctx), resource_group_name, name))


def native_client_enable(cmd, resource_group_name, name, upgrade_sku=False, enable_ip_connect=False, yes=False,
                         no_wait=False):
    from azext_bastion_native.native_client import enable
    return enable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, upgrade_sku=upgrade_sku,
                  enable_ip_connect=enable_ip_connect, yes=yes, no_wait=no_wait)


def native_client_disable(cmd, resource_group_name, name, yes=False, no_wait=False):
    from azext_bastion_native.native_client import disable
    return disable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, yes=yes, no_wait=no_wait)


def session_list(cmd, resource_group_name, name):
    from azext_bastion_native.management.sessions import list_sessions
    return list_sessions(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name)


def session_disconnect(cmd, resource_group_name, name, session_ids):
    from azext_bastion_native.management.sessions import disconnect_sessions
    return disconnect_sessions(cf_network(cmd.cli_ctx), resource_group_name, name, session_ids)


# -- secure: nsg (issue 5) ---------------------------------------------------------------------
def nsg_show(ports=None):
    from azext_bastion_native.nsg_rules import bastion_rule_set, rule_as_row
    return [rule_as_row(rule) for rule in bastion_rule_set(ports)]


def nsg_check(cmd, resource_group_name, name, ports=None):
    from azext_bastion_native.management.nsg import check_host, exit_when_not_compliant
    report = check_host(cmd.cli_ctx, resource_group_name, name, ports)
    exit_when_not_compliant(cmd.cli_ctx, report)
    return report.as_dict()


def nsg_apply(cmd, resource_group_name, name, ports=None, nsg_name=None, yes=False, no_wait=False):
    from azext_bastion_native.management.nsg import apply
    return apply(cmd.cli_ctx, resource_group_name, name, ports, nsg_name=nsg_name, yes=yes, no_wait=no_wait)


# -- connect: tunnel and proxy (issue 6) -------------------------------------------------------
def bastion_tunnel(cmd, resource_group_name, name, resource_port, target_resource_id=None, target_ip_address=None,
                   port=0, bind_address='127.0.0.1', timeout=None, idle_timeout=None, max_connections=None):
    import json
    import sys
    from knack.log import get_logger
    from azure.cli.core import azclierror
    from azext_bastion_native.relay.tunnel import TunnelServer, run_tunnel
    logger = get_logger(__name__)
    client, target = _open_data_plane(cmd, 'network bastion tunnel', resource_group_name, name, resource_port,
                                      target_resource_id, target_ip_address)
    if not _is_loopback(bind_address):
        logger.warning('The tunnel listens on %s: anyone who can reach that address and port gets into the VM, '
                       'with no sign-in of their own. Use the default 127.0.0.1 unless you mean it.', bind_address)
    server = TunnelServer(client, target, bind_address=bind_address, port=port, max_connections=max_connections,
                          timeout=timeout, idle_timeout=idle_timeout)
    json_output = cmd.cli_ctx.invocation.data.get('output') == 'json'

    def on_ready(address, bound_port):
        sys.stderr.write(f'Tunnel is ready, connect on port {bound_port}\n')
        sys.stderr.flush()
        if json_output:     # a line scripts can wait for; the command returns nothing else
            sys.stdout.write(json.dumps({'address': address, 'port': bound_port}) + '\n')
            sys.stdout.flush()

    try:
        reason = run_tunnel(server, on_ready=on_ready)
    except OSError as err:
        raise azclierror.ValidationError(f'Cannot listen on {bind_address} port {port}: {err.strerror or err}.',
                                         recommendation='Choose another --port, or --port 0 for a free one.') from None
    logger.info('Tunnel closed (%s); every session it opened has been deleted.', reason.value)
    if reason.exit_code:
        sys.exit(reason.exit_code)      # 130 after Ctrl+C, 143 after SIGTERM (shell conventions)


def bastion_proxy(cmd, resource_group_name, name, resource_port, target_resource_id=None, target_ip_address=None):
    from azure.cli.core import azclierror
    from azext_bastion_native.dataplane import DataPlaneError
    from azext_bastion_native.relay.stdio import StdioNotSupportedError, run_stdio
    client, target = _open_data_plane(cmd, 'network bastion proxy', resource_group_name, name, resource_port,
                                      target_resource_id, target_ip_address)
    try:
        run_stdio(client, target)
    except StdioNotSupportedError as err:
        raise azclierror.ArgumentUsageError(str(err), recommendation=(
            'Use it from ssh: ssh -o ProxyCommand="az network bastion proxy -g RG -n NAME --target-resource-id ID '
            '--resource-port 22" user@vm')) from None
    except DataPlaneError as err:
        raise _data_plane_cli_error(err) from None


def _open_data_plane(cmd, command_name, resource_group_name, name, resource_port, target_resource_id,
                     target_ip_address):
    """Guards, one ARM GET of the host, pre-flight checks -> (DataPlaneClient, Target)."""
    from azure.cli.core import azclierror
    from azure.cli.core._profile import Profile
    from azext_bastion_native.dataplane.client import DataPlaneClient
    from azext_bastion_native.dataplane.preflight import ConnectRequest, PreflightError, check_arguments, \
        plan_connection
    from azext_bastion_native.guards import refuse_in_cloud_shell
    from azext_bastion_native.management.hosts import get_host
    refuse_in_cloud_shell(command_name)
    _route_engine_logs()
    request = ConnectRequest(resource_group_name, name, resource_port, target_resource_id, target_ip_address)
    errors = {'missing': azclierror.RequiredArgumentMissingError,
              'mutually-exclusive': azclierror.MutuallyExclusiveArgumentError,
              'invalid-argument': azclierror.InvalidArgumentValueError}
    try:
        check_arguments(request)                    # before any network call
        host = get_host(cf_network(cmd.cli_ctx), resource_group_name, name)
        endpoint, target = plan_connection(host, request)
    except PreflightError as err:
        raise errors.get(err.kind, azclierror.ValidationError)(err.message, recommendation=err.recommendation) \
            from None
    profile = Profile(cli_ctx=cmd.cli_ctx)
    subscription = (host.id or '').split('/')[2] if (host.id or '').startswith('/subscriptions/') else None

    def get_arm_token():
        # Called on a worker thread for every session, so a long tunnel never presents an expired token.
        return profile.get_raw_token(subscription=subscription)[0][1]
    return DataPlaneClient(endpoint, get_arm_token), target


def _route_engine_logs():
    """dataplane/ and relay/ log with the standard logging module (they know nothing of az); hang their logger
    under az's 'cli' logger so their lines follow --verbose/--debug/--only-show-errors like the rest of az."""
    import logging
    logging.getLogger('azext_bastion_native').parent = logging.getLogger('cli')


def _data_plane_cli_error(err):
    from azure.cli.core import azclierror
    from azext_bastion_native.dataplane import SessionRefusedError
    if isinstance(err, SessionRefusedError) and err.status in (401, 403):
        return azclierror.UnauthorizedError(err.message, recommendation=(
            'Check that your account may connect through this Bastion host (Reader on the host, the VM and its '
            'NIC), and sign in again with az login if your session has expired.'))
    if isinstance(err, SessionRefusedError) and err.status == 404:
        return azclierror.ResourceNotFoundError(err.message, recommendation='Check the target VM or IP address.')
    return azclierror.AzureConnectionError(err.message, recommendation='Try again; if it persists, run '
                                           '`az network bastion show` to check the host is running.')


def _is_loopback(address):
    import ipaddress
    if address == 'localhost':
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# -- connect: ssh and rdp (issue 7) ------------------------------------------------------------
def bastion_ssh(cmd, resource_group_name, name, auth_type, target_resource_id=None, target_ip_address=None,
                username=None, ssh_key=None, resource_port=None, ssh_args=None):
    from azext_bastion_native.connect import ssh_command
    return ssh_command(cmd, resource_group_name, name, auth_type, target_resource_id=target_resource_id,
                       target_ip_address=target_ip_address, username=username, ssh_key=ssh_key,
                       resource_port=resource_port, ssh_args=ssh_args)


def bastion_rdp(cmd, resource_group_name, name, target_resource_id=None, target_ip_address=None, auth_type=None,
                resource_port=None, configure=False, disable_gateway=False, enable_mfa=False):
    from azext_bastion_native.connect import rdp_command
    return rdp_command(cmd, resource_group_name, name, target_resource_id=target_resource_id,
                       target_ip_address=target_ip_address, auth_type=auth_type, resource_port=resource_port,
                       configure=configure, disable_gateway=disable_gateway, enable_mfa=enable_mfa)
