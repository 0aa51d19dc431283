"""doctor/checks.py: each `az network bastion doctor` check's decision from injected facts."""
import pytest

from azext_bastion_native.doctor import checks
from azext_bastion_native.capabilities import SUPPORT_TABLE_TITLE, SUPPORT_TABLE_URL
from azext_bastion_native.doctor.checks import FAIL, PASS, SKIP, WARN, Asked, Failure, ProbeResult, VmFacts
from tests.unit.nsg.nsg_json import arm_rule, compliant, nsg_of

RG, NAME = 'rg', 'bh'
ENABLE = 'az network bastion native-client enable -g rg -n bh'


def host(sku='Standard', tunneling=True, ip_connect=False):
    return {'sku': {'name': sku}, 'properties': {'enableTunneling': tunneling, 'enableIpConnect': ip_connect,
                                                 'provisioningState': 'Succeeded', 'dnsName': 'bst.example'}}


def which_of(*present):
    return lambda name: f'/usr/bin/{name}' if name in present else None


# -- 1, 2 -----------------------------------------------------------------------------------------
def test_cloud_shell_fails_with_the_portal_pointer_only_when_acc_cloud_is_set():
    row = checks.check_cloud_shell({'ACC_CLOUD': '1'})
    assert row.status == FAIL and 'browser connection' in row.fix
    assert checks.check_cloud_shell({'ACC_CLOUD': ''}).status == PASS
    assert checks.check_cloud_shell({}).status == PASS


def test_sign_in_fails_with_az_login():
    row = checks.check_sign_in(Failure("Please run 'az login' to setup account."))
    assert (row.status, row.fix) == (FAIL, 'az login') and 'setup account' in row.detail
    assert checks.check_sign_in(None).status == PASS


# -- 3, 4, 5 --------------------------------------------------------------------------------------
@pytest.mark.parametrize('sku', ['Standard', 'Premium'])
def test_standard_and_premium_hosts_pass(sku):
    assert checks.check_host(host(sku), None, RG, NAME).status == PASS


def test_basic_host_fails_and_the_fix_upgrades_the_sku_without_asking():
    row = checks.check_host(host('Basic', tunneling=False), None, RG, NAME)
    assert row.status == FAIL and 'Basic' in row.detail
    assert row.fix == ENABLE + ' --upgrade-sku --yes'


def test_a_basic_host_reached_by_ip_gets_one_command_on_every_row_it_fails():
    basic = host('Basic', tunneling=False)
    rows = [checks.check_host(basic, None, RG, NAME, '10.0.0.4'),
            checks.check_native_client(basic, RG, NAME, '10.0.0.4'),
            checks.check_ip_connect(basic, '10.0.0.4', 22, RG, NAME)]
    assert [row.status for row in rows] == [FAIL, FAIL, FAIL]
    assert {row.fix for row in rows} == {ENABLE + ' --upgrade-sku --enable-ip-connect --yes'}


def test_a_standard_host_with_tunnelling_and_ip_connect_off_gets_one_command_too():
    off = host(tunneling=False, ip_connect=False)
    fixes = {checks.check_native_client(off, RG, NAME, '10.0.0.4').fix,
             checks.check_ip_connect(off, '10.0.0.4', 22, RG, NAME).fix}
    assert fixes == {ENABLE + ' --enable-ip-connect'}
    assert checks.check_native_client(off, RG, NAME).fix == ENABLE       # not by IP: IP connect is not needed


def test_a_developer_host_is_never_told_to_upgrade_in_place():
    developer = host('Developer', tunneling=False)
    row = checks.check_host(developer, None, RG, NAME)
    assert row.status == WARN and '--upgrade-sku' not in row.fix and 'az network bastion create' in row.fix
    ip_row = checks.check_ip_connect(developer, '10.0.0.4', 22, RG, NAME)
    assert ip_row.status == FAIL and '--target-resource-id' in ip_row.fix and '--upgrade-sku' not in ip_row.fix


