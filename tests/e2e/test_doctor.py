"""`az network bastion doctor` end to end: the real az against the emulator (and a real sshd behind linux-vm).

Each test reads the rows a user would (-o json; one -o table), the exit status (3 when a check fails), and that
no Bastion session is left behind. Hosts whose state a test changes are its own, never demo-bastion."""

import shlex
import uuid

import pytest

from tests.e2e.arrange import peer_networks

pytestmark = pytest.mark.e2e

RG = 'demo-rg'
BASTION = 'demo-bastion'
FAILED = 3


def _doctor(az, *args, env_extra=None):
    return az('network', 'bastion', 'doctor', '-g', RG, *args, check=False, env_extra=env_extra)


def _rows(result):
    return {row['check']: row for row in result.json}


def _sessions(emulator):
    return emulator.get('sessions').json()


@pytest.fixture(scope='module')
def own_vnet_host(network):
    """Make a host in a VNet of its own, peered with demo-vnet (so it reaches linux-vm); returns
    make(enable_tunneling, sku='Standard') -> host name."""
    from azure.mgmt.network.models import (
        AddressSpace, BastionHost, BastionHostIPConfiguration, PublicIPAddress, PublicIPAddressSku, Sku, SubResource,
        Subnet, VirtualNetwork)
    octets = iter(range(200, 250))

    def make(enable_tunneling, sku='Standard'):
        name = f'doctor-{uuid.uuid4().hex[:6]}'
        octet = next(octets)
        vnet = network.virtual_networks.begin_create_or_update(RG, name + '-vnet', VirtualNetwork(
            location='westeurope', address_space=AddressSpace(address_prefixes=[f'10.{octet}.0.0/16']),
            subnets=[Subnet(name='AzureBastionSubnet', address_prefix=f'10.{octet}.1.0/26')])).result()
        peer_networks(network, vnet.name, 'demo-vnet')
        pip = network.public_ip_addresses.begin_create_or_update(RG, name + '-ip', PublicIPAddress(
            location='westeurope', sku=PublicIPAddressSku(name='Standard'),
            public_ip_allocation_method='Static')).result()
        network.bastion_hosts.begin_create_or_update(RG, name, BastionHost(
            location='westeurope', sku=Sku(name=sku), enable_tunneling=enable_tunneling,
            ip_configurations=[BastionHostIPConfiguration(name='ipconf', subnet=SubResource(id=vnet.subnets[0].id),
                                                          public_ip_address=SubResource(id=pip.id))])).result()
        return name
    return make


def test_all_pass_on_demo_bastion_and_linux_vm_and_no_session_left(az, emulator, sshd_linux_vm):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id)
    assert result.returncode == 0, result.stderr
    rows = _rows(result)
    assert [row['check'] for row in result.json] == [
        'Cloud Shell', 'Signed in', 'Bastion host', 'Native client', 'IP connect', 'Target VM', 'Network', 'Method',
        'NSG', 'Local client', 'Data plane']
    assert {check: row['status'] for check, row in rows.items()} == {
        'Cloud Shell': 'pass', 'Signed in': 'pass', 'Bastion host': 'pass', 'Native client': 'pass',
        'IP connect': 'skip', 'Target VM': 'pass', 'Network': 'pass', 'Method': 'pass', 'NSG': 'pass',
        'Local client': 'pass', 'Data plane': 'pass'}
    assert 'Linux' in rows['Target VM']['detail']
    assert 'minted' in rows['Data plane']['detail'] and 'session deleted' in rows['Data plane']['detail']
    assert 'port 22 answered' in rows['Data plane']['detail'] and ' ms ' in rows['Data plane']['detail']
    assert _sessions(emulator) == []


def test_table_output_has_the_four_columns(az, sshd_linux_vm):
    result = az('network', 'bastion', 'doctor', '-g', RG, '-n', BASTION, '--target-resource-id',
                sshd_linux_vm.vm_id, '-o', 'table', check=False)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ['Check', 'Status', 'Detail', 'Fix']
    assert 'Data plane' in result.stdout


def test_ip_connect_on_demo_bastion_passes_and_a_custom_port_fails(az, emulator, sshd_linux_vm):
    good = _rows(_doctor(az, '-n', BASTION, '--target-ip-address', '10.0.0.4'))
    assert good['IP connect']['status'] == 'pass' and good['Data plane']['status'] == 'pass'
    bad = _doctor(az, '-n', BASTION, '--target-ip-address', '10.0.0.4', '--resource-port', '2222')
    assert bad.returncode == FAILED
    rows = _rows(bad)
    assert rows['IP connect']['status'] == 'fail' and '2222' in rows['IP connect']['detail']
    # no session is tried for a port IP connect refuses; the host is still probed with a TLS handshake
    assert rows['Data plane']['detail'].startswith('TLS handshake')
    assert 'IP connect failed' in rows['Data plane']['detail']
    assert _sessions(emulator) == []


