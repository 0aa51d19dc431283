"""connect/fleet.py: aliases for clashing VM names, the inventory as the real ansible-inventory reads it, blocks of a
set found again for --prune, the scope options' refusals."""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import MutuallyExclusiveArgumentError, RequiredArgumentMissingError

from azext_bastion_native.connect import fleet, ssh_config

SUB = '/subscriptions/S1/resourceGroups/'
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')


def _vm(name, group, os_name='linux'):
    return fleet.FleetVm(name, group, f'{SUB}{group}/providers/Microsoft.Compute/virtualMachines/{name}', os_name,
                         'azureuser', None)


def test_aliases_are_vm_names_and_every_clashing_name_gets_its_resource_group():
    aliases = fleet.assign_aliases([_vm('web-1', 'rg-a'), _vm('Web-1', 'rg(b)'), _vm('db', 'rg-a')])
    assert sorted(aliases) == ['Web-1-rg-b-', 'db', 'web-1-rg-a']
    for alias in aliases:
        ssh_config.check_alias(alias)


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
        assert listed['_meta']['hostvars'][host]['ansible_ssh_common_args'] == f"-F {tmp_path / 'my config'}"


def test_inventory_for_the_default_config_needs_no_ssh_args(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    text = fleet.render_inventory([('web-1', _vm('web-1', 'rg'))], 'yaml', str(tmp_path / '.ssh' / 'config'))
    assert 'ansible_ssh_common_args' not in text


def test_blocks_of_a_set_are_found_again_and_pruned_leaving_the_rest():
    proxy = ['az', 'network', 'bastion', 'proxy']
    mine = 'Host mine\n    Port 2222\n'
    text, _ = ssh_config.merge_blocks(mine, {
        'web-1': ssh_config.render_block('web-1', proxy, tag='rg/bh/fleet-rg'),
        'web-2': ssh_config.render_block('web-2', proxy, tag='rg/bh/fleet-rg'),
        'single': ssh_config.render_block('single', proxy)})
    assert ssh_config.tagged_aliases(text, 'rg/bh/fleet-rg') == ['web-1', 'web-2']
    pruned, _ = ssh_config.merge_blocks(text, {}, remove=['web-2'])
    assert 'web-2' not in pruned and 'Host web-1' in pruned and 'Host single' in pruned
    assert pruned.startswith(mine)


def test_host_vnet_from_the_bastion_subnet_or_a_developer_hosts_network():
    subnet = SimpleNamespace(id=f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/VNet/subnets/AzureBastionSubnet')
    assert fleet.host_vnet(SimpleNamespace(ip_configurations=[SimpleNamespace(subnet=subnet)])) == \
        f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/VNet'.lower()
    developer = SimpleNamespace(ip_configurations=None, virtual_network=SimpleNamespace(id=f'{SUB}rg/x/DevNet'))
    assert fleet.host_vnet(developer) == f'{SUB}rg/x/DevNet'.lower()


@pytest.mark.parametrize('options, error, words', [
    ({}, RequiredArgumentMissingError, '--all'),
    ({'target_resource_id': 'x', 'all_vms': True}, MutuallyExclusiveArgumentError, '--target-resource-id and --all'),
    ({'target_resource_id': 'x', 'prune': True}, MutuallyExclusiveArgumentError, '--prune'),
    ({'vm_resource_group': 'rg', 'host_alias': 'a'}, MutuallyExclusiveArgumentError, '--host-alias'),
])
def test_scope_options_refused_before_any_request(offline, options, error, words):
    with pytest.raises(error, match=words):
        ssh_config.ssh_config_command(SimpleNamespace(cli_ctx=None), 'rg', 'bh', **options)


def test_prune_or_inventory_without_a_file_refused_before_any_request(offline):
    for options in ({'prune': True}, {'inventory': 'inv.yml'}):
        with pytest.raises(RequiredArgumentMissingError, match='--file'):
            ssh_config.ssh_config_command(SimpleNamespace(cli_ctx=None), 'rg', 'bh', vm_resource_group='rg',
                                          **options)


def test_reachable_networks_are_the_hosts_and_its_connected_peerings():
    vnet = f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/hub'

    def peering(name, state):
        return SimpleNamespace(peering_state=state, remote_virtual_network=SimpleNamespace(
            id=f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/{name}'))
    hub = SimpleNamespace(virtual_network_peerings=[peering('Spoke1', 'Connected'), peering('spoke2', 'Initiated'),
                                                    peering('spoke3', 'Disconnected')])
    network = SimpleNamespace(virtual_networks=SimpleNamespace(get=lambda group, name: hub))
    assert fleet.reachable_vnets(network, vnet.lower()) == {
        vnet.lower(), f'{SUB}rg/providers/Microsoft.Network/virtualNetworks/spoke1'.lower()}
