"""Active Bastion sessions: list them, end them (the session commands)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from azext_bastion_native.bastion_facts import host_label
from azext_bastion_native.management.errors import arm_errors
from azext_bastion_native.management.operations import wait_for
from azext_bastion_native.management.clients import cf_network

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.cli.core.commands import AzCliCommand
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import BastionActiveSession, BastionSessionState


def list_sessions(cli_ctx: AzCli, client: NetworkManagementClient, resource_group: str,
                  name: str) -> list[BastionActiveSession]:
    label = host_label(resource_group, name)
    with arm_errors(label):
        poller = client.begin_get_active_sessions(resource_group, name)
    pages = wait_for(cli_ctx, poller, label, start_msg=f'Reading active sessions of {label}')
    with arm_errors(label):
        return list(pages)


def disconnect_sessions(client: NetworkManagementClient, resource_group: str, name: str,
                        session_ids: list[str]) -> list[BastionSessionState]:
    from azure.mgmt.network.models import SessionIds
    with arm_errors(host_label(resource_group, name)):
        return list(client.disconnect_active_sessions(resource_group, name, SessionIds(session_ids=session_ids)))


def session_list(cmd: AzCliCommand, resource_group_name: str, name: str) -> list[BastionActiveSession]:
    return list_sessions(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name)


def session_disconnect(cmd: AzCliCommand, resource_group_name: str, name: str,
                       session_ids: list[str]) -> list[BastionSessionState]:
    return disconnect_sessions(cf_network(cmd.cli_ctx), resource_group_name, name, session_ids)
