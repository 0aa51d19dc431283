"""`az network bastion tunnel` and `az network bastion proxy`: the relay engine behind a local port or stdin/stdout.

Each checks everything it can with one ARM GET before it listens or relays."""

import ipaddress
import json
import sys

from knack.log import get_logger

from azure.cli.core import azclierror

from azext_bastion_native.connect import session as access

logger = get_logger(__name__)


def _open_data_plane(cmd, command_name, resource_group_name, name, resource_port, target_resource_id,
                     target_ip_address):
    """Guards, the argument checks, one ARM GET of the host -> (DataPlaneClient, Target)."""
    from azext_bastion_native.guards import refuse_in_cloud_shell
    refuse_in_cloud_shell(command_name)
    access.route_engine_logs()
    request = access.connect_request(resource_group_name, name, target_resource_id, target_ip_address,
                                     resource_port)
    _, endpoint, target, get_arm_token = access.resolve_endpoint(cmd.cli_ctx, request)
    return access.data_plane_client(endpoint, get_arm_token), target


def is_loopback(address):
    if address == 'localhost':
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def tunnel_command(cmd, resource_group_name, name, resource_port, target_resource_id=None, target_ip_address=None,
                   port=0, bind_address='127.0.0.1', timeout=None, idle_timeout=None, max_connections=None):
    from azext_bastion_native.relay.tunnel import TunnelServer, run_tunnel
    client, target = _open_data_plane(cmd, 'network bastion tunnel', resource_group_name, name, resource_port,
                                      target_resource_id, target_ip_address)
    if not is_loopback(bind_address):
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


def proxy_command(cmd, resource_group_name, name, resource_port, target_resource_id=None, target_ip_address=None):
    from azext_bastion_native.dataplane import DataPlaneError
    from azext_bastion_native.relay.stdio import StdioNotSupportedError, run_stdio
    client, target = _open_data_plane(cmd, 'network bastion proxy', resource_group_name, name, resource_port,
                                      target_resource_id, target_ip_address)
    try:
        relayed = run_stdio(client, target)
    except StdioNotSupportedError as err:
        raise azclierror.ArgumentUsageError(str(err), recommendation=(
            'Use it from ssh: ssh -o ProxyCommand="az network bastion proxy -g RG -n NAME --target-resource-id ID '
            '--resource-port 22" user@vm')) from None
    except DataPlaneError as err:
        raise access.data_plane_cli_error(err) from None
    if not relayed:
        # The engine has already said why on stderr (refused session, unreachable port); ssh only sees EOF.
        sys.exit(1)
