"""ssh-config for many VMs at once (`--vm-resource-group`, `--all`): the VMs a Bastion host can reach (its virtual
network and the networks peered with it), one Host block per Linux VM (alias: the VM name, made unique when names
clash across resource groups), blocks of the same set updated in place and, with --prune, removed when their VM is
gone; and an Ansible inventory (YAML or INI) naming the same aliases, grouped by OS and by resource group."""

import json
import os
import re
import sys
from dataclasses import dataclass
from typing import List, Optional

from azext_bastion_native.connect import ssh_config

_GROUP_UNSAFE = re.compile(r'[^a-z0-9_]')
_ALIAS_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


@dataclass(frozen=True)
class FleetVm:
    name: str
    resource_group: str
    id: str
    os: Optional[str]
    admin_username: Optional[str]
    vnet_id: Optional[str]


@dataclass(frozen=True)
class Skipped:
    vm: str
    reason: str

    def as_dict(self):
        return {'vm': self.vm, 'reason': self.reason}


def _vnet_of(subnet_id):
    """The virtual network ID of a subnet ID (lower case, for comparison)."""
    if not subnet_id:
        return None
    head, _, _ = subnet_id.rpartition('/subnets/')
    return head.lower() or None


def host_vnet(host):
    """The host's virtual network: its AzureBastionSubnet's (Standard, Premium, Basic) or the one a Developer host
    names."""
    for ip_config in getattr(host, 'ip_configurations', None) or []:
        vnet = _vnet_of(getattr(getattr(ip_config, 'subnet', None), 'id', None))
        if vnet:
            return vnet
    network = getattr(host, 'virtual_network', None)
    return (getattr(network, 'id', None) or '').lower() or None


def reachable_vnets(network, vnet_id):
    """The host's virtual network and those peered with it (connected peerings, as the VNet's own GET lists them)."""
    from azure.mgmt.core.tools import parse_resource_id
    found = {vnet_id}
    parts = parse_resource_id(vnet_id)
    vnet = network.virtual_networks.get(parts['resource_group'], parts['name'])
    for peering in getattr(vnet, 'virtual_network_peerings', None) or []:
        state = str(getattr(peering, 'peering_state', '') or '')
        remote = getattr(getattr(peering, 'remote_virtual_network', None), 'id', None)
        if remote and state.rsplit('.', 1)[-1].lower() == 'connected':     # enum text or value
            found.add(remote.lower())
    return found


def _nic_vnet(network, vm):
    from azure.mgmt.core.tools import parse_resource_id
    nics = getattr(getattr(vm, 'network_profile', None), 'network_interfaces', None) or []
    primary = next((nic for nic in nics if getattr(nic, 'primary', False)), nics[0] if nics else None)
    if primary is None:
        return None
    parts = parse_resource_id(primary.id)
    nic = network.network_interfaces.get(parts['resource_group'], parts['name'])
    for ip_config in nic.ip_configurations or []:
        vnet = _vnet_of(getattr(getattr(ip_config, 'subnet', None), 'id', None))
        if vnet:
            return vnet
    return None


def list_fleet(cli_ctx, host, subscription, vm_resource_group=None):
    """(VMs the host reaches, Skipped for VMs it does not) in ``vm_resource_group``, or in the whole subscription."""
    from azure.mgmt.core.tools import parse_resource_id
    from azext_bastion_native._client_factory import cf_compute, cf_network
    from azext_bastion_native.management import vms
    from azext_bastion_native.management.errors import arm_errors
    network = cf_network(cli_ctx, subscription_id=subscription)
    compute = cf_compute(cli_ctx, subscription_id=subscription)
    vnet = host_vnet(host)
    reachable = reachable_vnets(network, vnet) if vnet else set()
    scope = f"resource group '{vm_resource_group}'" if vm_resource_group else 'the subscription'
    with arm_errors(f'The virtual machines in {scope}'):
        found = list(compute.virtual_machines.list(vm_resource_group) if vm_resource_group
                     else compute.virtual_machines.list_all())
    fleet, skipped = [], []
    for vm in sorted(found, key=lambda item: (item.name.lower(), item.id.lower())):
        resource_group = parse_resource_id(vm.id)['resource_group']
        vm_vnet = _nic_vnet(network, vm)
        if vm_vnet not in reachable:
            if vm_resource_group:       # --all: VMs elsewhere are simply not the host's to reach
                skipped.append(Skipped(vm.name, "not in the Bastion host's virtual network or one peered with it"))
            continue
        fleet.append(FleetVm(vm.name, resource_group, vm.id, vms.os_type(vm), vms.admin_username(vm), vm_vnet))
    return fleet, skipped


