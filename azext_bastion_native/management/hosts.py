"""Bastion hosts over azure-mgmt-network: create (every SKU's request shape), update, read, list, delete, and the
commands that do so (bastion_create ... bastion_delete).

Every check that can be made before a write is made before it, so a refused command changes nothing."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, TypeVar

from azext_bastion_native.bastion_facts import (
    BASTION_NAME_RULE, BASTION_NAME_RULE_TEXT, DEVELOPER_SKUS, HOST_FEATURES, NATIVE_CLIENT_SKUS, SCALE_UNITS_RANGE,
    SCALING_SKUS, SKUS, canonical_sku, host_label, sku_name)
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management.errors import arm_errors
from azext_bastion_native.management.clients import cf_network

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.cli.core.commands import AzCliCommand
    from azure.core.polling import LROPoller
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import (
        BastionHost, BastionHostPropertiesFormatNetworkAcls, PublicIPAddress, Subnet, VirtualNetwork)

Resource = TypeVar('Resource')

BASTION_SUBNET = 'AzureBastionSubnet'
MIN_SUBNET_PREFIX = 26


def check_host_name(name: str) -> None:
    """Azure's naming rules for a Bastion host, checked before anything is sent (ARM answers InvalidResourceName)."""
    if not BASTION_NAME_RULE.fullmatch(name or ''):
        raise Refused(f"'{name}' is not a valid Bastion host name: {BASTION_NAME_RULE_TEXT}.",
                      recommendation='Choose a name such as bastion-prod-01.', kind=Kind.INVALID_ARGUMENT)


def get_host(client: NetworkManagementClient, resource_group: str, name: str, for_wait: bool = False) -> BastionHost:
    """GET the host. for_wait: ARM's 404 passes through as azure.core's ResourceNotFoundError, the one azure-cli's
    generic wait (azure.cli.core.commands.command_operation.WaitCommandOperation.wait) acts on: --deleted returns,
    --exists/--created keep polling. A typed error there would end the wait at once."""
    with arm_errors(host_label(resource_group, name), pass_not_found=for_wait,
                    not_found_hint=f'List the hosts you can see: az network bastion list -g {resource_group} -o table'):
        return client.bastion_hosts.get(resource_group, name)


def _read_by_name_or_id(value: str, resource_group: str, kind: str, getter: Callable[[str, str], Resource],
                        create_hint: str) -> tuple[str, str, Resource]:
    """GET a resource given by name (in `resource_group`) or by full ID (which may live elsewhere).

    Returns (resource group, name, model); `create_hint` is formatted with rg and name for the not-found case."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id
    if is_valid_resource_id(value):
        parts = parse_resource_id(value)
        resource_group, name = str(parts['resource_group']), str(parts['name'])
    elif '/' in value:
        raise Refused(f"'{value}' is neither a {kind} name nor a valid resource ID.", kind=Kind.INVALID_ARGUMENT)
    else:
        name = value
    with arm_errors(f"{kind[0].upper()}{kind[1:]} '{name}' in resource group '{resource_group}'",
                    not_found_hint=create_hint.format(rg=resource_group, name=name)):
        return resource_group, name, getter(resource_group, name)


def check_bastion_subnet(client: NetworkManagementClient, resource_group: str,
                         vnet: str) -> tuple[VirtualNetwork, Subnet]:
    """The VNet's AzureBastionSubnet, checked for existence and size; returns (vnet, subnet)."""
    vnet_rg, vnet_name, vnet_model = _read_by_name_or_id(
        vnet, resource_group, 'virtual network', client.virtual_networks.get,
        'Create it first: az network vnet create -g {rg} -n {name} --address-prefixes 10.0.0.0/16')
    subnet = next((s for s in (vnet_model.subnets or []) if s.name == BASTION_SUBNET), None)
    if subnet is None:
        raise Refused(
            f"Virtual network '{vnet_name}' has no subnet named {BASTION_SUBNET}; Bastion is deployed into it.",
            recommendation=f'az network vnet subnet create -g {vnet_rg} --vnet-name {vnet_name} -n {BASTION_SUBNET} '
            '--address-prefixes <a free /26 or larger, e.g. 10.0.1.0/26>', kind=Kind.VALIDATION)
    prefixes = list(subnet.address_prefixes or []) or [subnet.address_prefix]
    sizes = [ipaddress.ip_network(p, strict=False).prefixlen for p in prefixes if p]
    if not sizes or min(sizes) > MIN_SUBNET_PREFIX:
        raise Refused(
            f"{BASTION_SUBNET} in '{vnet_name}' is {', '.join(p for p in prefixes if p)}; Bastion needs /26 or larger.",
            recommendation=f'Recreate the subnet with a /26 or larger prefix: az network vnet subnet update -g '
            f'{vnet_rg} --vnet-name {vnet_name} -n {BASTION_SUBNET} --address-prefixes <prefix>/26',
            kind=Kind.VALIDATION)
    return vnet_model, subnet


