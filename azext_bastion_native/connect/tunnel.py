"""`az network bastion tunnel` and `az network bastion proxy`: the relay engine behind a local port or stdin/stdout.

Each checks everything it can before it listens or relays: one ARM GET of the host and, for a --target-resource-id,
one of the VM (it exists, is a VM or scale set instance, runs)."""

import errno
import ipaddress
import json
import socket
import sys

from knack.log import get_logger

from azext_bastion_native.connect import argument_checks, data_plane, engine_logs, resolve
from azext_bastion_native.errors import Kind, Refused

logger = get_logger(__name__)


def _open_data_plane(cmd, command_name, resource_group_name, name, resource_port, target_resource_id,
                     target_ip_address):
    """Guards, the argument checks, the host and the target VM read from ARM -> (DataPlaneClient, Target).

    Reading the VM here, not only when a client connects, turns a wrong --target-resource-id (no such VM, a storage
    account, a stopped VM) into a refusal instead of a "ready" tunnel whose every connection fails."""
    from azext_bastion_native.guards import refuse_in_cloud_shell
    refuse_in_cloud_shell(command_name)
    engine_logs.route_engine_logs()
    request = argument_checks.connect_request(resource_group_name, name, target_resource_id, target_ip_address,
                                              resource_port)
    destination = resolve.resolve_destination(cmd.cli_ctx, request)
    return data_plane.data_plane_client(destination.endpoint, destination.get_arm_token), destination.target


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
    from azext_bastion_native.bastion_facts import DEVELOPER_SKUS, sku_limits
    limits = sku_limits(DEVELOPER_SKUS[0]) if client.endpoint.developer else None
    one_at_a_time = limits is not None and not limits.concurrent_sessions
    server = TunnelServer(client, target, bind_address=bind_address, port=port,
                          max_connections=1 if one_at_a_time else max_connections, timeout=timeout,
                          idle_timeout=idle_timeout)
    if one_at_a_time:
        server.limit_reason = ('a Developer SKU host has no concurrent sessions: one connection at a time; close '
                               'the open one first')

    def on_ready(address, bound_port):
        if not is_loopback(bind_address):
            logger.warning('The tunnel listens on %s: anyone who can reach that address and port gets into the VM, '
                           'with no sign-in of their own. Use the default 127.0.0.1 unless you mean it.', address)
        sys.stderr.write(f'Tunnel is ready, connect on port {bound_port}\n')
        sys.stderr.flush()
        write_ready_line(cmd.cli_ctx, {'address': address, 'port': bound_port})

    try:
        reason = run_tunnel(server, on_ready=on_ready)
    except OSError as err:
        raise cannot_listen(err, bind_address, port) from None
    logger.info('Tunnel closed (%s); every session it opened has been deleted.', reason.value)
    if reason.exit_code:
        sys.exit(reason.exit_code)      # 130 after Ctrl+C, 143 after SIGTERM, 129 after SIGHUP (shell conventions)


def write_ready_line(cli_ctx, ready):
    """The ready line on stdout, a line scripts can wait for (the command returns nothing else): ``ready`` in the
    user's output format (-o, or their configured default) after their --query, as azure-cli would print a result;
    JSON on one line; nothing with -o none."""
    from knack.events import EVENT_INVOKER_FILTER_RESULT
    from knack.util import CommandResultItem
    invocation = cli_ctx.invocation
    output = invocation.data.get('output') or 'json'
    # The event azure-cli raises on a command's result: knack's --query handler applies the query on it (once).
    event_data = {'result': ready}
    cli_ctx.raise_event(EVENT_INVOKER_FILTER_RESULT, event_data=event_data)
    result = event_data['result']
    if output == 'none':
        return
    if output in ('json', 'jsonc'):
        text = json.dumps(result) + '\n'
    else:
        item = CommandResultItem(result, is_query_active=invocation.data.get('query_active', False))
        text = cli_ctx.output.get_formatter(output)(item)
    sys.stdout.write(text)
    sys.stdout.flush()


def cannot_listen(err, bind_address, port):
    """The Refused for an OSError of listening, naming what is wrong: the address or the port."""
    if isinstance(err, socket.gaierror):
        return Refused(f"--bind-address '{bind_address}' is not an IP address or a host name this machine resolves.",
                       'Use 127.0.0.1 (the default) or one of this machine\'s addresses.', Kind.INVALID_ARGUMENT)
    if err.errno == errno.EADDRNOTAVAIL:
        return Refused(f'Cannot listen on {bind_address}: --bind-address is not an address of this machine.',
                       'Use 127.0.0.1 (the default) or one of this machine\'s addresses (ip address, ipconfig).',
                       Kind.INVALID_ARGUMENT)
    if err.errno == errno.EADDRINUSE:
        return Refused(f'Cannot listen on {bind_address} port {port}: another program uses it.',
                       'Choose another --port, or --port 0 for a free one.')
    return Refused(f'Cannot listen on {bind_address} port {port}: {err.strerror or err}.',
                   'Choose another --port, or --port 0 for a free one.')


def proxy_command(cmd, resource_group_name, name, resource_port, target_resource_id=None, target_ip_address=None,
                  timeout=None, idle_timeout=None):
    from azext_bastion_native.relay.stdio import StdioNotSupportedError, StdioStopped, run_stdio
    client, target = _open_data_plane(cmd, 'network bastion proxy', resource_group_name, name, resource_port,
                                      target_resource_id, target_ip_address)
    try:
        relayed = run_stdio(client, target, timeout=timeout, idle_timeout=idle_timeout)
    except StdioNotSupportedError as err:
        raise Refused(str(err), 'Use it from ssh: ssh -o ProxyCommand="az network bastion proxy -g RG -n NAME '
                      '--target-resource-id ID --resource-port 22" user@vm', Kind.USAGE) from None
    except StdioStopped as stop:
        sys.exit(stop.exit_code)        # the session is deleted; 129 after SIGHUP, as the tunnel
    if not relayed:
        # The engine has already said why on stderr (refused session, unreachable port); ssh only sees EOF.
        sys.exit(1)
