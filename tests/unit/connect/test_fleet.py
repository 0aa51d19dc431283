"""connect/fleet.py: aliases for clashing VM names (kept once written, whatever the scope), the inventory as the real
ansible-inventory reads it, blocks of a set found again for --prune, a VM whose values cannot be written skipped
without failing the run, the scope options' refusals."""
import json
import os
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import MutuallyExclusiveArgumentError, RequiredArgumentMissingError

from azext_bastion_native.clients.ssh import host_key_alias
from azext_bastion_native.connect import fleet, ssh_config, ssh_config_text as text_format
from azext_bastion_native.management.fleet_vms import FleetVm
from tests.unit.boundary import raises_as

SUB = '/subscriptions/S1/resourceGroups/'
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')


def _vm(name, group, os_name='linux'):
    return FleetVm(name, group, f'{SUB}{group}/providers/Microsoft.Compute/virtualMachines/{name}', os_name,
                   'azureuser', None)


def test_aliases_are_vm_names_and_every_clashing_name_gets_its_resource_group():
    aliases = fleet.assign_aliases([_vm('web-1', 'rg-a'), _vm('Web-1', 'rg(b)'), _vm('db', 'rg-a')])
    assert sorted(aliases) == ['Web-1-rg-b-', 'db', 'web-1-rg-a']
    for alias in aliases:
        text_format.check_alias(alias)


@pytest.mark.skipif(not os.path.exists(ANSIBLE_INVENTORY), reason='needs ansible-core (requirements-dev.txt)')
@pytest.mark.parametrize('inventory_format', ['yaml', 'ini'])
def test_inventory_as_ansible_reads_it(tmp_path, inventory_format):
    entries = [('web-1', _vm('web-1', 'Fleet-RG')), ('web-2', _vm('web-2', 'Fleet-RG')), ('db', _vm('db', 'other'))]
    path = tmp_path / f'inventory.{inventory_format}'
    path.write_text(fleet.render_inventory(entries, inventory_format, str(tmp_path / 'my config')))
    listed = json.loads(subprocess.run([ANSIBLE_INVENTORY, '-i', str(path), '--list'], capture_output=True,
                                       text=True, check=True, timeout=60).stdout)
    assert sorted(listed['linux']['hosts']) == ['db', 'web-1', 'web-2']
    assert sorted(listed['rg_fleet_rg']['hosts']) == ['web-1', 'web-2'] and listed['rg_other']['hosts'] == ['db']
    for host in ('db', 'web-1'):
        # quoted: Ansible splits ansible_ssh_common_args as a shell would
        assert listed['_meta']['hostvars'][host]['ansible_ssh_common_args'] == \
            f"-F {shlex.quote(str(tmp_path / 'my config'))}"
        assert shlex.split(listed['_meta']['hostvars'][host]['ansible_ssh_common_args']) == \
            ['-F', str(tmp_path / 'my config')]