def check_public_ip(client: NetworkManagementClient, resource_group: str, public_ip: str) -> PublicIPAddress:
    pip_rg, pip_name, pip = _read_by_name_or_id(
        public_ip, resource_group, 'public IP address', client.public_ip_addresses.get,
        'az network public-ip create -g {rg} -n {name} --sku Standard --allocation-method Static')
    sku = getattr(getattr(pip.sku, 'name', None), 'value', getattr(pip.sku, 'name', None)) if pip.sku else 'Basic'
    allocation = pip.public_ip_allocation_method
    allocation = getattr(allocation, 'value', allocation)
    if str(sku) != 'Standard' or str(allocation) != 'Static':
        raise Refused(
            f"Public IP '{pip_name}' is {sku} SKU with {allocation} allocation; Bastion needs Standard SKU and Static.",
            recommendation=f'az network public-ip create -g {pip_rg} -n <new-name> --sku Standard '
            '--allocation-method Static', kind=Kind.VALIDATION)
    return pip


def sdk_attribute(rest_name: str) -> str:
    """'enableIpConnect' -> 'enable_ip_connect', the azure-mgmt-network model attribute of a REST property."""
    return re.sub('([A-Z])', r'_\1', rest_name).lower()


def features_from_flags(**values: Optional[bool]) -> dict[str, Optional[bool]]:
    """REST property name -> the value of its flag (None: not given); `values` by parameter name (file_copy=...)."""
    return {feature.rest_name: values.get(feature.flag[2:].replace('-', '_')) for feature in HOST_FEATURES}


def check_sku_rules(sku: str, features: Mapping[str, Optional[bool]], scale_units: Optional[int] = None,
                    zones: Optional[list[str]] = None) -> None:
    """Refuse, before anything is written, what Azure refuses for a host of this SKU.

    features: REST property name -> the value asked for (None or False: not asked for)."""
    wanted = [feature for feature in HOST_FEATURES if features.get(feature.rest_name) and sku not in feature.skus]
    if wanted:
        fits = next((candidate for candidate in SKUS[SKUS.index(sku):]
                     if all(candidate in feature.skus for feature in wanted)), 'Premium')
        raise Refused(
            f"Not offered by the {sku} SKU: "
            + ', '.join(f"{feature.flag} ({' or '.join(feature.skus)})" for feature in wanted) + '.',
            recommendation=f'Use --sku {fits}, or drop those options.', kind=Kind.USAGE)
    if scale_units is not None:
        low, high = SCALE_UNITS_RANGE
        if not low <= scale_units <= high:
            raise Refused(f'--scale-units must be {low}-{high}, not {scale_units}.', kind=Kind.INVALID_ARGUMENT)
        if scale_units != low and sku not in SCALING_SKUS:
            raise Refused(
                f'--scale-units needs Standard or Premium; {sku} hosts have a fixed {low} units.',
                recommendation='Use --sku Standard, or drop --scale-units.', kind=Kind.USAGE)
    if zones and sku in DEVELOPER_SKUS:
        raise Refused(
            '--zones: a Developer host runs in a shared pool and takes no zones.',
            recommendation='Drop --zones, or use --sku Standard.', kind=Kind.USAGE)