def test_basic_host_fails_and_the_fix_upgrades_the_sku(az):
    result = _doctor(az, '-n', 'basic-bastion')
    assert result.returncode == FAILED
    rows = _rows(result)
    assert rows['Bastion host']['status'] == 'fail' and 'Basic' in rows['Bastion host']['detail']
    assert rows['Bastion host']['fix'] == \
        'az network bastion native-client enable -g demo-rg -n basic-bastion --upgrade-sku --yes'
    assert rows['Native client']['status'] == 'fail'
    assert 'check(s) failed' in result.stderr


def test_tunnelling_off_fails_with_the_enable_command(az, emulator, own_vnet_host, sshd_linux_vm):
    host = own_vnet_host(enable_tunneling=False)
    result = _doctor(az, '-n', host, '--target-resource-id', sshd_linux_vm.vm_id)
    assert result.returncode == FAILED
    rows = _rows(result)
    assert rows['Bastion host']['status'] == 'pass'
    assert rows['Native client']['status'] == 'fail'
    assert rows['Native client']['fix'] == f'az network bastion native-client enable -g demo-rg -n {host}'
    # no session is tried through a host that would refuse it; the host is still probed
    assert rows['Data plane']['status'] == 'pass' and 'Native client failed' in rows['Data plane']['detail']
    assert _sessions(emulator) == []


def test_stopped_vm_fails_with_the_start_command(az, emulator):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'stopped-vm')
    result = _doctor(az, '-n', BASTION, '--target-resource-id', vm_id)
    assert result.returncode == FAILED
    rows = _rows(result)
    assert rows['Target VM']['status'] == 'fail'
    assert rows['Target VM']['fix'] == 'az vm start -g demo-rg -n stopped-vm'
    assert rows['Bastion host']['status'] == 'pass' and rows['Native client']['status'] == 'pass'
    assert _sessions(emulator) == []


def test_cloud_shell_fails_but_every_other_check_still_runs(az, sshd_linux_vm):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id, env_extra={'ACC_CLOUD': '1'})
    assert result.returncode == FAILED
    rows = _rows(result)
    assert rows['Cloud Shell']['status'] == 'fail' and 'browser' in rows['Cloud Shell']['fix']
    assert rows['Bastion host']['status'] == 'pass' and rows['Target VM']['status'] == 'pass'
    assert rows['Data plane']['status'] == 'pass' and 'Cloud Shell failed' in rows['Data plane']['detail']


def _doctor_with_mints_answering(az, emulator, status, vm_id, count=5):
    emulator.post('faults', {'mint_status': status, 'count': count})
    try:
        return _doctor(az, '-n', BASTION, '--target-resource-id', vm_id)
    finally:
        emulator.delete('faults')


def test_unreachable_data_plane_fails_and_leaves_no_session(az, emulator, sshd_linux_vm):
    result = _doctor_with_mints_answering(az, emulator, 500, sshd_linux_vm.vm_id)
    assert result.returncode == FAILED, result.stderr
    rows = _rows(result)
    assert rows['Data plane']['status'] == 'fail' and 'HTTP 500' in rows['Data plane']['detail']
    assert rows['Data plane']['fix']
    assert [row['check'] for row in result.json if row['status'] == 'fail'] == ['Data plane']
    assert _sessions(emulator) == []


def test_nsg_denying_the_target_port_fails_with_the_apply_command_also_for_the_data_planes_403(
        az, emulator, network, own_vnet_host, sshd_linux_vm):
    host = own_vnet_host(enable_tunneling=True)
    _deny_port_2222(network, host)
    result = _doctor(az, '-n', host, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', '2222')
    assert result.returncode == FAILED
    rows = _rows(result)
    apply = f'az network bastion nsg apply -g demo-rg -n {host} --ports 22 2222 3389'
    assert rows['NSG']['status'] == 'fail' and 'DenyOtherVnetOutbound' in rows['NSG']['detail']
    assert rows['NSG']['fix'] == apply
    # the emulator refuses the mint with 403 naming the NSG rule (the data plane enforces the NSG): not a role
    assert rows['Data plane']['status'] == 'fail' and 'HTTP 403' in rows['Data plane']['detail']
    assert rows['Data plane']['fix'] == apply
    assert _sessions(emulator) == []


def test_no_token_in_output_or_debug_log(az, emulator, sshd_linux_vm):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id, '--debug')
    assert result.returncode == 0
    secrets = emulator.get('secrets').json()['secrets']
    assert secrets
    leaked = [s for s in secrets if s in result.stdout or s in result.stderr]
    assert leaked == []


