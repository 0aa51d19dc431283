"""The ARM SDK clients, created when a command runs (never at command-table load)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, cast

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.mgmt.network import NetworkManagementClient


def cf_network(cli_ctx: AzCli, subscription_id: Optional[str] = None) -> NetworkManagementClient:
    """azure-mgmt-network, sending the one api-version this extension is written for (management/api_version.py)."""
    from azure.cli.core.commands.client_factory import get_mgmt_service_client
    from azure.mgmt.network import NetworkManagementClient  # pylint: disable=redefined-outer-name
    from azext_bastion_native.management.api_version import api_version_policy
    return cast(NetworkManagementClient, get_mgmt_service_client(
        cli_ctx, NetworkManagementClient, subscription_id=subscription_id, per_call_policies=[api_version_policy()]))


def cf_compute(cli_ctx: AzCli, subscription_id: Optional[str] = None) -> Any:
    """azure-mgmt-compute at the api-version az's profile picks (ResourceType.MGMT_COMPUTE), so the client's
    class and models differ from one az release to the next: Any to the type checker."""
    from azure.cli.core.commands.client_factory import get_mgmt_service_client
    from azure.cli.core.profiles import ResourceType
    return get_mgmt_service_client(cli_ctx, ResourceType.MGMT_COMPUTE, subscription_id=subscription_id)