def assign_aliases(fleet: List[FleetVm]):
    """{alias: FleetVm}: the VM name, or NAME-RESOURCEGROUP for every VM whose name another VM has too."""
    counts = {}
    for vm in fleet:
        counts[vm.name.lower()] = counts.get(vm.name.lower(), 0) + 1
    aliases = {}
    for vm in fleet:
        alias = vm.name if counts[vm.name.lower()] == 1 else f'{vm.name}-{vm.resource_group}'
        alias = _ALIAS_UNSAFE.sub('-', alias).lstrip('.-_') or 'vm'
        while alias in aliases:
            alias += '-2'
        aliases[alias] = vm
    return aliases


def ansible_group(prefix, value):
    return prefix + _GROUP_UNSAFE.sub('_', value.lower())


def render_inventory(entries, inventory_format, ssh_config_path=None):
    """``entries``: [(alias, FleetVm)]. Groups: one per OS (linux, windows) and one per resource group (rg_NAME).
    When the Host blocks are in a file ssh does not read by itself, every host gets `-F FILE`."""
    groups = {}
    for alias, vm in entries:
        for group in (ansible_group('', vm.os or 'unknown'), ansible_group('rg_', vm.resource_group)):
            groups.setdefault(group, []).append(alias)
    default_config = os.path.realpath(os.path.expanduser('~/.ssh/config'))
    common_args = None
    if ssh_config_path and os.path.realpath(ssh_config_path) != default_config:
        common_args = f'-F {ssh_config_path}'
    if inventory_format == 'ini':
        lines = []
        for group, aliases in sorted(groups.items()):
            lines += [f'[{group}]', *aliases, '']
        if common_args:
            lines += ['[all:vars]', f'ansible_ssh_common_args={json.dumps(common_args)}', '']
        return '\n'.join(lines)
    # YAML, written as JSON: a subset of YAML every Ansible reads, and no YAML library needed here.
    inventory = {'all': {'children': {group: {'hosts': {alias: {} for alias in aliases}}
                                      for group, aliases in sorted(groups.items())}}}
    if common_args:
        inventory['all']['vars'] = {'ansible_ssh_common_args': common_args}
    return '# Ansible inventory written by `az network bastion ssh-config` (YAML).\n' + \
        json.dumps(inventory, indent=2) + '\n'


def fleet_ssh_config_command(cmd, resource_group_name, name, vm_resource_group=None, username=None, ssh_key=None,
                             resource_port=None, config_file=None, prune=False, inventory=None,
                             inventory_format='yaml', no_agent=False):
    """ssh-config --vm-resource-group / --all: print the blocks, or write them (and the inventory)."""
    from azext_bastion_native._client_factory import cf_network
    from azext_bastion_native.bastion_facts import subscription_of
    from azext_bastion_native.management.hosts import get_host
    key_path = _refuse_offline(cmd.cli_ctx, ssh_key, config_file, prune, inventory)
    host = get_host(cf_network(cmd.cli_ctx), resource_group_name, name)
    fleet, skipped = list_fleet(cmd.cli_ctx, host, subscription_of(host.id), vm_resource_group)
    options = BlockOptions(resource_group_name, name, resource_port, username,
                           os.path.abspath(key_path) if key_path else None,
                           ssh_config.given_subscription(cmd.cli_ctx), no_agent,
                           f"{resource_group_name}/{name}/{vm_resource_group or '*'}".lower())
    with ssh_config.cli_file_errors(config_file):
        blocks, entries = fleet_blocks(host, assign_aliases(fleet), options, skipped)
        if not config_file:
            sys.stdout.write('\n'.join(blocks.values()))
            sys.stdout.flush()
            return None
        summary = write_fleet(config_file, blocks, options.tag, prune)
        summary['inventory'] = ssh_config.write_atomically(
            inventory, render_inventory(entries, inventory_format, summary['file'])) if inventory else None
    summary['skipped'] = [item.as_dict() for item in skipped]
    return summary


