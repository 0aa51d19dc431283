"""The NSG on a host's AzureBastionSubnet over azure-mgmt-network: find it, check it, and merge the rule set in;
the nsg commands.

Write order keeps Bastion working after every single write, so a 409/412 half way leaves a usable state: a new NSG is
created whole before the subnet points at it; an existing one gets its allow rules first, the Deny last (each rule is
its own PUT, so the user's other rules are never rewritten), and the subnet is associated only after all rules are
in. The rule set, the check and the plan are the pure nsg/ package; this is their ARM side."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from knack.log import get_logger

from azext_bastion_native.management.clients import cf_network
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management.errors import ArmNotFound, arm_errors
from azext_bastion_native.management.hosts import BASTION_SUBNET, get_host
from azext_bastion_native.management.operations import confirm
from azext_bastion_native.nsg.check import Json, Report, check
from azext_bastion_native.nsg.plan import MIN_PRIORITY, Plan, RuleWrite, plan_apply
from azext_bastion_native.nsg.rule_set import Network, rule_to_arm

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.cli.core.commands import AzCliCommand
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import Subnet

logger = get_logger(__name__)


@dataclass
class BastionSubnet:
    subscription: str
    resource_group: str     # the VNet's resource group
    vnet: str
    subnet: Subnet
    client: NetworkManagementClient     # for the VNet's subscription
    kerberos: bool = False  # the host has enableKerberos on

    @property
    def nsg_id(self) -> Optional[str]:
        nsg = getattr(self.subnet, 'network_security_group', None)
        return getattr(nsg, 'id', None) if nsg else None


def _parse(resource_id: str) -> tuple[str, str, str, dict[str, Any]]:
    from azure.mgmt.core.tools import parse_resource_id
    parts = dict(parse_resource_id(resource_id))
    return str(parts['subscription']), str(parts['resource_group']), str(parts['name']), parts


def find_bastion_subnet(cli_ctx: AzCli, resource_group: str, name: str) -> BastionSubnet:
    """The host's AzureBastionSubnet (host -> ipConfigurations[0].subnet.id -> subnet), wherever it lives."""
    host = get_host(cf_network(cli_ctx), resource_group, name)
    configs = host.ip_configurations or []
    subnet_id = getattr(getattr(configs[0], 'subnet', None), 'id', None) if configs else None
    if not subnet_id:
        raise Refused(f"Bastion host '{name}' has no IP configuration with a subnet.")
    subscription, vnet_rg, vnet, parts = _parse(subnet_id)
    subnet_name = parts.get('child_name_1', BASTION_SUBNET)
    client = cf_network(cli_ctx, subscription_id=subscription)
    with arm_errors(f"Subnet '{subnet_name}' of virtual network '{vnet}' in resource group '{vnet_rg}'"):
        subnet = client.subnets.get(vnet_rg, vnet, subnet_name)
    return BastionSubnet(subscription, vnet_rg, vnet, subnet, client, bool(getattr(host, 'enable_kerberos', False)))


def read_nsg(cli_ctx: AzCli, nsg_id: str) -> tuple[NetworkManagementClient, str, str, Json]:
    """(client, resource group, name, ARM JSON) of the NSG with this id, in whatever subscription it is."""
    subscription, nsg_rg, nsg_name, _ = _parse(nsg_id)
    client = cf_network(cli_ctx, subscription_id=subscription)
    with arm_errors(f"Network security group '{nsg_name}' in resource group '{nsg_rg}'"):
        nsg = client.network_security_groups.get(nsg_rg, nsg_name)
    return client, nsg_rg, nsg_name, nsg.as_dict()


def bastion_prefixes(subnet: Any) -> list[str]:
    """AzureBastionSubnet's address prefixes (rules may name the subnet itself)."""
    prefixes = list(getattr(subnet, 'address_prefixes', None) or [])
    return ([subnet.address_prefix] if getattr(subnet, 'address_prefix', None) else []) + prefixes


