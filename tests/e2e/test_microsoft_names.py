"""Scripts written for Microsoft's `bastion` extension run unchanged: its flag names parse beside ours and do the
same (src/bastion/azext_bastion/aaz/latest/network/bastion/_create.py, _update.py, _delete.py, _show.py, _wait.py
at api-version 2024-01-01), and its generic --set cannot go around the SKU rules."""

import json

import pytest

from tests.e2e.arrange import RG, bastion_requests, make_public_ip, make_vnet, refused, unique

pytestmark = pytest.mark.e2e


def _create(az, network, name, *extra):
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    return az('network', 'bastion', 'create', '-g', RG, '--bastion-host-name', name, '--vnet-name', name + '-vnet',
              '--public-ip-address', name + '-ip', *extra)


def _last_put(emulator, name):
    return json.loads(bastion_requests(emulator, name, methods=('PUT',))[-1]['body'])


def test_their_names_on_create_show_update_wait_and_delete(az, network, emulator):
    name = unique('theirs')
    created = _create(az, network, name, '--sku', 'Premium', '--enable-shareable-link', 'true',
                      '--enable-session-recording', 'true').json
    assert created['enableShareableLink'] is True and created['enableSessionRecording'] is True
    sent = _last_put(emulator, name)['properties']
    assert sent['enableShareableLink'] is True and sent['enableSessionRecording'] is True

    assert az('network', 'bastion', 'show', '-g', RG, '--bastion-host-name', name).json['name'] == name
    updated = az('network', 'bastion', 'update', '-g', RG, '--bastion-host-name', name,
                 '--enable-shareable-link', 'false', '--enable-session-recording', 'false').json
    assert updated['enableShareableLink'] is False and updated['enableSessionRecording'] is False
    az('network', 'bastion', 'wait', '-g', RG, '--bastion-host-name', name, '--updated', '--interval', '1',
       '--timeout', '60')
    az('network', 'bastion', 'delete', '-g', RG, '--bastion-host-name', name, '--yes')
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), 'not found')


@pytest.mark.parametrize('sku_args', [['--sku', 'name=Premium'], ['--sku.name', 'Premium'],
                                      ['--sku', '{name:Premium}'], ['--sku', 'Premium']])
def test_update_sku_in_their_object_form_and_ours(az, network, emulator, sku_args):
    name = unique('skuform')
    _create(az, network, name)
    updated = az('network', 'bastion', 'update', '-g', RG, '-n', name, *sku_args).json
    assert updated['sku']['name'] == 'Premium'
    assert _last_put(emulator, name)['sku'] == {'name': 'Premium'}


def test_update_sku_object_form_keeps_the_downgrade_rule(az, network, emulator):
    name = unique('skudown')
    _create(az, network, name, '--sku', 'Premium')
    puts = len(bastion_requests(emulator, name, methods=('PUT',)))
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--sku', 'name=Standard', check=False),
            'does not downgrade')
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--sku', 'name=Huge', check=False), 'Huge')
    assert len(bastion_requests(emulator, name, methods=('PUT',))) == puts


@pytest.mark.parametrize('setting, phrases', [
    (['--set', 'sku.name=Basic'], ['does not downgrade']),
    (['--set', 'sku.name=Developer'], ['does not downgrade']),
    (['--set', 'enableSessionRecording=true'], ['--session-recording', '--sku Premium']),
    (['--set', 'scaleUnits=51'], ['2-50']),
])
def test_generic_set_goes_through_the_sku_rules(az, network, emulator, setting, phrases):
    name = unique('setrule')
    _create(az, network, name)
    puts = len(bastion_requests(emulator, name, methods=('PUT',)))
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, *setting, check=False), *phrases)
    assert len(bastion_requests(emulator, name, methods=('PUT',))) == puts      # nothing was written
    assert az('network', 'bastion', 'show', '-g', RG, '-n', name).json['sku']['name'] == 'Standard'


def test_generic_set_of_an_allowed_change_is_written(az, network, emulator):
    name = unique('setok')
    _create(az, network, name)
    updated = az('network', 'bastion', 'update', '-g', RG, '-n', name, '--set', 'sku.name=premium',
                 'enableSessionRecording=true').json
    assert updated['sku']['name'] == 'Premium' and updated['enableSessionRecording'] is True


def test_update_network_acls_on_a_developer_host(az, network, emulator):
    name = unique('devacl')
    make_vnet(network, name + '-vnet', bastion_prefix=None)
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet', '--sku', 'Developer')
    updated = az('network', 'bastion', 'update', '-g', RG, '-n', name,
                 '--network-acls', '{ip-rules:[{address-prefix:203.0.113.0/24},{address-prefix:198.51.100.7}]}').json
    assert updated['networkAcls'] == {'ipRules': [{'addressPrefix': '203.0.113.0/24'},
                                                  {'addressPrefix': '198.51.100.7'}]}
    assert _last_put(emulator, name)['properties']['networkAcls']['ipRules'][0] == {'addressPrefix': '203.0.113.0/24'}
    cleared = az('network', 'bastion', 'update', '-g', RG, '-n', name, '--network-acls', '{"ipRules": []}').json
    assert not (cleared.get('networkAcls') or {}).get('ipRules')

    puts = len(bastion_requests(emulator, name, methods=('PUT',)))
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--network-acls',
               '{ip-rules:[{address-prefix:\'2001:db8::/64\'}]}', check=False), 'IPv4')
    assert len(bastion_requests(emulator, name, methods=('PUT',))) == puts


def test_network_acls_are_refused_on_a_standard_host(az, network, emulator):
    name = unique('stdacl')
    _create(az, network, name)
    puts = len(bastion_requests(emulator, name, methods=('PUT',)))
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--network-acls',
               '{ip-rules:[{address-prefix:203.0.113.0/24}]}', check=False), 'Developer hosts only')
    assert len(bastion_requests(emulator, name, methods=('PUT',))) == puts