def test_not_signed_in_fails_with_az_login_and_skips_what_needs_azure(az, tmp_path):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', '/subscriptions/s/resourceGroups/demo-rg/providers/'
                     'Microsoft.Compute/virtualMachines/linux-vm', env_extra={'AZURE_CONFIG_DIR': str(tmp_path)})
    assert result.returncode == FAILED
    statuses = {check: row['status'] for check, row in _rows(result).items()}
    assert _rows(result)['Signed in']['fix'] == 'az login'
    assert statuses == {'Cloud Shell': 'pass', 'Signed in': 'fail', 'Bastion host': 'skip', 'Native client': 'skip',
                        'IP connect': 'skip', 'Target VM': 'skip', 'Network': 'skip', 'Method': 'pass',
                        'NSG': 'skip', 'Local client': 'pass', 'Data plane': 'skip'}


# -- the data plane row opens the websocket, and its fix names the cause ------------------------------
def test_tunnel_to_a_port_nothing_listens_on_fails_with_the_target_port_fix(az, emulator, sshd_linux_vm):
    # linux-vm has only port 22 (the test sshd) behind it: Bastion mints a session for 3389, but its websocket
    # is refused (HTTP 502), as `proxy`/`tunnel` would find out
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id, '--method', 'tunnel',
                     '--resource-port', '3389')
    assert result.returncode == FAILED, result.stdout
    rows = _rows(result)
    assert [row['check'] for row in result.json if row['status'] == 'fail'] == ['Data plane']
    plane = rows['Data plane']
    assert 'port 3389' in plane['detail'] and 'HTTP 502' in plane['detail']
    assert "linux-vm" in plane['fix'] and '3389' in plane['fix'] and 'listens' in plane['fix']
    assert 'az login' not in plane['fix']
    assert _sessions(emulator) == []


def test_the_passing_data_plane_row_says_the_target_port_answered(az, emulator, sshd_linux_vm):
    before = emulator.get('stats').json()['websockets_opened']
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id, '--method', 'tunnel',
                     '--resource-port', '22')
    assert result.returncode == 0, result.stderr
    assert 'port 22 answered' in _rows(result)['Data plane']['detail']
    assert emulator.get('stats').json()['websockets_opened'] == before + 1
    assert _sessions(emulator) == []


def test_target_ip_address_that_is_not_an_ip_is_refused_as_tunnel_refuses_it(az, emulator):
    doctor = _doctor(az, '-n', BASTION, '--target-ip-address', 'notanip')
    tunnel = az('network', 'bastion', 'tunnel', '-g', RG, '-n', BASTION, '--target-ip-address', 'notanip',
                '--resource-port', '22', check=False)
    assert doctor.returncode == tunnel.returncode != 0, doctor.stdout
    assert "'notanip' is not an IP address" in doctor.stderr
    assert doctor.stderr.splitlines()[0] == tunnel.stderr.splitlines()[0]
    assert doctor.stdout == ''
    assert _sessions(emulator) == []


def _deny_port_2222(network, host):
    from azure.mgmt.network.models import NetworkSecurityGroup
    from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_to_arm
    rules = [rule_to_arm(rule) for rule in bastion_rule_set()]      # 22 and 3389 only: port 2222 hits the Deny rule
    nsg = network.network_security_groups.begin_create_or_update(RG, host + '-nsg', NetworkSecurityGroup(
        {'location': 'westeurope', 'properties': {'securityRules': rules}})).result()
    subnet = network.subnets.get(RG, host + '-vnet', 'AzureBastionSubnet')
    subnet.network_security_group = NetworkSecurityGroup(id=nsg.id)
    network.subnets.begin_create_or_update(RG, host + '-vnet', 'AzureBastionSubnet', subnet).result()


def test_a_403_with_the_port_allowed_gets_the_role_fix(az, emulator, sshd_linux_vm):
    result = _doctor_with_mints_answering(az, emulator, 403, sshd_linux_vm.vm_id, count=1)
    assert result.returncode == FAILED
    plane = _rows(result)['Data plane']
    assert plane['status'] == 'fail' and 'HTTP 403' in plane['detail']
    assert 'Reader' in plane['fix'] and sshd_linux_vm.vm_id in plane['fix']
    assert 'nsg apply' not in plane['fix']


