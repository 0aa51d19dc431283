"""Managing hosts as scripts do: `wait` after `--no-wait`, and the api-version every Microsoft.Network request
carries (pinned; a cloud that does not serve it gets a typed error naming it)."""

import subprocess
import time

import pytest

from tests.e2e.arrange import RG, bastion_requests, make_public_ip, make_vnet, peer_networks, refused, unique

pytestmark = pytest.mark.e2e

PINNED_VERSION = '2024-05-01'


def _create(az, network, name, *extra):
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    return az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
              '--public-ip-address', name + '-ip', *extra)


def test_wait_deleted_after_delete_no_wait_returns_0(az, network):
    name = unique('gone')
    _create(az, network, name)
    assert az('network', 'bastion', 'delete', '-g', RG, '-n', name, '--yes', '--no-wait').returncode == 0
    waited = az('network', 'bastion', 'wait', '-g', RG, '-n', name, '--deleted', '--interval', '1',
                '--timeout', '60', check=False)
    assert waited.returncode == 0, waited.stderr
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), 'not found')


def test_wait_exists_polls_until_the_host_appears(az, network, emulator):
    name = unique('soon')
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    waiting = subprocess.Popen(  # pylint: disable=consider-using-with
        [az.executable, 'network', 'bastion', 'wait', '-g', RG, '-n', name, '--exists', '--interval', '1',
         '--timeout', '90'], env=az.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not bastion_requests(emulator, name, methods=('GET',)):    # its first look found nothing
            assert waiting.poll() is None, waiting.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.5)
        assert waiting.poll() is None, waiting.communicate()    # still polling, not failed on the 404
        _create(az, network, name, '--no-wait')
        _, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err


def test_wait_updated_on_a_missing_host_still_fails_clearly(az):
    result = az('network', 'bastion', 'wait', '-g', RG, '-n', 'no-such-host', '--updated', '--interval', '1',
                '--timeout', '5', check=False)
    refused(result, 'no-such-host')


def test_every_network_request_carries_the_pinned_api_version(az, network, emulator):
    name = unique('pin')
    make_vnet(network, name + '-vnet')          # arranged with the SDK's own default version: not counted
    make_public_ip(network, name + '-ip')
    emulator.delete('/_emulator/requests')
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
       '--public-ip-address', name + '-ip')     # GET vnet, GET public IP, PUT host, the LRO polls
    az('network', 'bastion', 'show', '-g', RG, '-n', name)
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests']
            if 'microsoft.network' in r['path'].lower() and 'api-version=' in r['query']
            and r['listener'] == 'main']
    mine = [r for r in seen if name in r['path']]
    assert {r['method'] for r in mine} >= {'GET', 'PUT'}
    assert any('/operations/' in r['path'] for r in seen)          # the long-running operation's polls too
    versions = {r['query'].split('api-version=')[1].split('&')[0] for r in seen}
    assert versions == {PINNED_VERSION}, versions


def test_a_cloud_without_the_pinned_version_gets_a_typed_error(az, emulator):
    emulator.post('/_emulator/api-versions', json={'namespace': 'microsoft.network',
                                                   'withdraw': [PINNED_VERSION]}).raise_for_status()
    try:
        result = az('network', 'bastion', 'show', '-g', RG, '-n', 'demo-bastion', check=False)
    finally:
        emulator.delete('/_emulator/api-versions').raise_for_status()
    refused(result, PINNED_VERSION, 'NoRegisteredProviderFound', 'az cloud show')
    assert result.stdout == ''


# -- create and update: every option of Microsoft's `bastion` extension, the SKU rules first ---------------------
def _last_put_body(emulator, name):
    import json
    puts = bastion_requests(emulator, name, methods=('PUT',))
    return json.loads(puts[-1]['body'])


def test_create_developer_sends_the_virtual_network_and_no_ip_configuration(az, network, emulator):
    name = unique('dev')
    make_vnet(network, name + '-vnet', bastion_prefix=None)      # no AzureBastionSubnet, no public IP
    created = az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
                 '--sku', 'Developer').json
    assert created['sku']['name'] == 'Developer' and created['provisioningState'] == 'Succeeded'
    sent = _last_put_body(emulator, name)
    assert sent['properties']['virtualNetwork']['id'].endswith(f'/virtualNetworks/{name}-vnet')
    assert sent['properties'].get('ipConfigurations') in (None, [])
    assert not [key for key in sent['properties'] if key.startswith(('enable', 'disable'))]

    make_public_ip(network, name + '-ip')
    refused(az('network', 'bastion', 'create', '-g', RG, '-n', name + '2', '--vnet-name', name + '-vnet',
               '--sku', 'Developer', '--public-ip-address', name + '-ip', check=False),
            '--public-ip-address', 'Developer')
    assert bastion_requests(emulator, name + '2') == []