def test_inventory_for_the_default_config_needs_no_ssh_args(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    text = fleet.render_inventory([('web-1', _vm('web-1', 'rg'))], 'yaml', str(tmp_path / '.ssh' / 'config'))
    assert 'ansible_ssh_common_args' not in text


def test_blocks_of_a_set_are_found_again_and_pruned_leaving_the_rest():
    proxy = ['az', 'network', 'bastion', 'proxy']
    mine = 'Host mine\n    Port 2222\n'
    text, _ = text_format.merge_blocks(mine, {
        'web-1': text_format.render_block('web-1', proxy, tag='rg/bh/fleet-rg'),
        'web-2': text_format.render_block('web-2', proxy, tag='rg/bh/fleet-rg'),
        'single': text_format.render_block('single', proxy)})
    assert text_format.tagged_aliases(text, 'rg/bh/fleet-rg') == ['web-1', 'web-2']
    pruned, _ = text_format.merge_blocks(text, {}, remove=['web-2'])
    assert 'web-2' not in pruned and 'Host web-1' in pruned and 'Host single' in pruned
    assert pruned.startswith(mine)


@pytest.mark.parametrize('options, error, words', [
    ({}, RequiredArgumentMissingError, '--all'),
    ({'target_resource_id': 'x', 'all_vms': True}, MutuallyExclusiveArgumentError, '--target-resource-id and --all'),
    ({'target_resource_id': 'x', 'prune': True}, MutuallyExclusiveArgumentError, '--prune'),
    ({'vm_resource_group': 'rg', 'host_alias': 'a'}, MutuallyExclusiveArgumentError, '--host-alias'),
])
def test_scope_options_refused_before_any_request(offline, options, error, words):
    with raises_as(error, match=words):
        ssh_config.ssh_config_command(SimpleNamespace(cli_ctx=None), 'rg', 'bh', **options)


def test_prune_or_inventory_without_a_file_refused_before_any_request(offline):
    for options in ({'prune': True}, {'inventory': 'inv.yml'}):
        with raises_as(RequiredArgumentMissingError, match='--file'):
            ssh_config.ssh_config_command(SimpleNamespace(cli_ctx=None), 'rg', 'bh', vm_resource_group='rg',
                                          **options)


def _written(*vms_and_aliases):
    """A config holding a block of ours for each (alias, FleetVm)."""
    return ''.join(text_format.render_block(alias, ['az'], host_key_alias=host_key_alias(vm.id))
                   for alias, vm in vms_and_aliases)


def test_an_alias_once_written_does_not_change_with_the_scope():
    mine, other = _vm('web-1', 'fleet-rg'), _vm('web-1', 'fleet-other-rg')
    # --vm-resource-group fleet-rg wrote `web-1`; --all then finds the second web-1: only the newcomer is renamed.
    assert fleet.assign_aliases([mine]) == {'web-1': mine}
    aliases = fleet.assign_aliases([other, mine], fleet.existing_owners(_written(('web-1', mine))))
    assert aliases == {'web-1': mine, 'web-1-fleet-other-rg': other}
    # --all first (both new: both renamed), then --vm-resource-group: each keeps what --all gave it.
    first = fleet.assign_aliases([other, mine])
    assert sorted(first) == ['web-1-fleet-other-rg', 'web-1-fleet-rg']
    again = fleet.assign_aliases([mine], fleet.existing_owners(_written(*((a, v) for a, v in first.items()))))
    assert again == {'web-1-fleet-rg': mine}


def test_a_name_another_vms_block_holds_is_not_taken():
    mine, elsewhere = _vm('web-1', 'fleet-rg'), _vm('web-1', 'old-rg')
    aliases = fleet.assign_aliases([mine], fleet.existing_owners(_written(('web-1', elsewhere))))
    assert aliases == {'web-1-fleet-rg': mine}


HOSTILE = 'q\\\'"\nHost *\n    ProxyCommand touch X\n#'


def _options():
    return fleet.BlockOptions('rg', 'bh', 22, None, None, None, True, 'rg/bh/fleet-rg', 'network bastion ssh-config')


def test_a_vm_with_a_control_character_from_arm_is_skipped_and_the_rest_written():
    good = _vm('web-2', 'fleet-rg')
    named = FleetVm(HOSTILE, 'fleet-rg', f'{SUB}fleet-rg/providers/Microsoft.Compute/virtualMachines/{HOSTILE}',
                    'linux', 'azureuser', None)
    user = FleetVm('web-3', 'fleet-rg', f'{SUB}fleet-rg/providers/Microsoft.Compute/virtualMachines/web-3', 'linux',
                   'admin\n    ProxyCommand touch X', None)
    blocks, entries, skipped = fleet.fleet_blocks(fleet.assign_aliases([good, named, user]), _options())
    assert list(blocks) == ['web-2'] and [alias for alias, _ in entries] == ['web-2']
    reasons = {item.vm: item.reason for item in skipped}
    assert set(reasons) == {HOSTILE, 'web-3'}
    assert 'name and ID' in reasons[HOSTILE] and 'admin user' in reasons['web-3']
    assert 'touch' not in ''.join(blocks.values())
    line = fleet.skipped_line(skipped[0])
    assert '\n' not in line and '\\x0a' in line and 'control character' in line
    assert fleet.skipped_as_dict(skipped[0])['vm'] == HOSTILE.replace('\n', '\\x0a')


def test_prune_keeps_the_block_of_a_vm_skipped_this_time(tmp_path):
    kept, gone = _vm('web-1', 'fleet-rg'), _vm('web-9', 'fleet-rg')
    config = tmp_path / 'config'
    path, summary, _, _ = fleet.write_fleet(str(config), [kept, gone], _options(), prune=False)
    assert summary['added'] == ['web-1', 'web-9']
    # web-1 is stopped now (skipped, still there); web-9 is gone.
    path, summary, _, _ = fleet.write_fleet(str(config), [], _options(), prune=True, existing_ids=[kept.id])
    assert summary['pruned'] == ['web-9']
    assert 'Host web-1\n' in config.read_text() and 'web-9' not in config.read_text()