def check_sku_change(label: str, old_sku: str, new_sku: str) -> None:
    """ARM never downgrades a host, and a Developer host has no subnet or public IP to grow into another SKU."""
    if old_sku == new_sku:
        return
    if old_sku in DEVELOPER_SKUS:
        raise Refused(
            f'{label} is Developer SKU: it cannot be changed in place (other SKUs need AzureBastionSubnet and a '
            'public IP).', recommendation='Create a new host with az network bastion create --sku Standard ...',
            kind=Kind.VALIDATION)
    if SKUS.index(new_sku) < SKUS.index(old_sku):
        raise Refused(
            f'{label} is {old_sku} SKU; Azure does not downgrade a host to {new_sku}.',
            recommendation='Delete and recreate the host to use a smaller SKU.', kind=Kind.VALIDATION)


def _features_for_create(sku: str, features: Mapping[str, Optional[bool]]) -> dict[str, bool]:
    """The booleans sent on create (Microsoft's `bastion` extension sends them, false by default); native client
    on by default where the SKU has it."""
    chosen = {feature.rest_name: bool(features.get(feature.rest_name)) for feature in HOST_FEATURES}
    if features.get('enableTunneling') is None:
        chosen['enableTunneling'] = sku in NATIVE_CLIENT_SKUS
    return chosen


def build_host(client: NetworkManagementClient, resource_group: str, vnet: str, public_ip: Optional[str],
               location: Optional[str], sku: str, features: Mapping[str, Optional[bool]], scale_units: Optional[int],
               zones: Optional[list[str]], tags: Optional[dict[str, str]]) -> BastionHost:
    """The BastionHost model to PUT, after every check: the request shape of each SKU as Microsoft's REST
    examples show it (BastionHostPut.json, BastionHostDeveloperPut.json, BastionHostPutWithPrivateOnly.json)."""
    from azure.mgmt.network.models import BastionHost, BastionHostIPConfiguration, Sku, SubResource
    features = _features_for_create(sku, features)
    check_sku_rules(sku, features, scale_units, zones)
    if sku in DEVELOPER_SKUS:
        if public_ip:
            raise Refused(
                '--public-ip-address: a Developer host has no public IP (it is reached through a shared pool).',
                recommendation='Drop --public-ip-address, or use --sku Standard.', kind=Kind.USAGE)
        _, _, vnet_model = _read_by_name_or_id(
            vnet, resource_group, 'virtual network', client.virtual_networks.get,
            'Create it first: az network vnet create -g {rg} -n {name} --address-prefixes 10.0.0.0/16')
        # The models take their flattened properties (virtual_network, ip_configurations ...) as keywords, which
        # their typed overloads do not declare.
        developer: BastionHost = BastionHost(  # type: ignore[call-overload]
            location=location or vnet_model.location, sku=Sku(name=sku), tags=tags,
            virtual_network=SubResource(id=vnet_model.id), ip_configurations=[])
        return developer
    private_only = features['enablePrivateOnlyBastion']
    if private_only and public_ip:
        raise Refused(
            '--private-only and --public-ip-address: a private-only host has no public IP.',
            recommendation='Drop --public-ip-address.', kind=Kind.MUTUALLY_EXCLUSIVE)
    if not private_only and not public_ip:
        raise Refused(
            f'--public-ip-address is required for a {sku} host (a Standard SKU, Static public IP).',
            recommendation='az network public-ip create -g <rg> -n <name> --sku Standard --allocation-method Static; '
            'or --sku Premium --private-only for a host without one, or --sku Developer.', kind=Kind.MISSING)
    vnet_model, subnet = check_bastion_subnet(client, resource_group, vnet)
    pip = check_public_ip(client, resource_group, public_ip) if public_ip else None
    ip_configuration = BastionHostIPConfiguration(  # type: ignore[call-overload]
        name='bastion_ip_config', subnet=SubResource(id=subnet.id),
        public_ip_address=SubResource(id=pip.id) if pip is not None else None)
    host: BastionHost = BastionHost(  # type: ignore[call-overload]
        location=location or vnet_model.location, sku=Sku(name=sku), tags=tags, zones=zones,
        ip_configurations=[ip_configuration], scale_units=scale_units,
        **{sdk_attribute(name): value for name, value in features.items()})
    return host