def write_fleet(config_file, blocks, tag, prune):
    """Write ``blocks`` (replacing ours in place) and, with ``prune``, drop this set's blocks not among them."""
    path = os.path.realpath(os.path.expanduser(config_file))
    existing = ssh_config.read_config(path) if os.path.exists(path) else ''
    gone = [alias for alias in ssh_config.tagged_aliases(existing, tag) if alias not in blocks] if prune else []
    path, replaced = ssh_config.write_blocks(path, blocks, overwrite=True, remove=gone)
    return {'file': path, 'added': sorted(set(blocks) - set(replaced)), 'updated': sorted(replaced),
            'pruned': sorted(gone)}


def _refuse_offline(cli_ctx, ssh_key, config_file, prune, inventory):
    """Cloud Shell, the key, options that need --file: refused before any request; the key's path."""
    from azext_bastion_native.guards import check_ssh_key_file, cloud_vault_suffixes, refuse_in_cloud_shell
    refuse_in_cloud_shell(ssh_config.COMMAND_NAME)
    key_path = check_ssh_key_file(ssh_key, cloud_vault_suffixes(cli_ctx)) if ssh_key else None
    if (prune or inventory) and not config_file:
        from azure.cli.core.azclierror import RequiredArgumentMissingError
        raise RequiredArgumentMissingError('--prune and --inventory work on a config file: give --file too.')
    return key_path


@dataclass(frozen=True)
class BlockOptions:  # pylint: disable=too-many-instance-attributes
    """What every block of one run shares; ``tag`` names the set (host and scope) for --prune."""
    resource_group: str
    name: str
    resource_port: Optional[int]
    username: Optional[str]
    key_path: Optional[str]
    subscription: Optional[str]
    no_agent: bool
    tag: str


def fleet_blocks(host, aliases, options: BlockOptions, skipped: List[Skipped]):
    """({alias: block}, [(alias, FleetVm)]) for the Linux VMs; the others are added to ``skipped``."""
    from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS
    from azext_bastion_native.clients.ssh import host_key_alias
    from azext_bastion_native.cli_errors import refusals_as_cli_errors
    from azext_bastion_native.connect.preflight import ConnectRequest, plan_connection
    port = int(options.resource_port) if options.resource_port is not None else DEFAULT_METHOD_PORTS['ssh']
    blocks, entries = {}, []
    for alias, vm in aliases.items():
        if vm.os and vm.os != 'linux':
            skipped.append(Skipped(vm.name, f'{vm.os.capitalize()} VM: no ssh block (use az network bastion rdp, '
                                            'or ssh-config --target-resource-id if it runs OpenSSH)'))
            continue
        with refusals_as_cli_errors():      # native client on, the port: what the proxy would refuse
            plan_connection(host, ConnectRequest(options.resource_group, options.name, port, vm.id))
        proxy = ssh_config.proxy_command_argv(options.resource_group, options.name, vm.id, port,
                                              options.subscription, options.no_agent)
        blocks[alias] = ssh_config.render_block(
            alias, proxy, username=options.username or vm.admin_username, key_path=options.key_path,
            host_key_alias=host_key_alias(vm.id), tag=options.tag,
            comment=f'Written by `az {ssh_config.COMMAND_NAME}`: {vm.name} in resource group {vm.resource_group} '
                    f'through Bastion host {options.name} (resource group {options.resource_group}).')
        entries.append((alias, vm))
    return blocks, entries