def read_network(target: BastionSubnet) -> tuple[Network, Optional[str]]:
    """(what the rule set depends on besides the NSG, the virtual network's location): AzureBastionSubnet's prefixes,
    the virtual network's address space and custom DNS servers (dhcpOptions.dnsServers), the host's Kerberos."""
    with arm_errors(f"Virtual network '{target.vnet}' in resource group '{target.resource_group}'"):
        vnet = target.client.virtual_networks.get(target.resource_group, target.vnet)
    space = getattr(getattr(vnet, 'address_space', None), 'address_prefixes', None) or []
    dns = getattr(getattr(vnet, 'dhcp_options', None), 'dns_servers', None) or []
    return Network(tuple(bastion_prefixes(target.subnet)), tuple(space), tuple(dns), target.kerberos), vnet.location


def check_host(cli_ctx: AzCli, resource_group: str, name: str, ports: Optional[Sequence[str]],
               nsg_name: Optional[str] = None) -> Report:
    """The report for the NSG on the host's AzureBastionSubnet or, when it has none, the NSG named `nsg_name`
    (the one `nsg apply --nsg-name` would merge into and associate)."""
    target = find_bastion_subnet(cli_ctx, resource_group, name)
    nsg_json = None
    if target.nsg_id or nsg_name:
        nsg_json = _resolve_nsg(cli_ctx, target, name, nsg_name)[4]
        if nsg_json is None:
            raise Refused(
                f"Network security group '{nsg_name}' was not found in resource group '{target.resource_group}'.",
                recommendation='Give the name of an NSG in the virtual network\'s resource group, or drop --nsg-name.',
                kind=Kind.NOT_FOUND)
    report = check(nsg_json, ports, network=read_network(target)[0])
    report.host = name
    return report


def exit_when_not_compliant(cli_ctx: AzCli, report: Report) -> None:
    """The report is printed as usual (-o json/table/--query), then the exit status is 3 when it needs a fix."""
    if report.ok:
        return
    from azext_bastion_native.exit_status import exit_after_output
    theirs = ''
    if any(f.kind == 'breaking' for f in report.failing):
        theirs += ('; a Deny of yours blocks what Bastion needs: narrow or remove it, or let `az network bastion nsg '
                   'apply --override-denies` place the allow rules above it')
    if any(f.leak for f in report.failing):
        theirs += '; a rule of yours that opens more ports to the virtual network stays until you narrow or remove it'
    exit_after_output(cli_ctx, f'{len(report.failing)} finding(s) need a fix; `az network bastion nsg apply` adds '
                               f'what is missing{theirs}.')


def _describe(plan: Plan, associate: bool, nsg_label: str) -> list[str]:
    lines = []
    if plan.create_nsg:
        lines.append(f'create NSG {nsg_label}')
    for write in plan.writes:
        rule = write.rule
        before = ''
        if write.previous:
            before = (f" (was priority {write.previous['priority']}, {write.previous['access']} "
                      f"{write.previous['source']} -> {write.previous['destination']} ports {write.previous['ports']})")
        lines.append(f'{write.action} {rule.name}: {rule.direction} {rule.priority} {rule.access} {rule.source} -> '
                     f'{rule.destination} ports {",".join(rule.ports)}{before}')
    for moved in plan.moved:
        lines.append(f"moved {moved['rule']} from priority {moved['wanted']} to {moved['priority']}: "
                     f"{moved['because']}")
    if associate:
        lines.append(f'associate {nsg_label} with {BASTION_SUBNET}')
    return lines


def _put_rule(client: NetworkManagementClient, nsg_rg: str, nsg_name: str, write: RuleWrite,
              etags: dict[str, Any]) -> None:
    from azure.mgmt.network.models import SecurityRule
    # an add must not overwrite a rule someone created meanwhile; an update only the version we read
    headers = {'If-Match': etags[write.rule.name.lower()]} if write.action == 'update' \
        else {'If-None-Match': '*'}
    with arm_errors(f"Security rule '{write.rule.name}' of NSG '{nsg_name}'"):
        client.security_rules.begin_create_or_update(
            nsg_rg, nsg_name, write.rule.name, SecurityRule(rule_to_arm(write.rule)),
            headers=headers).result()


