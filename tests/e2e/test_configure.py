"""Issue 4 end to end: deploy with native client, turn it on/off, list and end sessions, with the real `az`
against the emulator. Refused cases assert that the host (or the absence of one) is unchanged afterwards."""

import pytest

from tests.e2e.arrange import RG, bastion_requests, make_public_ip, make_vnet, refused, unique

pytestmark = pytest.mark.e2e


def _arm_fault(emulator, method, path_contains, status, count=1, headers=None):
    emulator.post('/_emulator/arm-faults', json={'method': method, 'path_contains': path_contains, 'status': status,
                                                 'count': count, 'headers': headers or {}}).raise_for_status()


@pytest.fixture
def basic_host(network, az):
    """A Basic host of its own (native client off), deployed through the real create command."""
    name = unique('basic')
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
       '--public-ip-address', name + '-ip', '--sku', 'Basic')
    return name


def test_create_defaults_to_standard_with_native_client_then_show_list_delete(network, az, emulator):
    name = unique('bst')
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    created = az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
                 '--public-ip-address', name + '-ip', '--tags', 'team=ops').json
    assert created['sku']['name'] == 'Standard'
    assert created['enableTunneling'] is True
    assert created['provisioningState'] == 'Succeeded'
    assert created['tags'] == {'team': 'ops'}
    assert created['ipConfigurations'][0]['subnet']['id'].endswith(f'{name}-vnet/subnets/AzureBastionSubnet')

    table = az('network', 'bastion', 'show', '-g', RG, '-n', name, '-o', 'table').stdout
    assert name in table and 'Standard' in table and ' on ' in f' {table} '
    assert name in az('network', 'bastion', 'list', '-g', RG, '--query', '[].name').json
    assert name in az('network', 'bastion', 'list', '--query', '[].name').json

    az('network', 'bastion', 'delete', '-g', RG, '-n', name, '--yes')
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), f"'{name}'", 'not found')


@pytest.mark.parametrize('case', ['no-subnet', 'small-subnet', 'basic-ip', 'dynamic-ip', 'no-vnet', 'no-ip',
                                  'basic-tunneling', 'scale-units', 'bad-vnet-id'])
def test_create_refuses_bad_prerequisites_before_writing(network, az, emulator, case):
    name = unique('bad')
    vnet, pip = name + '-vnet', name + '-ip'
    extra = []
    expect = []
    if case == 'no-subnet':
        make_vnet(network, vnet, bastion_prefix=None)
        make_public_ip(network, pip)
        expect = ['AzureBastionSubnet', 'az network vnet subnet create']
    elif case == 'small-subnet':
        make_vnet(network, vnet, bastion_prefix='10.9.1.0/27')
        make_public_ip(network, pip)
        expect = ['/26 or larger']
    elif case in ('basic-ip', 'dynamic-ip'):
        make_vnet(network, vnet)
        if case == 'basic-ip':
            make_public_ip(network, pip, sku='Basic', allocation='Static')
        else:
            make_public_ip(network, pip, sku='Basic', allocation='Dynamic')
        expect = ['Standard SKU and Static']
    elif case == 'no-vnet':
        make_public_ip(network, pip)
        expect = [f"Virtual network '{vnet}'", 'not found', 'az network vnet create']
    elif case == 'no-ip':
        make_vnet(network, vnet)
        expect = [f"Public IP address '{pip}'", 'not found']
    elif case == 'basic-tunneling':
        extra = ['--sku', 'Basic', '--enable-tunneling', 'true']
        expect = ['--enable-tunneling', 'Standard or Premium']
    elif case == 'scale-units':
        extra = ['--scale-units', '60']
        expect = ['2-50']
    elif case == 'bad-vnet-id':
        vnet = '/subscriptions/not-a-valid/id'
        expect = ['valid resource ID']
    result = az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', vnet,
                '--public-ip-address', pip, *extra, check=False)
    refused(result, *expect)
    assert bastion_requests(emulator, name) == []
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), 'not found')


def test_native_client_show_lists_this_clients_methods(az):
    shown = az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'demo-bastion').json
    assert shown['sku'] == 'Standard' and shown['enableTunneling'] is True and shown['nativeClient'] == 'on'
    assert shown['clientOs'] == 'linux'
    methods = {(m['targetOs'], m['method']) for m in shown['methods']}
    assert ('linux', 'ssh') in methods and ('any', 'tunnel') in methods
    ssh = next(m for m in shown['methods'] if m['method'] == 'ssh' and m['targetOs'] == 'linux')
    assert ssh['entraAuth'] is True and ssh['fileTransfer'] is False
    table = az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'demo-bastion', '-o', 'table').stdout
    assert 'tunnel' in table and 'ssh' in table


def test_enable_on_an_enabled_host_writes_nothing(az, emulator):
    result = az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', 'demo-bastion')
    assert 'already enabled' in result.stderr
    assert bastion_requests(emulator, 'demo-bastion') == []