def test_developer_host_warns_and_has_no_tunnelling_switch():
    assert checks.check_host(host('Developer', tunneling=False), None, RG, NAME).status == WARN
    assert checks.check_native_client(host('Developer', tunneling=False), RG, NAME).status == SKIP


def test_missing_host_fails_with_the_read_error_and_its_recommendation():
    row = checks.check_host(None, Failure("Bastion host 'bh' was not found.", 'az network bastion list -g rg'),
                            RG, NAME)
    assert (row.status, row.detail, row.fix) == (FAIL, "Bastion host 'bh' was not found.",
                                                 'az network bastion list -g rg')
    assert checks.check_native_client(None, RG, NAME).status == SKIP


def test_tunnelling_off_fails_with_the_enable_command():
    row = checks.check_native_client(host(tunneling=False), RG, NAME)
    assert (row.status, row.fix) == (FAIL, ENABLE)
    assert checks.check_native_client(host('Basic', tunneling=False), RG, NAME).fix == \
        ENABLE + ' --upgrade-sku --yes'
    assert checks.check_native_client(host(), RG, NAME).status == PASS


def test_ip_connect_is_checked_only_with_an_ip_and_only_for_22_and_3389():
    assert checks.check_ip_connect(host(), None, 22, RG, NAME).status == SKIP
    off = checks.check_ip_connect(host(ip_connect=False), '10.0.0.4', 22, RG, NAME)
    assert (off.status, off.fix) == (FAIL, ENABLE + ' --enable-ip-connect')
    custom = checks.check_ip_connect(host(ip_connect=True), '10.0.0.4', 2222, RG, NAME)
    assert custom.status == FAIL and '2222' in custom.detail and '--target-resource-id' in custom.fix
    assert checks.check_ip_connect(host(ip_connect=True), '10.0.0.4', 3389, RG, NAME).status == PASS


# -- 6 --------------------------------------------------------------------------------------------
VM_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'


def test_running_vm_passes_and_names_its_os():
    row = checks.check_target_vm(VmFacts('vm1', RG, 'running', 'linux'), None, VM_ID, None)
    assert row.status == PASS and 'Linux' in row.detail


@pytest.mark.parametrize('state', ['stopped', 'deallocated'])
def test_stopped_vm_fails_with_the_start_command(state):
    row = checks.check_target_vm(VmFacts('vm1', RG, state, 'linux', 'az vm start -g rg -n vm1'), None, VM_ID, None)
    assert row.status == FAIL and state in row.detail and row.fix == 'az vm start -g rg -n vm1'


def test_vm_without_power_state_or_os_warns():
    assert checks.check_target_vm(VmFacts('vm1', RG, None, 'linux'), None, VM_ID, None).status == WARN
    assert checks.check_target_vm(VmFacts('vm1', RG, 'running', None), None, VM_ID, None).status == WARN


def test_vm_not_read_fails_and_no_target_or_ip_skips():
    row = checks.check_target_vm(None, Failure("Virtual machine 'vm1' was not found.", 'az vm list -g rg'),
                                 VM_ID, None)
    assert (row.status, row.fix) == (FAIL, 'az vm list -g rg')
    assert checks.check_target_vm(None, None, None, None).status == SKIP
    assert checks.check_target_vm(None, None, None, '10.0.0.4').status == SKIP


@pytest.mark.parametrize('method, port, os_type, expected', [
    ('rdp', None, 'linux', 'rdp'), (None, 22, 'windows', 'ssh'), (None, 3389, None, 'rdp'),
    (None, 8080, 'linux', 'tunnel'), (None, None, 'windows', 'rdp'), (None, None, 'linux', 'ssh'),
    (None, None, None, 'ssh')])
def test_method_comes_from_the_option_then_the_port_then_the_os(method, port, os_type, expected):
    assert checks.choose_method(method, port, os_type) == expected