def test_create_premium_with_every_option(az, network, emulator):
    name = unique('prem')
    created = _create(az, network, name, '--sku', 'Premium', '--scale-units', '4', '--enable-ip-connect', 'true',
                      '--file-copy', 'true', '--disable-copy-paste', 'true', '--enable-kerberos', 'true',
                      '--shareable-link', 'true', '--session-recording', 'true', '--zones', '1', '2',
                      '--tags', 'team=ops').json
    assert created['sku']['name'] == 'Premium' and created['scaleUnits'] == 4
    for prop in ('enableTunneling', 'enableIpConnect', 'enableFileCopy', 'disableCopyPaste', 'enableKerberos',
                 'enableShareableLink', 'enableSessionRecording'):
        assert created[prop] is True, prop
    assert created['enablePrivateOnlyBastion'] is False
    assert created['zones'] == ['1', '2'] and created['tags'] == {'team': 'ops'}


def test_create_private_only_premium_has_no_public_ip(az, network, emulator):
    name = unique('priv')
    make_vnet(network, name + '-vnet')
    created = az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
                 '--sku', 'Premium', '--private-only', 'true').json
    assert created['enablePrivateOnlyBastion'] is True
    config = _last_put_body(emulator, name)['properties']['ipConfigurations'][0]['properties']
    assert config['subnet']['id'].endswith('/subnets/AzureBastionSubnet') and 'publicIPAddress' not in config


@pytest.mark.parametrize('sku, extra, phrases', [
    ('Basic', ['--file-copy', 'true'], ['--file-copy', 'Basic', '--sku Standard']),
    ('Basic', ['--disable-copy-paste', 'true'], ['--disable-copy-paste', '--sku Standard']),
    ('Standard', ['--session-recording', 'true'], ['--session-recording', '--sku Premium']),
    ('Standard', ['--private-only', 'true'], ['--private-only', '--sku Premium']),
    ('Developer', ['--enable-kerberos', 'true'], ['--enable-kerberos', '--sku Basic']),
    ('Developer', ['--zones', '1'], ['--zones']),
    ('Basic', ['--scale-units', '3'], ['--scale-units', 'Standard or Premium']),
    ('Premium', ['--scale-units', '51'], ['2-50']),
    ('Standard', ['--no-ip'], ['--public-ip-address is required']),
    ('Premium', ['--private-only', 'true'], ['--private-only and --public-ip-address']),
])
def test_sku_rules_are_checked_before_anything_is_sent(az, network, emulator, sku, extra, phrases):
    name = unique('rule')
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    ip = [] if extra == ['--no-ip'] or sku == 'Developer' else ['--public-ip-address', name + '-ip']
    extra = [] if extra == ['--no-ip'] else extra
    result = az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet', *ip,
                '--sku', sku, *extra, check=False)
    refused(result, *phrases)
    assert bastion_requests(emulator, name) == []


def test_update_changes_only_what_is_asked_and_keeps_the_sku_rules(az, network, emulator):
    name = unique('upd')
    _create(az, network, name, '--sku', 'Basic')
    before = az('network', 'bastion', 'show', '-g', RG, '-n', name).json
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--enable-tunneling', 'true', check=False),
            '--enable-tunneling', '--sku Standard')
    refused(az('network', 'bastion', 'update', '-g', RG, '-n', name, '--sku', 'Developer', check=False),
            'does not downgrade')
    assert az('network', 'bastion', 'show', '-g', RG, '-n', name).json['etag'] == before['etag']

    updated = az('network', 'bastion', 'update', '-g', RG, '-n', name, '--sku', 'Standard', '--enable-tunneling',
                 'true', '--scale-units', '3', '--set', 'tags.env=test').json
    assert updated['sku']['name'] == 'Standard' and updated['enableTunneling'] is True
    assert updated['scaleUnits'] == 3 and updated['tags'] == {'env': 'test'}
    assert updated['enableIpConnect'] is False                   # not asked: unchanged
    put = bastion_requests(emulator, name, methods=('PUT',))[-1]
    assert put.get('if_match') == before['etag']                 # written only over what was read

    table = az('network', 'bastion', 'update', '-g', RG, '-n', name, '--enable-ip-connect', 'true',
               '-o', 'table').stdout
    header = table.splitlines()[0].split()
    assert header == ['Name', 'ResourceGroup', 'Location', 'Sku', 'NativeClient', 'IpConnect', 'ProvisioningState']
    assert 'Standard' in table and table.count(' on ') >= 1


def test_create_table_shows_what_matters(az, network):
    name = unique('tbl')
    table = _create(az, network, name, '--enable-ip-connect', 'true', '-o', 'table').stdout
    lines = table.splitlines()
    assert lines[0].split() == ['Name', 'ResourceGroup', 'Location', 'Sku', 'NativeClient', 'IpConnect',
                                'ProvisioningState']
    assert lines[2].split() == [name, RG, 'westeurope', 'Standard', 'on', 'on', 'Succeeded']


