"""ssh-config for many VMs at once (`--vm-resource-group`, `--all`): one Host block per running Linux VM the host
reaches (management/fleet_vms.py reads them), blocks of the same set updated in place and, with --prune, removed when
their VM is gone; and an Ansible inventory (YAML or INI) naming the same aliases, grouped by OS and resource group.

Aliases: the VM's name. When two VMs of the run share a name, each is called NAME-RESOURCEGROUP, unless the config
already has a block of ours for it, whose alias it keeps; a name that a block of ours in the config gives to another
VM is taken too. So an alias does not change with the scope (`--vm-resource-group` or `--all`) once written."""

import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import List, Optional

from azext_bastion_native.connect import ssh_config_text as text_format
from azext_bastion_native.connect.proxy_command import proxy_command_argv
from azext_bastion_native.connect.ssh_config_file import edit_config
from azext_bastion_native.connect.ssh_config_text import SshConfigError, has_control_character, printable
from azext_bastion_native.management.fleet_vms import FleetVm, Skipped

_GROUP_UNSAFE = re.compile(r'[^a-z0-9_]')
_ALIAS_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


def skipped_as_dict(item: Skipped):
    """A skipped VM for -o json: its name as printable text (a control character written as \\xNN)."""
    return {'vm': printable(item.vm), 'resourceGroup': printable(item.resource_group or ''),
            'reason': printable(item.reason)}


def skipped_line(item: Skipped):
    where = f" (resource group {printable(item.resource_group)})" if item.resource_group else ''
    return f"Skipped VM '{printable(item.vm)}'{where}: {printable(item.reason)}."


def _plain_alias(value):
    return _ALIAS_UNSAFE.sub('-', value).lstrip('.-_') or 'vm'


def existing_owners(text):
    """{alias: host key alias} of our blocks in ``text``: which VM each alias already names."""
    return {alias: text_format.block_options(block).get('hostkeyalias')
            for alias, block in text_format.marked_blocks(text).items()}


def assign_aliases(fleet: List[FleetVm], existing=None):
    """{alias: FleetVm} by the rule in the module docstring; ``existing``: existing_owners of the config."""
    from azext_bastion_native.clients.ssh import host_key_alias
    existing = existing or {}
    kept = {owner: alias for alias, owner in existing.items() if owner}
    taken = {alias.lower(): owner for alias, owner in existing.items()}
    counts: dict = {}
    for vm in fleet:
        counts[vm.name.lower()] = counts.get(vm.name.lower(), 0) + 1
    aliases, used = {}, set()
    newcomers = []
    for vm in fleet:
        alias = kept.get(host_key_alias(vm.id))
        if alias and alias.lower() not in used:
            aliases[alias] = vm
            used.add(alias.lower())
        else:
            newcomers.append(vm)
    for vm in newcomers:
        alias = _plain_alias(vm.name)
        owner = taken.get(alias.lower())
        if counts[vm.name.lower()] > 1 or (owner is not None and owner != host_key_alias(vm.id)):
            alias = _plain_alias(f'{vm.name}-{vm.resource_group}')
        while alias.lower() in used or taken.get(alias.lower(), host_key_alias(vm.id)) != host_key_alias(vm.id):
            alias += '-2'
        aliases[alias] = vm
        used.add(alias.lower())
    return aliases


def ansible_group(prefix, value):
    return prefix + _GROUP_UNSAFE.sub('_', value.lower())


def render_inventory(entries, inventory_format, ssh_config_path=None):
    """``entries``: [(alias, FleetVm)]. Groups: one per OS (linux, windows) and one per resource group (rg_NAME).
    When the Host blocks are in a file ssh does not read by itself, every host gets `-F FILE` (FILE quoted for
    the shell-like split Ansible makes of ansible_ssh_common_args)."""
    groups = {}
    for alias, vm in entries:
        for group in (ansible_group('', vm.os or 'unknown'), ansible_group('rg_', vm.resource_group)):
            groups.setdefault(group, []).append(alias)
    default_config = os.path.realpath(os.path.expanduser('~/.ssh/config'))
    common_args = None
    if ssh_config_path and os.path.realpath(ssh_config_path) != default_config:
        common_args = f'-F {shlex.quote(text_format.check_plain(ssh_config_path, "--file"))}'
    if inventory_format == 'ini':
        lines = []
        for group, aliases in sorted(groups.items()):
            lines += [f'[{group}]', *aliases, '']
        if common_args:
            lines += ['[all:vars]', f'ansible_ssh_common_args={json.dumps(common_args)}', '']
        return text_format.check_finished_text('\n'.join(lines), 'The inventory')
    # YAML, written as JSON: a subset of YAML every Ansible reads, and no YAML library needed here.
    inventory = {'all': {'children': {group: {'hosts': {alias: {} for alias in aliases}}
                                      for group, aliases in sorted(groups.items())}}}
    if common_args:
        inventory['all']['vars'] = {'ansible_ssh_common_args': common_args}
    return text_format.check_finished_text('# Ansible inventory written by `az network bastion ssh-config` (YAML).\n'
                                           + json.dumps(inventory, indent=2) + '\n', 'The inventory')