def test_port_comes_from_the_option_then_the_method_then_the_os():
    assert checks.choose_port(2222, 'ssh', 'linux') == 2222
    assert checks.choose_port(None, 'rdp', 'linux') == 3389
    assert checks.choose_port(None, 'tunnel', 'windows') == 3389
    assert checks.choose_port(None, 'tunnel', 'linux') == 22


def asked(port=22, vm_id=VM_ID, ip=None):
    return Asked(RG, NAME, port, None if ip else vm_id, ip)


def test_method_allowed_by_the_table_passes_and_names_the_row_and_its_documentation():
    row = checks.check_method('linux', 'ssh', 'linux', asked())
    assert row.status == PASS and 'Linux native client' in row.detail
    assert SUPPORT_TABLE_TITLE in row.detail and SUPPORT_TABLE_URL in row.detail
    beyond = checks.check_method('linux', 'rdp', 'windows', asked(3389))
    assert beyond.status == PASS and 'beyond' in beyond.detail


def test_method_refused_by_the_table_names_the_row_and_the_alternative_for_this_host_and_vm():
    row = checks.check_method('linux', 'ssh', 'windows', asked())
    assert row.status == FAIL and 'Windows VM' in row.detail
    assert f'`az network bastion rdp -g rg -n bh --target-resource-id {VM_ID}`' in row.fix
    assert 'az network bastion tunnel' in row.fix and 'VM_ID' not in row.fix


def test_rdp_to_a_linux_vm_suggests_ssh_and_an_rdp_client_for_3389_never_ssh():
    row = checks.check_method('linux', 'rdp', 'linux', asked(3389))
    assert row.status == FAIL
    assert row.fix.startswith(f'use `az network bastion ssh -g rg -n bh --target-resource-id {VM_ID}`')
    assert 'ssh/scp' not in row.fix and 'RDP client to localhost:53389' in row.fix


def test_unknown_os_is_assumed_from_the_method_and_said_so():
    row = checks.check_method('linux', 'ssh', None, asked(ip='10.0.0.4'))
    assert row.status == PASS and 'Linux assumed' in row.detail
    assert checks.check_method('other', 'tunnel', None, asked(5432)).status == PASS


def test_ip_connect_with_a_custom_port_is_refused_by_the_method_check_too():
    assert checks.check_method('linux', 'ssh', None, asked(2222, ip='10.0.0.4')).status == FAIL


# -- 7 --------------------------------------------------------------------------------------------
APPLY = 'az network bastion nsg apply -g rg -n bh --ports'


def test_no_nsg_passes_and_says_ports_are_not_limited():
    row = checks.check_nsg(None, None, 22, RG, NAME)
    assert row.status == PASS and 'no NSG' in row.detail and f'{APPLY} 22 3389' in row.detail


def test_nsg_with_the_rule_set_passes():
    assert checks.check_nsg(compliant(), None, 22, RG, NAME).status == PASS
    assert checks.check_nsg(compliant(['22', '2222', '3389']), None, 2222, RG, NAME).status == PASS


def test_target_port_denied_outbound_fails_naming_the_rule_and_the_ports_to_apply():
    row = checks.check_nsg(compliant(), None, 2222, RG, NAME)
    assert row.status == FAIL and 'DenyOtherVnetOutbound' in row.detail and '2222' in row.detail
    assert row.fix == f'{APPLY} 22 2222 3389'
    # outbound 22 left out (Azure refuses this on AzureBastionSubnet, but an NSG not yet associated can be so)
    ssh_denied = compliant(replace={'AllowSshRdpOutbound': arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*',
                                                                    'VirtualNetwork', '3389')})
    assert checks.check_nsg(ssh_denied, None, 22, RG, NAME).fix == f'{APPLY} 22 3389'