def test_an_expired_sign_in_401_gets_az_login(az, emulator, sshd_linux_vm):
    result = _doctor_with_mints_answering(az, emulator, 401, sshd_linux_vm.vm_id, count=1)
    plane = _rows(result)['Data plane']
    assert plane['status'] == 'fail' and 'az login' in plane['fix'] and 'Reader' not in plane['fix']


# -- suggestions that match the method, the OS and the target -----------------------------------------
def test_rdp_to_a_linux_vm_suggests_ssh_or_rdp_through_the_tunnel_never_a_mix(az, sshd_linux_vm):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id, '--method', 'rdp')
    assert result.returncode == FAILED
    method = _rows(result)['Method']
    assert method['status'] == 'fail' and 'Linux VM' in method['detail']
    fix = method['fix']
    assert f'az network bastion ssh -g demo-rg -n demo-bastion --target-resource-id {sshd_linux_vm.vm_id}' in fix
    assert 'ssh/scp' not in fix and 'VM_ID' not in fix and ' RG ' not in fix
    # the tunnel alternative, if any, pairs port 3389 with an RDP client
    if '--resource-port 3389' in fix:
        assert 'RDP client' in fix.split('--resource-port 3389', 1)[1]


def test_an_unknown_ip_is_not_told_to_check_a_vm_id(az, emulator):
    result = _doctor(az, '-n', BASTION, '--target-ip-address', '10.0.0.99')
    assert result.returncode == FAILED
    plane = _rows(result)['Data plane']
    assert plane['status'] == 'fail' and 'HTTP 404' in plane['detail']
    assert 'VM_ID' not in plane['fix'] and '--ids' not in plane['fix']
    assert '10.0.0.99' in plane['fix'] and 'az vm list-ip-addresses' in plane['fix']
    assert _sessions(emulator) == []


def test_a_basic_host_gets_one_runnable_fix_that_makes_every_host_row_pass(az, emulator, own_vnet_host,
                                                                           sshd_linux_vm):
    host = own_vnet_host(enable_tunneling=False, sku='Basic')
    before = _rows(_doctor(az, '-n', host, '--target-ip-address', '10.0.0.4'))
    failing = {check: row for check, row in before.items() if row['status'] == 'fail'}
    assert set(failing) == {'Bastion host', 'Native client', 'IP connect'}
    fixes = {row['fix'] for row in failing.values()}
    assert len(fixes) == 1, fixes           # one command, whichever row the user copies it from
    fix = fixes.pop()
    assert '--upgrade-sku' in fix and '--enable-ip-connect' in fix and '--yes' in fix
    argv = shlex.split(fix)
    assert argv[:4] == ['az', 'network', 'bastion', 'native-client']
    az(*argv[1:])                           # runs as printed, with no terminal to confirm on
    after = _doctor(az, '-n', host, '--target-ip-address', '10.0.0.4')
    assert after.returncode == 0, after.stdout
    assert _sessions(emulator) == []


# -- words users see ------------------------------------------------------------------------------------
def test_words_users_see_name_the_documentation_by_title_and_link_never_the_seed(az, emulator, sshd_linux_vm):
    from azext_bastion_native.capabilities import SUPPORT_TABLE_TITLE, SUPPORT_TABLE_URL
    win_vm = emulator.resource_id('Microsoft.Compute/virtualMachines', 'win-vm')
    seen = {
        'doctor rows': _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id).stdout,
        'native-client show': az('network', 'bastion', 'native-client', 'show', '-g', RG, '-n', BASTION).stdout,
        'a refusal': az('network', 'bastion', 'ssh', '-g', RG, '-n', BASTION, '--target-resource-id', win_vm,
                        '--auth-type', 'password', check=False).stderr,
    }
    for command in ('doctor', 'ssh', 'rdp', 'tunnel', 'file upload', 'native-client show'):
        seen[f'{command} --help'] = az('network', 'bastion', *command.split(), '--help').stdout
    assert {where: text for where, text in seen.items() if 'seed' in text.lower()} == {}
    for where in ('doctor rows', 'a refusal', 'doctor --help', 'ssh --help', 'native-client show --help'):
        text = ' '.join(seen[where].split())       # help wraps lines
        assert SUPPORT_TABLE_TITLE in text and SUPPORT_TABLE_URL in text, where
    assert '"beyondDocumentedTable": false' in seen['native-client show']