@dataclass(frozen=True)
class BlockOptions:  # pylint: disable=too-many-instance-attributes
    """What every block of one run shares; ``tag`` names the set (host and scope) for --prune."""
    resource_group: str
    name: str
    port: int
    username: Optional[str]
    key_path: Optional[str]
    subscription: Optional[str]
    no_agent: bool
    tag: str
    command_name: str
    certificate_path: Optional[str] = None     # --auth-type aad: the Entra certificate, and what renews it
    refresh: Optional[List[str]] = None


def unwritable(name, resource_group, vm_id, admin_username):
    """Why a VM's values from ARM cannot go into ssh_config at all (a control character), or None."""
    bad = [what for what, value in (('name', name), ('resource group', resource_group), ('ID', vm_id),
                                    ('admin user', admin_username)) if has_control_character(value)]
    if not bad:
        return None
    return (f"its {' and '.join(bad)} from ARM holds a control character (a line break would start ssh options of "
            'its own): nothing of it is written')


def fleet_blocks(aliases, options: BlockOptions, plan=None):
    """({alias: block}, [(alias, FleetVm)], [Skipped]): a VM whose values cannot be written is skipped with its
    reason. ``plan(vm)``: what the proxy would refuse for it (native client on, the port), raised."""
    from azext_bastion_native.clients.ssh import host_key_alias
    blocks, entries, skipped = {}, [], []
    for alias, vm in aliases.items():
        refused = unwritable(vm.name, vm.resource_group, vm.id, vm.admin_username)
        if refused:
            skipped.append(Skipped(vm.name, refused, vm.resource_group, vm.id))
            continue
        if plan is not None:
            plan(vm)
        proxy = proxy_command_argv(options.resource_group, options.name, vm.id, options.port,
                                   options.subscription, options.no_agent)
        try:
            blocks[alias] = text_format.render_block(
                alias, proxy, username=options.username or vm.admin_username, key_path=options.key_path,
                host_key_alias=host_key_alias(vm.id), tag=options.tag, port=options.port,
                certificate_path=options.certificate_path, refresh=options.refresh,
                comment=f'Written by `az {options.command_name}`: {vm.name} in resource group {vm.resource_group} '
                        f'through Bastion host {options.name} (resource group {options.resource_group}).')
        except SshConfigError as err:
            skipped.append(Skipped(vm.name, f'it cannot be written to ssh_config: {err.message}', vm.resource_group,
                                   vm.id))
            continue
        entries.append((alias, vm))
    return blocks, entries, skipped


def write_fleet(config_file, fleet, options: BlockOptions, prune, existing_ids=(), plan=None):
    """Under the config's lock: aliases (by the config's own blocks), the blocks written (ours replaced in place)
    and, with ``prune``, this set's blocks taken out whose VM is gone (not one merely skipped this time: its ID
    is in ``existing_ids``). Returns (real path, summary, [(alias, FleetVm)], [Skipped])."""
    from azext_bastion_native.clients.ssh import host_key_alias
    outcome: dict = {}

    def edit(current):
        blocks, entries, skipped = fleet_blocks(assign_aliases(fleet, existing_owners(current)), options, plan)
        staying = {host_key_alias(vm_id) for vm_id in existing_ids} | {host_key_alias(vm.id) for _, vm in entries}
        owners = existing_owners(current)
        gone = [alias for alias in text_format.tagged_aliases(current, options.tag)
                if alias not in blocks and owners.get(alias) not in staying] if prune else []
        merged, replaced = text_format.merge_blocks(current, blocks, overwrite=True, remove=gone)
        outcome.update(entries=entries, skipped=skipped,
                       summary={'added': sorted(set(blocks) - set(replaced)), 'updated': sorted(replaced),
                                'pruned': sorted(gone)})
        return merged, blocks, None

    path, _ = edit_config(config_file, edit)
    return path, outcome['summary'], outcome['entries'], outcome['skipped']