def test_an_allow_before_the_deny_lets_the_target_port_through():
    nsg = compliant(replace={'AllowSshRdpOutbound': arm_rule('AllowSshRdpOutbound', 'Outbound', 100, '*',
                                                             'VirtualNetwork', ['22', '3389', '2222'])})
    assert checks.outbound_blocker(nsg, 2222) is None
    assert checks.outbound_blocker(compliant(), 2222).name == 'DenyOtherVnetOutbound'


def test_missing_inbound_rule_fails_and_breaking_rule_fails():
    missing = checks.check_nsg(compliant(without=('AllowHttpsInbound',)), None, 22, RG, NAME)
    assert missing.status == FAIL and 'AllowHttpsInbound' in missing.detail
    deny_https = arm_rule('DenyInternet', 'Inbound', 100, 'Internet', '*', '443', access='Deny')
    breaking = checks.check_nsg(nsg_of(deny_https, *compliant()['properties']['securityRules']), None, 22, RG, NAME)
    assert breaking.status == FAIL and 'DenyInternet' in breaking.detail


def test_missing_outbound_deny_only_warns():
    row = checks.check_nsg(compliant(without=('DenyOtherVnetOutbound',)), None, 22, RG, NAME)
    assert row.status == WARN and 'DenyOtherVnetOutbound' in row.detail and APPLY in row.fix


def test_unreadable_nsg_warns():
    row = checks.check_nsg(None, Failure('HTTP 403', 'ask for Reader'), 22, RG, NAME)
    assert row.status == WARN and row.fix == 'ask for Reader'


# -- 8 --------------------------------------------------------------------------------------------
def test_ssh_needs_ssh_and_wants_scp():
    assert checks.check_local_clients('ssh', 'linux', which_of('ssh', 'scp')).status == PASS
    assert checks.check_local_clients('ssh', 'linux', which_of('ssh')).status == WARN
    row = checks.check_local_clients('ssh', 'linux', which_of('scp'))
    assert row.status == FAIL and 'openssh' in row.fix.lower()


def test_rdp_client_per_os():
    desktop = {'DISPLAY': ':0', 'WAYLAND_DISPLAY': 'wayland-0'}
    assert checks.check_local_clients('rdp', 'linux', which_of('xfreerdp'), desktop).status == PASS
    assert checks.check_local_clients('rdp', 'linux', which_of('wlfreerdp'), desktop).status == PASS
    assert checks.check_local_clients('rdp', 'linux', which_of('open'), desktop).status == WARN
    mac = checks.check_local_clients('rdp', 'other', which_of('open'))
    assert mac.status == PASS and 'open' in mac.detail
    assert checks.check_local_clients('rdp', 'windows', which_of('mstsc')).status == PASS


def test_rdp_without_a_display_says_so_instead_of_no_client():
    row = checks.check_local_clients('rdp', 'linux', which_of('xfreerdp'), {})
    assert row.status == WARN and 'No display here' in row.detail and 'ssh -L' in row.fix
    none = checks.check_local_clients('rdp', 'linux', which_of(), {})
    assert none.status == WARN and 'No RDP client found' in none.detail


def test_tunnel_needs_no_local_program():
    assert checks.check_local_clients('tunnel', 'linux', which_of()).status == PASS


# -- 9 --------------------------------------------------------------------------------------------
def test_data_plane_rows():
    assert checks.check_data_plane(None, 'No DNS name.').status == SKIP
    tls = checks.check_data_plane(ProbeResult('tls', 'bst.example', True, 12.3), 'Give a target.')
    assert tls.status == PASS and '12 ms' in tls.detail and 'Give a target.' in tls.detail
    session = checks.check_data_plane(ProbeResult('session', 'bst.example', True, 40.0), '', asked())
    assert session.status == PASS and '40 ms round trip' in session.detail and 'port 22 answered' in session.detail
    assert checks.check_data_plane(ProbeResult('session', 'bst.example', True, 40.0, deleted=False)).status == WARN
    unverified = checks.check_data_plane(ProbeResult('tls', 'bst.example', True, 1.0, verify=False))
    assert 'NOT verified' in unverified.detail


