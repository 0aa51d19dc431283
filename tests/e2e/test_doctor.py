"""`az network bastion doctor` end to end: the real az against the emulator (and a real sshd behind linux-vm).

Each test reads the rows a user would (-o json; one -o table), the exit status (3 when a check fails), and that
no Bastion session is left behind. Hosts whose state a test changes are its own, never demo-bastion."""

import uuid

import pytest

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
    """Make a Standard host in a VNet of its own; returns make(enable_tunneling) -> host name."""
    from azure.mgmt.network.models import (
        AddressSpace, BastionHost, BastionHostIPConfiguration, PublicIPAddress, PublicIPAddressSku, Sku, SubResource,
        Subnet, VirtualNetwork)
    octets = iter(range(200, 250))

    def make(enable_tunneling):
        name = f'doctor-{uuid.uuid4().hex[:6]}'
        octet = next(octets)
        vnet = network.virtual_networks.begin_create_or_update(RG, name + '-vnet', VirtualNetwork(
            location='westeurope', address_space=AddressSpace(address_prefixes=[f'10.{octet}.0.0/16']),
            subnets=[Subnet(name='AzureBastionSubnet', address_prefix=f'10.{octet}.1.0/26')])).result()
        pip = network.public_ip_addresses.begin_create_or_update(RG, name + '-ip', PublicIPAddress(
            location='westeurope', sku=PublicIPAddressSku(name='Standard'),
            public_ip_allocation_method='Static')).result()
        network.bastion_hosts.begin_create_or_update(RG, name, BastionHost(
            location='westeurope', sku=Sku(name='Standard'), enable_tunneling=enable_tunneling,
            ip_configurations=[BastionHostIPConfiguration(name='ipconf', subnet=SubResource(id=vnet.subnets[0].id),
                                                          public_ip_address=SubResource(id=pip.id))])).result()
        return name
    return make


def test_all_pass_on_demo_bastion_and_linux_vm_and_no_session_left(az, emulator, sshd_linux_vm):
    result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id)
    assert result.returncode == 0, result.stderr
    rows = _rows(result)
    assert [row['check'] for row in result.json] == [
        'Cloud Shell', 'Signed in', 'Bastion host', 'Native client', 'IP connect', 'Target VM', 'Method', 'NSG',
        'Local client', 'Data plane']
    assert {check: row['status'] for check, row in rows.items()} == {
        'Cloud Shell': 'pass', 'Signed in': 'pass', 'Bastion host': 'pass', 'Native client': 'pass',
        'IP connect': 'skip', 'Target VM': 'pass', 'Method': 'pass', 'NSG': 'pass', 'Local client': 'pass',
        'Data plane': 'pass'}
    assert 'Linux' in rows['Target VM']['detail']
    assert 'minted and deleted' in rows['Data plane']['detail'] and ' ms ' in rows['Data plane']['detail']
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
        'az network bastion native-client enable -g demo-rg -n basic-bastion --upgrade-sku'
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


def test_unreachable_data_plane_fails_and_leaves_no_session(az, emulator, sshd_linux_vm):
    emulator.post('faults', {'mint_status': 500, 'count': 5})
    try:
        result = _doctor(az, '-n', BASTION, '--target-resource-id', sshd_linux_vm.vm_id)
    finally:
        emulator.delete('faults')
    assert result.returncode == FAILED, result.stderr
    rows = _rows(result)
    assert rows['Data plane']['status'] == 'fail' and 'HTTP 500' in rows['Data plane']['detail']
    assert rows['Data plane']['fix']
    assert [row['check'] for row in result.json if row['status'] == 'fail'] == ['Data plane']
    assert _sessions(emulator) == []


def test_nsg_denying_the_target_port_fails_with_the_apply_command(az, emulator, network, own_vnet_host,
                                                                  sshd_linux_vm):
    from azure.mgmt.network.models import NetworkSecurityGroup
    from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_to_arm
    host = own_vnet_host(enable_tunneling=True)
    rules = [rule_to_arm(rule) for rule in bastion_rule_set()]      # 22 and 3389 only: port 2222 hits the Deny rule
    nsg = network.network_security_groups.begin_create_or_update(RG, host + '-nsg', NetworkSecurityGroup(
        {'location': 'westeurope', 'properties': {'securityRules': rules}})).result()
    subnet = network.subnets.get(RG, host + '-vnet', 'AzureBastionSubnet')
    subnet.network_security_group = NetworkSecurityGroup(id=nsg.id)
    network.subnets.begin_create_or_update(RG, host + '-vnet', 'AzureBastionSubnet', subnet).result()

    result = _doctor(az, '-n', host, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', '2222')
    assert result.returncode == FAILED
    rows = _rows(result)
    assert rows['NSG']['status'] == 'fail' and 'DenyOtherVnetOutbound' in rows['NSG']['detail']
    assert rows['NSG']['fix'] == f'az network bastion nsg apply -g demo-rg -n {host} --ports 22 2222 3389'
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
                        'IP connect': 'skip', 'Target VM': 'skip', 'Method': 'pass', 'NSG': 'skip',
                        'Local client': 'pass', 'Data plane': 'skip'}
