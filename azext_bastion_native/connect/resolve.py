"""The ARM read of a connecting command: one GET of the host (native client on, IP connect when asked) and, for a
--target-resource-id, of the VM (running, on a network the host reaches) -> the resolved Destination."""
from dataclasses import dataclass, field
from typing import Callable, Optional

from azext_bastion_native.bastion_facts import subscription_of
from azext_bastion_native.connect.arm_token import arm_token_getter


def resolve_endpoint(cli_ctx, request):
    """One ARM GET of the host (native client on, IP connect when asked): (host, Endpoint, Target, get_token)."""
    from azext_bastion_native.management.clients import cf_network
    from azext_bastion_native.connect.preflight import plan_connection
    from azext_bastion_native.management.hosts import get_host
    host = get_host(cf_network(cli_ctx), request.resource_group, request.name)
    endpoint, target = plan_connection(host, request)
    return host, endpoint, target, arm_token_getter(cli_ctx, subscription_of(host.id))


@dataclass(frozen=True)
class Destination:
    """Everything resolved about the connection: where the data plane is and what the tunnel reaches."""
    endpoint: object                     # dataplane.Endpoint
    target: object                       # dataplane.Target
    target_label: str                    # the VM resource id or IP: names the VM for host-key pinning
    get_arm_token: Callable[[], str] = field(repr=False)
    target_os: Optional[str] = None
    admin_username: Optional[str] = None


def resolve_destination(cli_ctx, request):
    """Host (native client on, IP connect when asked), VM (running, on a network the host reaches), data-plane
    endpoint and target."""
    host, endpoint, target, token = resolve_endpoint(cli_ctx, request)
    if request.target_ip_address:
        return Destination(endpoint, target, request.target_ip_address, token)
    from azext_bastion_native.connect.preflight import check_reach
    from azext_bastion_native.management import vms
    from azext_bastion_native.management.network_reach import read_reach
    vm = vms.get_running_vm(cli_ctx, request.target_resource_id)
    check_reach(request, read_reach(cli_ctx, host, vm))
    return Destination(endpoint, target, request.target_resource_id, token,
                       target_os=vms.os_type(vm), admin_username=vms.admin_username(vm))