def apply_update(host: BastionHost, label: str, sku: Optional[str] = None,
                 features: Optional[Mapping[str, Optional[bool]]] = None, scale_units: Optional[int] = None,
                 tags: Optional[dict[str, str]] = None,
                 network_acls: Optional[BastionHostPropertiesFormatNetworkAcls] = None) -> BastionHost:
    """Change the host read from ARM as `update` asks, after the SKU rules are checked on the result."""
    from azure.mgmt.network.models import Sku
    old_sku = sku_name(host)
    new_sku = sku or old_sku
    check_sku_change(label, old_sku, new_sku)
    changed = {name: value for name, value in (features or {}).items() if value is not None}
    result = {feature.rest_name: bool(getattr(host, sdk_attribute(feature.rest_name), None)) for feature in
              HOST_FEATURES}
    result.update(changed)
    check_sku_rules(new_sku, result, scale_units)
    if sku:
        host.sku = Sku(name=new_sku)
    for name, value in changed.items():
        setattr(host, sdk_attribute(name), bool(value))
    if scale_units is not None:
        host.scale_units = scale_units
    if tags is not None:
        host.tags = tags
    if network_acls is not None:
        check_network_acls(label, new_sku, network_acls)
        host.network_acls = network_acls
    return host


def check_final_host(label: str, old_sku: str, host: BastionHost) -> BastionHost:
    """The host as `update` will write it, generic --set/--add/--remove applied, through the same SKU rules as the
    update's own options: `--set sku.name=...` or `--set enableSessionRecording=true` cannot bypass them."""
    from azure.mgmt.network.models import Sku
    try:
        new_sku = canonical_sku(sku_name(host))
    except ValueError as err:
        raise Refused(f'sku.name {err}.', recommendation=f"Use one of {', '.join(SKUS)}.",
                      kind=Kind.INVALID_ARGUMENT) from None
    check_sku_change(label, old_sku, new_sku)
    host.sku = Sku(name=new_sku)
    features = {feature.rest_name: bool(getattr(host, sdk_attribute(feature.rest_name), None))
                for feature in HOST_FEATURES}
    scale_units = host.scale_units if new_sku in SCALING_SKUS or host.scale_units != SCALE_UNITS_RANGE[0] else None
    check_sku_rules(new_sku, features, scale_units)
    check_network_acls(label, new_sku, host.network_acls)
    return host


def network_acls_from_argument(value: str) -> BastionHostPropertiesFormatNetworkAcls:
    """`update --network-acls` as Microsoft's _update.py takes it (an object with ip-rules, each with
    address-prefix; shorthand syntax or JSON) -> azure-mgmt-network BastionHostPropertiesFormatNetworkAcls."""
    from azure.mgmt.network.models import BastionHostPropertiesFormatNetworkAcls, IPRule
    recommendation = ('--network-acls "{ip-rules:[{address-prefix:203.0.113.0/24}]}" or JSON '
                      '\'{"ipRules": [{"addressPrefix": "203.0.113.0/24"}]}\'; "{ip-rules:[]}" clears them.')
    parsed = _parse_object_argument(value)
    rules = parsed.get('ip-rules', parsed.get('ipRules')) if isinstance(parsed, dict) else None
    if not isinstance(rules, list) or (set(parsed) - {'ip-rules', 'ipRules'}):
        raise Refused(f"--network-acls '{value}' is not an object with ip-rules.", recommendation=recommendation,
                      kind=Kind.INVALID_ARGUMENT)
    prefixes = []
    for rule in rules:
        prefix = rule.get('address-prefix', rule.get('addressPrefix')) if isinstance(rule, dict) else None
        try:
            network = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            network = None
        if network is None or network.version != 4:
            raise Refused(f"--network-acls: '{prefix}' is not an IPv4 address or range in CIDR form (Azure takes "
                          'IPv4 only).', recommendation=recommendation, kind=Kind.INVALID_ARGUMENT)
        prefixes.append(str(prefix))
    return BastionHostPropertiesFormatNetworkAcls(ip_rules=[IPRule(address_prefix=p) for p in prefixes])