def test_native_client_show_table_has_ip_connect_and_file_copy(az):
    table = az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'demo-bastion', '-o', 'table').stdout
    header = table.splitlines()[0].split()
    assert 'IpConnect' in header and 'FileCopy' in header
    shown = az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'demo-bastion').json
    first = dict(zip(header, table.splitlines()[2].split()))
    assert first['IpConnect'] == ('on' if shown['enableIpConnect'] else 'off')
    assert first['FileCopy'] == ('on' if shown['enableFileCopy'] else 'off')


def test_a_created_developer_host_carries_a_tunnel(az, az_env, network, emulator, sshd_linux_vm):
    """The host create --sku Developer made is one native client reaches VMs through (its /api/connection), on the
    SSH port: Developer has no custom ports."""
    import socket
    from tests.e2e.tunnel_helpers import RunningTunnel
    name = unique('devtun')
    make_vnet(network, name + '-vnet', bastion_prefix=None)
    peer_networks(network, name + '-vnet', 'demo-vnet')         # linux-vm's network: reached only when peered
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet', '--sku', 'Developer')
    tunnel = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                           '--timeout', 30, host=name)
    try:
        with socket.create_connection((tunnel.address, tunnel.port), timeout=20) as conn:
            conn.settimeout(20)
            assert conn.recv(64).startswith(b'SSH-2.0-')            # the VM's sshd answered through the host
    finally:
        tunnel.stop()


def test_delete_without_a_terminal_refuses_unless_yes_as_azure_cli_does(az, network, emulator):
    """Microsoft's delete is registered with confirmation= (_delete.py): no terminal and no --yes refuses, so a
    script that forgot --yes deletes nothing; with --yes it deletes."""
    name = unique('script-del')
    _create(az, network, name)
    kept = az('network', 'bastion', 'delete', '-g', RG, '-n', name, input='', check=False)
    refused(kept, 'Use --yes', 'Operation cancelled')
    assert kept.stdout == ''
    assert bastion_requests(emulator, name, methods=('DELETE',)) == []
    assert az('network', 'bastion', 'show', '-g', RG, '-n', name).json['name'] == name

    assert az('network', 'bastion', 'delete', '-g', RG, '-n', name, '--yes').returncode == 0
    assert bastion_requests(emulator, name, methods=('DELETE',))
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), 'not found')


# -- what a scripting admin trips over: wait that times out, several deletes, names -----------------------------
@pytest.mark.parametrize('condition, host', [('--exists', 'never-there'), ('--created', 'never-there'),
                                             ('--deleted', 'demo-bastion')])
def test_wait_that_times_out_fails_with_a_clear_message(az, condition, host):
    result = az('network', 'bastion', 'wait', '-g', RG, '-n', host, condition, '--interval', '1', '--timeout', '3',
                check=False)
    refused(result, 'timed-out after 3 seconds', 'did not reach the condition', '--timeout')
    assert result.stdout.strip() == ''


def test_delete_of_several_ids_no_wait_prints_nothing_as_one_delete_does(az, network, emulator):
    names = [unique('multi-del') for _ in range(2)]
    ids = [_create(az, network, name).json['id'] for name in names]
    result = az('network', 'bastion', 'delete', '--ids', *ids, '--yes', '--no-wait')
    assert result.stdout.strip() == '', result.stdout
    for name in names:
        assert bastion_requests(emulator, name, methods=('DELETE',))


@pytest.mark.parametrize('bad_name', ['b 5!', '-starts-with-hyphen', 'ends-with-period.', 'x' * 81])
def test_create_refuses_a_name_azure_refuses_before_anything_is_sent(az, network, emulator, bad_name):
    vnet = unique('badname') + '-vnet'
    make_vnet(network, vnet)
    emulator.delete('/_emulator/requests')
    result = az('network', 'bastion', 'create', '-g', RG, f'--name={bad_name}', '--vnet-name', vnet, '--sku',
                'Developer', check=False)
    refused(result, 'not a valid Bastion host name', '1-80 characters')
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests'] if '/providers/' in r['path']]
    assert seen == [], seen       # not even the virtual network was read


def test_a_missing_vm_resource_group_is_named_in_good_grammar(az):
    result = az('network', 'bastion', 'ssh-config', '-g', RG, '-n', 'demo-bastion', '--vm-resource-group',
                'no-such-rg', check=False)
    refused(result, "Resource group 'no-such-rg' was not found")
    assert 'virtual machines' not in result.stderr.lower().split('was not found')[0]


def test_ssh_ids_with_a_vm_id_names_the_mistake(az, emulator):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    result = az('network', 'bastion', 'ssh', '--ids', vm_id, '--target-resource-id', vm_id, '--auth-type',
                'password', check=False)
    refused(result, 'virtual machine', '--ids', '--target-resource-id')
    assert "Bastion host 'linux-vm'" not in result.stderr