def _resolve_nsg(cli_ctx: AzCli, target: BastionSubnet, name: str,
                 nsg_name: Optional[str]) -> tuple[NetworkManagementClient, str, str, str, Optional[Json]]:
    """(client, resource group, name, id, ARM JSON or None) of the NSG to merge into or create."""
    if target.nsg_id:
        client, nsg_rg, current_name, current = read_nsg(cli_ctx, target.nsg_id)
        if nsg_name and nsg_name.lower() != current_name.lower():
            raise Refused(
                f"{BASTION_SUBNET} already uses NSG '{current_name}'; --nsg-name '{nsg_name}' would replace it.",
                recommendation='Drop --nsg-name to merge the rules into the NSG the subnet uses.', kind=Kind.USAGE)
        return client, nsg_rg, current_name, target.nsg_id, current
    nsg_name = nsg_name or f'{name}-nsg'
    nsg_id = (f'/subscriptions/{target.subscription}/resourceGroups/{target.resource_group}/providers/'
              f'Microsoft.Network/networkSecurityGroups/{nsg_name}')
    nsg_json: Optional[Json]
    try:    # an NSG of that name that is not associated yet: merge into it rather than replace it
        nsg_json = read_nsg(cli_ctx, nsg_id)[3]
    except ArmNotFound:
        nsg_json = None
    return target.client, target.resource_group, nsg_name, nsg_id, nsg_json


def _write_rules(client: NetworkManagementClient, nsg_rg: str, nsg_name: str,  # pylint: disable=too-many-arguments
                 nsg_json: Optional[Json], plan: Plan, location: Optional[str], whole: bool = False) -> None:
    """One PUT per rule of ours, so the user's other rules are never rewritten; the whole NSG in one PUT when it is
    new, or (`whole`) when it sits on AzureBastionSubnet without being compliant yet: Azure checks every rule
    change of such an NSG, so no single rule could go in on its own."""
    from azure.mgmt.network.models import NetworkSecurityGroup
    if whole and nsg_json is not None:
        from azext_bastion_native.nsg.plan import apply_to_json
        with arm_errors(f"Network security group '{nsg_name}'"):
            client.network_security_groups.begin_create_or_update(
                nsg_rg, nsg_name, NetworkSecurityGroup(apply_to_json(nsg_json, plan)),
                headers={'If-Match': nsg_json.get('etag')} if nsg_json.get('etag') else {}).result()
        return
    if plan.create_nsg:
        new_nsg = NetworkSecurityGroup({'location': location, 'properties': {
            'securityRules': [rule_to_arm(w.rule) for w in plan.writes]}})
        with arm_errors(f"Network security group '{nsg_name}'"):
            client.network_security_groups.begin_create_or_update(nsg_rg, nsg_name, new_nsg,
                                                                  headers={'If-None-Match': '*'}).result()
        return
    etags = {(r.get('name') or '').lower(): r.get('etag')
             for r in ((nsg_json or {}).get('properties') or {}).get('securityRules') or []}
    for write in plan.writes:
        _put_rule(client, nsg_rg, nsg_name, write, etags)


def _associate(target: BastionSubnet, nsg_id: str, no_wait: bool) -> None:
    from azure.cli.core.util import sdk_no_wait
    from azure.mgmt.network.models import NetworkSecurityGroup
    subnet = target.subnet
    subnet.network_security_group = NetworkSecurityGroup(id=nsg_id)
    # only the subnet version we read: a concurrent change to it is reported (412), not overwritten
    headers = {'If-Match': subnet.etag} if getattr(subnet, 'etag', None) else {}
    with arm_errors(f'{BASTION_SUBNET} of virtual network {target.vnet}'):
        poller = sdk_no_wait(no_wait, target.client.subnets.begin_create_or_update, target.resource_group,
                             target.vnet, subnet.name, subnet, headers=headers)
        if poller is not None:
            poller.result()


