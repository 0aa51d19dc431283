"""The NSG on a host's AzureBastionSubnet over azure-mgmt-network: find it, check it, and merge the rule set in.

Write order keeps Bastion working after every single write, so a 409/412 half way leaves a usable state: a new NSG is
created whole before the subnet points at it; an existing one gets its allow rules first, the Deny last (each rule is
its own PUT, so the user's other rules are never rewritten), and the subnet is associated only after all rules are
in. The rule set, the check and the plan are the pure nsg/ package; this is their ARM side."""

from dataclasses import dataclass
from typing import Any

from azure.cli.core import azclierror
from knack.log import get_logger

from azext_bastion_native._client_factory import cf_network
from azext_bastion_native.management.errors import arm_errors
from azext_bastion_native.management.hosts import BASTION_SUBNET, get_host
from azext_bastion_native.management.operations import confirm
from azext_bastion_native.nsg.check import check
from azext_bastion_native.nsg.plan import plan_apply
from azext_bastion_native.nsg.rule_set import rule_to_arm

logger = get_logger(__name__)


@dataclass
class BastionSubnet:
    subscription: str
    resource_group: str     # the VNet's resource group
    vnet: str
    subnet: Any             # azure.mgmt.network.models.Subnet
    client: Any             # NetworkManagementClient for the VNet's subscription

    @property
    def nsg_id(self):
        nsg = getattr(self.subnet, 'network_security_group', None)
        return getattr(nsg, 'id', None) if nsg else None


def _parse(resource_id):
    from azure.mgmt.core.tools import parse_resource_id
    parts = parse_resource_id(resource_id)
    return parts['subscription'], parts['resource_group'], parts['name'], parts


def find_bastion_subnet(cli_ctx, resource_group, name):
    """The host's AzureBastionSubnet (host -> ipConfigurations[0].subnet.id -> subnet), wherever it lives."""
    host = get_host(cf_network(cli_ctx), resource_group, name)
    configs = host.ip_configurations or []
    subnet_id = getattr(getattr(configs[0], 'subnet', None), 'id', None) if configs else None
    if not subnet_id:
        raise azclierror.ValidationError(f"Bastion host '{name}' has no IP configuration with a subnet.")
    subscription, vnet_rg, vnet, parts = _parse(subnet_id)
    subnet_name = parts.get('child_name_1', BASTION_SUBNET)
    client = cf_network(cli_ctx, subscription_id=subscription)
    with arm_errors(f"Subnet '{subnet_name}' of virtual network '{vnet}' in resource group '{vnet_rg}'"):
        subnet = client.subnets.get(vnet_rg, vnet, subnet_name)
    return BastionSubnet(subscription, vnet_rg, vnet, subnet, client)


def read_nsg(cli_ctx, nsg_id):
    """(client, resource group, name, ARM JSON) of the NSG with this id, in whatever subscription it is."""
    subscription, nsg_rg, nsg_name, _ = _parse(nsg_id)
    client = cf_network(cli_ctx, subscription_id=subscription)
    with arm_errors(f"Network security group '{nsg_name}' in resource group '{nsg_rg}'"):
        nsg = client.network_security_groups.get(nsg_rg, nsg_name)
    return client, nsg_rg, nsg_name, nsg.as_dict()


def bastion_prefixes(subnet):
    """AzureBastionSubnet's address prefixes (rules may name the subnet itself)."""
    prefixes = list(getattr(subnet, 'address_prefixes', None) or [])
    return ([subnet.address_prefix] if getattr(subnet, 'address_prefix', None) else []) + prefixes


def check_host(cli_ctx, resource_group, name, ports, nsg_name=None):
    """The report for the NSG on the host's AzureBastionSubnet or, when it has none, the NSG named `nsg_name`
    (the one `nsg apply --nsg-name` would merge into and associate)."""
    target = find_bastion_subnet(cli_ctx, resource_group, name)
    nsg_json = None
    if target.nsg_id or nsg_name:
        nsg_json = _resolve_nsg(cli_ctx, target, name, nsg_name)[4]
        if nsg_json is None:
            raise azclierror.ResourceNotFoundError(
                f"Network security group '{nsg_name}' was not found in resource group '{target.resource_group}'.",
                recommendation='Give the name of an NSG in the virtual network\'s resource group, or drop --nsg-name.')
    return check(nsg_json, ports, bastion_prefixes=bastion_prefixes(target.subnet))


def exit_when_not_compliant(cli_ctx, report):
    """The report is printed as usual (-o json/table/--query), then the exit status is 3 when it needs a fix."""
    if report.ok:
        return
    from azext_bastion_native.exit_status import exit_after_output
    failing = [f for f in report.findings if f.kind in ('no-nsg', 'missing', 'breaking')]
    exit_after_output(cli_ctx, f'{len(failing)} finding(s) need a fix; `az network bastion nsg apply` adds what is '
                               'missing.')