def _parse_object_argument(value: str) -> Any:
    """azure-cli's shorthand syntax (the one AAZ object arguments take) or JSON -> Python value."""
    import json
    try:
        return json.loads(value)
    except ValueError:
        pass
    from azure.cli.core.aaz._utils import AAZShortHandSyntaxParser
    try:
        return AAZShortHandSyntaxParser()(value)
    except Exception:  # pylint: disable=broad-except
        raise Refused(f"--network-acls '{value}' is neither shorthand syntax nor JSON.",
                      kind=Kind.INVALID_ARGUMENT) from None


def check_network_acls(label: str, sku: str, network_acls: Optional[BastionHostPropertiesFormatNetworkAcls]) -> None:
    """IP rules (networkAcls) belong to Developer hosts ("ACL rules for Developer Bastion Host", bastionHost.json)."""
    rules = getattr(network_acls, 'ip_rules', None) or []
    if rules and sku not in DEVELOPER_SKUS:
        raise Refused(f'{label} is {sku} SKU; IP rules (--network-acls) are for Developer hosts only.',
                      recommendation='Limit who reaches a Standard or Premium host with the NSG rules of '
                                     'AzureBastionSubnet (az network bastion nsg apply).', kind=Kind.VALIDATION)


def put_host(client: NetworkManagementClient, resource_group: str, name: str, host: BastionHost,
             etag: Optional[str] = None, no_wait: bool = False) -> Optional[LROPoller[BastionHost]]:
    """PUT the host; with `etag`, only if nobody changed it since it was read."""
    from azure.cli.core.util import sdk_no_wait
    kwargs = {'headers': {'If-Match': etag}} if etag else {}
    with arm_errors(host_label(resource_group, name)):
        poller: Optional[LROPoller[BastionHost]] = sdk_no_wait(
            no_wait, client.bastion_hosts.begin_create_or_update, resource_group, name, host, **kwargs)
        return poller


def is_native_client_on(host: BastionHost) -> bool:
    return sku_name(host) in NATIVE_CLIENT_SKUS and bool(host.enable_tunneling)


def list_hosts(client: NetworkManagementClient, resource_group: Optional[str] = None) -> list[BastionHost]:
    """The Bastion hosts of ``resource_group``, or of the whole subscription."""
    if resource_group:
        with arm_errors(f"Resource group '{resource_group}'"):
            return list(client.bastion_hosts.list_by_resource_group(resource_group))
    with arm_errors('The subscription'):
        return list(client.bastion_hosts.list())


def delete_host(cli_ctx: AzCli, client: NetworkManagementClient, resource_group: str, name: str,
                no_wait: bool = False) -> None:
    """Delete the host and wait for it with azure-cli's progress indicator (None at once with ``no_wait``)."""
    from azure.cli.core.util import sdk_no_wait
    from azext_bastion_native.management.operations import wait_for
    with arm_errors(host_label(resource_group, name)):
        poller = sdk_no_wait(no_wait, client.bastion_hosts.begin_delete, resource_group, name)
    if not no_wait:
        wait_for(cli_ctx, poller, host_label(resource_group, name))