def _refuse_blocked(plan: Plan, override_denies: bool, label: str) -> None:
    """Nothing is written when the NSG would still be refused on AzureBastionSubnet (Azure checks it)."""
    if not plan.blocked:
        return
    breaking = any(f.kind == 'breaking' for f in plan.report.findings)
    unresolved = ''
    if breaking and not override_denies:
        recommendation = ('Remove or narrow the Deny rule named above, or run the command again with '
                          '--override-denies to place Bastion\'s allow rules above your Deny rules.')
    else:
        unresolved = ''.join(f' Not placed: {item}.' for item in plan.unresolved)
        recommendation = (f'Free a priority before the Deny rule named above, or move that Deny to a priority above '
                          f'{MIN_PRIORITY} (a rule at {MIN_PRIORITY}, the first an NSG takes, cannot be outranked).')
    raise Refused(
        f'Not changed: NSG {label} would still lack what Bastion needs on AzureBastionSubnet (Azure refuses such an '
        'NSG): ' + '; '.join(plan.blocked) + unresolved, recommendation=recommendation)


def apply(cli_ctx: AzCli, resource_group: str, name: str,  # pylint: disable=too-many-arguments,too-many-locals
          ports: Optional[Sequence[str]], nsg_name: Optional[str] = None, yes: bool = False, no_wait: bool = False,
          override_denies: bool = False) -> Json:
    """Create or merge the rule set into the NSG of the host's AzureBastionSubnet and associate it."""
    target = find_bastion_subnet(cli_ctx, resource_group, name)
    client, nsg_rg, nsg_name, nsg_id, nsg_json = _resolve_nsg(cli_ctx, target, name, nsg_name)
    network, location = read_network(target)
    plan = plan_apply(nsg_json, ports, nsg_name, network, override_denies)
    associate = (target.nsg_id or '').lower() != nsg_id.lower()
    label = f"'{nsg_name}' (resource group '{nsg_rg}')"
    _refuse_blocked(plan, override_denies, label)
    lines = _describe(plan, associate, label)
    result = {'host': name, 'nsg': nsg_id, 'createdNsg': plan.create_nsg, 'associated': associate,
              'changes': lines, 'moved': plan.moved, 'unresolved': plan.unresolved}
    for item in plan.unresolved:
        logger.warning('Not changed (your own rule decides): %s', item)
    if not lines:
        logger.warning('No change: NSG %s already carries the rule set for ports %s.', label,
                       ' '.join(plan.report.ports))
        return result
    if nsg_json is not None and plan.writes and not yes:
        # The diff is shown where it is asked about; otherwise the command's output ('changes') carries it.
        logger.warning('Changes to the existing NSG %s:', label)
        for line in lines:
            logger.warning('  %s', line)
        confirm('Apply these changes to the existing NSG?', yes, 'Nothing was changed.',
                'The NSG exists and would change (' + '; '.join(lines) + '), and there is no terminal to confirm on.',
                'Review the changes, then run the command again with --yes.')
    _write_rules(client, nsg_rg, nsg_name, nsg_json, plan, location,
                 whole=not associate and nsg_json is not None and not plan.report.azure_accepts)
    if associate:
        _associate(target, nsg_id, no_wait)
    return result


def nsg_show(ports: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_as_row
    return [rule_as_row(rule) for rule in bastion_rule_set(ports)]


def nsg_check(cmd: AzCliCommand, resource_group_name: str, name: str, ports: Optional[Sequence[str]] = None,
              nsg_name: Optional[str] = None) -> Json:
    report = check_host(cmd.cli_ctx, resource_group_name, name, ports, nsg_name=nsg_name)
    exit_when_not_compliant(cmd.cli_ctx, report)
    return report.as_dict()


def nsg_apply(cmd: AzCliCommand, resource_group_name: str, name: str, ports: Optional[Sequence[str]] = None,
              nsg_name: Optional[str] = None, yes: bool = False, no_wait: bool = False,
              override_denies: bool = False) -> Json:
    return apply(cmd.cli_ctx, resource_group_name, name, ports, nsg_name=nsg_name, yes=yes, no_wait=no_wait,
                 override_denies=override_denies)