def _describe(plan, associate, nsg_label):
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


def _put_rule(client, nsg_rg, nsg_name, write, etags):
    from azure.mgmt.network.models import SecurityRule
    # an add must not overwrite a rule someone created meanwhile; an update only the version we read
    headers = {'If-Match': etags[write.rule.name.lower()]} if write.action == 'update' \
        else {'If-None-Match': '*'}
    with arm_errors(f"Security rule '{write.rule.name}' of NSG '{nsg_name}'"):
        client.security_rules.begin_create_or_update(
            nsg_rg, nsg_name, write.rule.name, SecurityRule(rule_to_arm(write.rule)),
            headers=headers).result()


def _resolve_nsg(cli_ctx, target, name, nsg_name):
    """(client, resource group, name, id, ARM JSON or None) of the NSG to merge into or create."""
    if target.nsg_id:
        client, nsg_rg, current_name, nsg_json = read_nsg(cli_ctx, target.nsg_id)
        if nsg_name and nsg_name.lower() != current_name.lower():
            raise azclierror.ArgumentUsageError(
                f"{BASTION_SUBNET} already uses NSG '{current_name}'; --nsg-name '{nsg_name}' would replace it.",
                recommendation='Drop --nsg-name to merge the rules into the NSG the subnet uses.')
        return client, nsg_rg, current_name, target.nsg_id, nsg_json
    nsg_name = nsg_name or f'{name}-nsg'
    nsg_id = (f'/subscriptions/{target.subscription}/resourceGroups/{target.resource_group}/providers/'
              f'Microsoft.Network/networkSecurityGroups/{nsg_name}')
    try:    # an NSG of that name that is not associated yet: merge into it rather than replace it
        nsg_json = read_nsg(cli_ctx, nsg_id)[3]
    except azclierror.ResourceNotFoundError:
        nsg_json = None
    return target.client, target.resource_group, nsg_name, nsg_id, nsg_json


def _write_rules(client, nsg_rg, nsg_name, nsg_json, plan, location, whole=False):
    """One PUT per rule of ours, so the user's other rules are never rewritten; the whole NSG in one PUT when it is
    new, or (`whole`) when it sits on AzureBastionSubnet without being compliant yet: Azure checks every rule
    change of such an NSG, so no single rule could go in on its own."""
    from azure.mgmt.network.models import NetworkSecurityGroup
    if whole:
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
             for r in (nsg_json.get('properties') or {}).get('securityRules') or []}
    for write in plan.writes:
        _put_rule(client, nsg_rg, nsg_name, write, etags)


def _associate(target, nsg_id, no_wait):
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


def _refuse_blocked(plan, override_denies, label):
    """Nothing is written when the NSG would still be refused on AzureBastionSubnet (Azure checks it)."""
    if not plan.blocked:
        return
    breaking = any(f.kind == 'breaking' for f in plan.report.findings)
    if breaking and not override_denies:
        recommendation = ('Remove or narrow the Deny rule named above, or run the command again with '
                          '--override-denies to place Bastion\'s allow rules above your Deny rules.')
    else:
        recommendation = 'Make room for the rules named above (free priorities, no Deny at priority 100).'
    raise azclierror.ValidationError(
        f'Not changed: NSG {label} would still lack what Bastion needs on AzureBastionSubnet (Azure refuses such an '
        'NSG): ' + '; '.join(plan.blocked), recommendation=recommendation)


def apply(cli_ctx, resource_group, name, ports, nsg_name=None, yes=False,  # pylint: disable=too-many-locals
          no_wait=False, override_denies=False):
    """Create or merge the rule set into the NSG of the host's AzureBastionSubnet and associate it."""
    target = find_bastion_subnet(cli_ctx, resource_group, name)
    client, nsg_rg, nsg_name, nsg_id, nsg_json = _resolve_nsg(cli_ctx, target, name, nsg_name)
    plan = plan_apply(nsg_json, ports, nsg_name, bastion_prefixes(target.subnet), override_denies)
    associate = (target.nsg_id or '').lower() != nsg_id.lower()
    label = f"'{nsg_name}' (resource group '{nsg_rg}')"
    _refuse_blocked(plan, override_denies, label)
    lines = _describe(plan, associate, label)
    result = {'nsg': nsg_id, 'createdNsg': plan.create_nsg, 'associated': associate,
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
    location = None
    if plan.create_nsg:
        with arm_errors(f"Virtual network '{target.vnet}'"):
            location = target.client.virtual_networks.get(target.resource_group, target.vnet).location
    _write_rules(client, nsg_rg, nsg_name, nsg_json, plan, location,
                 whole=not associate and nsg_json is not None and not plan.report.azure_accepts)
    if associate:
        _associate(target, nsg_id, no_wait)
    return result
