"""Active Bastion sessions: list them, end them (the session commands)."""

from azext_bastion_native.management.errors import arm_errors
from azext_bastion_native.management.hosts import host_label
from azext_bastion_native.management.operations import wait_for
from azext_bastion_native.management.clients import cf_network


def list_sessions(cli_ctx, client, resource_group, name):
    label = host_label(resource_group, name)
    with arm_errors(label):
        poller = client.begin_get_active_sessions(resource_group, name)
    pages = wait_for(cli_ctx, poller, label, start_msg=f'Reading active sessions of {label}')
    with arm_errors(label):
        return list(pages)


def disconnect_sessions(client, resource_group, name, session_ids):
    from azure.mgmt.network.models import SessionIds
    with arm_errors(host_label(resource_group, name)):
        return list(client.disconnect_active_sessions(resource_group, name, SessionIds(session_ids=session_ids)))


def session_list(cmd, resource_group_name, name):
    return list_sessions(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name)


def session_disconnect(cmd, resource_group_name, name, session_ids):
    return disconnect_sessions(cf_network(cmd.cli_ctx), resource_group_name, name, session_ids)