def test_data_plane_failures_carry_a_fix_for_their_cause():
    refused = checks.check_data_plane(ProbeResult('session', 'bst.example', False, error='no', status=401), '',
                                      asked())
    assert refused.status == FAIL and 'az login' in refused.fix and 'Reader' not in refused.fix
    untrusted = checks.check_data_plane(ProbeResult('tls', 'bst.example', False, error='TLS certificate not trusted'))
    assert 'REQUESTS_CA_BUNDLE' in untrusted.fix
    down = checks.check_data_plane(ProbeResult('session', 'bst.example', False, error='HTTP 500', status=500))
    assert down.status == FAIL and '443' in down.fix


def _failed(status, error='refused', stage=checks.MINT):
    return ProbeResult('session', 'bst.example', False, error=error, status=status, stage=stage)


@pytest.mark.parametrize('status', [502, 504])
def test_a_websocket_the_target_port_refuses_fails_with_the_port_fix(status):
    row = checks.check_data_plane(_failed(status, f'Bastion refused the tunnel websocket (HTTP {status}).',
                                          checks.WEBSOCKET), '', asked(3389))
    assert row.status == FAIL and 'port 3389' in row.detail and f'HTTP {status}' in row.detail
    assert "VM 'vm1'" in row.fix and 'port 3389' in row.fix and '--resource-port' in row.fix
    by_ip = checks.check_data_plane(_failed(status, 'x', checks.WEBSOCKET), '', asked(22, ip='10.0.0.4'))
    assert 'port 22 of 10.0.0.4' in by_ip.fix


def test_a_mint_gateway_error_is_not_blamed_on_the_target_port():
    row = checks.check_data_plane(_failed(502, 'HTTP 502'), '', asked())
    assert 'listen' not in row.fix and '443' in row.fix


APPLY_2222 = 'az network bastion nsg apply -g rg -n bh --ports 22 2222 3389'


def test_a_403_for_a_port_the_nsg_denies_gets_the_nsg_fix():
    assert checks.check_data_plane(_failed(403), '', asked(2222), nsg_denies_port=True).fix == APPLY_2222
    # Bastion's own words name the NSG even when the NSG row could not read it
    nsg_words = _failed(403, "Port 2222 ... outbound rule 'Deny' of network security group 'nsg' denies it.")
    assert checks.check_data_plane(nsg_words, '', asked(2222), nsg_denies_port=None).fix == APPLY_2222


def test_a_403_with_the_port_allowed_gets_the_role_fix_with_the_vm_id():
    row = checks.check_data_plane(_failed(403, 'Forbidden'), '', asked(), nsg_denies_port=False)
    assert 'Reader' in row.fix and VM_ID in row.fix and 'nsg apply' not in row.fix and 'az login' not in row.fix


def test_a_403_with_the_nsg_unread_names_both_causes():
    row = checks.check_data_plane(_failed(403, 'Forbidden'), '', asked(), nsg_denies_port=None)
    assert 'Reader' in row.fix and 'az network bastion nsg apply -g rg -n bh --ports 22 3389' in row.fix


def test_a_404_names_the_target_as_given():
    by_ip = checks.check_data_plane(_failed(404), '', asked(ip='10.0.0.99'))
    assert '10.0.0.99' in by_ip.fix and 'az vm list-ip-addresses -g rg' in by_ip.fix
    assert 'VM_ID' not in by_ip.fix and '--ids' not in by_ip.fix
    by_id = checks.check_data_plane(_failed(404), '', asked())
    assert by_id.fix == f'Check the VM: az vm show --ids {VM_ID}'


def test_exit_code_only_for_failures():
    rows = [checks.CheckRow('a', PASS, ''), checks.CheckRow('b', WARN, ''), checks.CheckRow('c', SKIP, '')]
    assert checks.exit_code(rows, 3) == 0
    assert checks.exit_code(rows + [checks.CheckRow('d', FAIL, '')], 3) == 3