def bastion_create(
        cmd: AzCliCommand, resource_group_name: str, name: str, vnet_name: str, public_ip_address: Optional[str] = None,
        location: Optional[str] = None, sku: str = 'Standard', enable_tunneling: Optional[bool] = None,
        enable_ip_connect: Optional[bool] = None, file_copy: Optional[bool] = None,
        disable_copy_paste: Optional[bool] = None, enable_kerberos: Optional[bool] = None,
        shareable_link: Optional[bool] = None, session_recording: Optional[bool] = None,
        private_only: Optional[bool] = None, scale_units: Optional[int] = None, zones: Optional[list[str]] = None,
        tags: Optional[dict[str, str]] = None, no_wait: bool = False) -> Optional[BastionHost]:
    from azext_bastion_native.management.operations import wait_for
    check_host_name(name)
    client = cf_network(cmd.cli_ctx)
    features = features_from_flags(
        enable_tunneling=enable_tunneling, enable_ip_connect=enable_ip_connect, file_copy=file_copy,
        disable_copy_paste=disable_copy_paste, enable_kerberos=enable_kerberos,
        shareable_link=shareable_link, session_recording=session_recording, private_only=private_only)
    host = build_host(client, resource_group_name, vnet_name, public_ip_address, location, sku, features,
                      scale_units, zones, tags)
    poller = put_host(client, resource_group_name, name, host, no_wait=no_wait)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, host_label(resource_group_name, name))


def bastion_update(  # pylint: disable=unused-argument
        cmd: AzCliCommand, instance: BastionHost, resource_group_name: str, name: str, sku: Optional[str] = None,
        enable_tunneling: Optional[bool] = None, enable_ip_connect: Optional[bool] = None,
        file_copy: Optional[bool] = None, disable_copy_paste: Optional[bool] = None,
        enable_kerberos: Optional[bool] = None, shareable_link: Optional[bool] = None,
        session_recording: Optional[bool] = None, scale_units: Optional[int] = None,
        tags: Optional[dict[str, str]] = None, network_acls: Optional[str] = None) -> BastionHost:
    features = features_from_flags(
        enable_tunneling=enable_tunneling, enable_ip_connect=enable_ip_connect, file_copy=file_copy,
        disable_copy_paste=disable_copy_paste, enable_kerberos=enable_kerberos,
        shareable_link=shareable_link, session_recording=session_recording)
    acls = network_acls_from_argument(network_acls) if network_acls is not None else None
    return apply_update(instance, host_label(resource_group_name, name), sku=sku, features=features,
                        scale_units=scale_units, tags=tags, network_acls=acls)


def bastion_update_setter(cmd: AzCliCommand, resource_group_name: str, name: str, parameters: BastionHost,
                          no_wait: bool = False) -> Optional[BastionHost]:
    from azext_bastion_native.management.operations import wait_for
    client = cf_network(cmd.cli_ctx)
    label = host_label(resource_group_name, name)
    # --set/--add/--remove were applied after bastion_update's checks: check the host as it will be written
    check_final_host(label, sku_name(get_host(client, resource_group_name, name)), parameters)
    poller = put_host(client, resource_group_name, name, parameters, etag=parameters.etag, no_wait=no_wait)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, host_label(resource_group_name, name))


def bastion_show(cmd: AzCliCommand, resource_group_name: str, name: str) -> BastionHost:
    return get_host(cf_network(cmd.cli_ctx), resource_group_name, name)


def bastion_wait_getter(cmd: AzCliCommand, resource_group_name: str, name: str) -> Any:
    # Plain data: azure-cli's generic wait reads provisioningState (and --custom's JMESPath) from its own todict
    # of what this returns, which on 2.67 sees nothing of an SDK model (results.py) and waits to the timeout.
    from azext_bastion_native.results import plain
    return plain(get_host(cf_network(cmd.cli_ctx), resource_group_name, name, for_wait=True))


def bastion_list(cmd: AzCliCommand, resource_group_name: Optional[str] = None) -> list[BastionHost]:
    return list_hosts(cf_network(cmd.cli_ctx), resource_group_name)


def bastion_delete(cmd: AzCliCommand, resource_group_name: str, name: str, no_wait: bool = False) -> None:
    return delete_host(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, no_wait=no_wait)