def test_basic_host_needs_upgrade_sku_and_confirmation(basic_host, az, emulator):
    before = az('network', 'bastion', 'show', '-g', RG, '-n', basic_host).json
    refused(az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, check=False),
            'Basic SKU', '--upgrade-sku')
    # No terminal to ask on and no --yes: refused, not assumed.
    refused(az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--upgrade-sku',
               check=False), '--yes')
    after = az('network', 'bastion', 'show', '-g', RG, '-n', basic_host).json
    unchanged = ('sku', 'enableTunneling', 'etag')
    assert [after[key] for key in unchanged] == [before[key] for key in unchanged]

    upgraded = az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--upgrade-sku',
                  '--enable-ip-connect', '--yes').json
    assert upgraded['sku']['name'] == 'Standard'
    assert upgraded['enableTunneling'] is True and upgraded['enableIpConnect'] is True
    puts = [r for r in bastion_requests(emulator, basic_host) if r['method'] == 'PUT']
    assert puts and puts[-1].get('if_match') == before['etag']


def test_disable_then_no_wait_enable_then_wait(basic_host, az):
    az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--upgrade-sku', '--yes')
    off = az('network', 'bastion', 'native-client', 'disable', '-g', RG, '-n', basic_host, '--yes').json
    assert off['enableTunneling'] is False and off['sku']['name'] == 'Standard'   # never downgraded
    assert az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--no-wait').stdout == ''
    az('network', 'bastion', 'wait', '-g', RG, '-n', basic_host, '--updated', '--timeout', '60')
    shown = az('network', 'bastion', 'show', '-g', RG, '-n', basic_host).json
    assert shown['enableTunneling'] is True and shown['provisioningState'] == 'Succeeded'


@pytest.mark.parametrize('status, phrase', [(412, 'changed by someone else'), (409, 'busy')])
def test_conflicting_writes_are_reported_and_change_nothing(basic_host, az, emulator, status, phrase):
    before = az('network', 'bastion', 'show', '-g', RG, '-n', basic_host).json
    _arm_fault(emulator, 'PUT', f'/bastionHosts/{basic_host}', status)
    refused(az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--upgrade-sku',
               '--yes', check=False), phrase)
    after = az('network', 'bastion', 'show', '-g', RG, '-n', basic_host).json
    assert (after['sku'], after['enableTunneling']) == (before['sku'], before['enableTunneling'])


def test_throttled_write_is_retried_after_retry_after(basic_host, az, emulator):
    _arm_fault(emulator, 'PUT', f'/bastionHosts/{basic_host}', 429, headers={'Retry-After': '1'})
    done = az('network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', basic_host, '--upgrade-sku',
              '--yes').json
    assert done['enableTunneling'] is True
    puts = [r for r in bastion_requests(emulator, basic_host) if r['method'] == 'PUT']
    assert len(puts) >= 2      # the throttled one and its retry


def test_unknown_host_and_bad_ids_are_clear_errors(az):
    refused(az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'no-such-bastion', check=False),
            "Bastion host 'no-such-bastion'", 'not found')
    refused(az('network', 'bastion', 'show', '--ids', '/subscriptions/x/not/an/id', check=False))
    refused(az('network', 'bastion', 'native-client', 'disable', '-g', 'no-such-rg', '-n', 'x', '--yes',
               check=False), 'not found')


def test_session_list_and_disconnect(az, emulator):
    import requests
    host = az('network', 'bastion', 'show', '-g', RG, '-n', 'demo-bastion').json
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    token = az('account', 'get-access-token', '--query', 'accessToken', '-o', 'tsv').stdout.strip()
    # A session as a native client opens it (mint only; the websocket is not needed for it to be listed).
    minted = requests.post(f"https://{host['dnsName']}/api/tokens", verify=emulator.ca_bundle, timeout=10, data={
        'resourceId': vm_id, 'protocol': 'tcptunnel', 'workloadHostPort': '22', 'aztoken': token})
    minted.raise_for_status()

    sessions = az('network', 'bastion', 'session', 'list', '-g', RG, '-n', 'demo-bastion').json
    mine = [s for s in sessions if s['targetResourceId'].lower() == vm_id.lower()]
    assert mine, sessions
    table = az('network', 'bastion', 'session', 'list', '-g', RG, '-n', 'demo-bastion', '-o', 'table').stdout
    assert mine[0]['sessionId'] in table

    ended = az('network', 'bastion', 'session', 'disconnect', '-g', RG, '-n', 'demo-bastion',
               '--session-ids', mine[0]['sessionId']).json
    assert [e['sessionId'] for e in ended] == [mine[0]['sessionId']]
    left = az('network', 'bastion', 'session', 'list', '-g', RG, '-n', 'demo-bastion', '--query', '[].sessionId').json
    assert mine[0]['sessionId'] not in left


def test_debug_output_carries_no_token(az, emulator):
    """--debug logs every ARM request and response; none of the tokens the emulator issued may show."""
    outputs = [az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'demo-bastion', '--debug'),
               az('network', 'bastion', 'session', 'list', '-g', RG, '-n', 'demo-bastion', '--debug')]
    secrets = emulator.get('secrets').json()['secrets']
    assert secrets       # the emulator did issue tokens for these calls
    for result in outputs:
        assert 'Authorization' in result.stderr or 'Request headers' in result.stderr   # the debug log is there
        leaked = [s for s in secrets if s in result.stdout or s in result.stderr]
        assert leaked == []
