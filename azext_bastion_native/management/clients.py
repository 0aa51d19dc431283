"""The ARM SDK clients, created when a command runs (never at command-table load)."""


def cf_network(cli_ctx, subscription_id=None):
    """azure-mgmt-network, sending the one api-version this extension is written for (management/api_version.py)."""
    from azure.cli.core.commands.client_factory import get_mgmt_service_client
    from azure.mgmt.network import NetworkManagementClient
    from azext_bastion_native.management.api_version import api_version_policy
    return get_mgmt_service_client(cli_ctx, NetworkManagementClient, subscription_id=subscription_id,
                                   per_call_policies=[api_version_policy()])


def cf_compute(cli_ctx, subscription_id=None):
    from azure.cli.core.commands.client_factory import get_mgmt_service_client
    from azure.cli.core.profiles import ResourceType
    return get_mgmt_service_client(cli_ctx, ResourceType.MGMT_COMPUTE, subscription_id=subscription_id)
