"""The documentation's support table as data, and the dispatch decision built on it."""
import pytest

from azext_bastion_native import capabilities
from azext_bastion_native.capabilities import CapabilityRefused, decide, find_row, rows_for_client, client_os

DOCUMENTED_ROWS = [
    # client, target, method, entra, file transfer, concurrent, custom port
    ('windows', 'windows', 'rdp', True, True, True, True),
    ('windows', 'linux', 'ssh', True, False, True, True),
    ('windows', 'any', 'tunnel', False, True, False, False),
    ('linux', 'linux', 'ssh', True, False, True, True),
    ('linux', 'any', 'tunnel', False, True, False, False),
    ('other', 'any', 'tunnel', False, True, False, False),
]


def test_documented_table_is_exactly_the_documented_rows():
    as_tuples = [(r.client, r.target_os, r.method, r.entra_auth, r.file_transfer, r.concurrent_sessions,
                  r.custom_port) for r in capabilities.DOCUMENTED_TABLE]
    assert as_tuples == DOCUMENTED_ROWS
    assert not any(r.beyond_table for r in capabilities.DOCUMENTED_TABLE)


def test_rows_beyond_the_table_are_marked_and_never_offer_entra():
    assert capabilities.BEYOND_TABLE
    for row in capabilities.BEYOND_TABLE:
        assert row.beyond_table and not row.entra_auth
        assert "beyond the documentation's table" in row.describe()
        assert capabilities.SUPPORT_TABLE_URL in row.source() and 'beyond' in row.source()
    assert find_row('linux', 'windows', 'rdp').beyond_table


@pytest.mark.parametrize('system, expected', [
    ('Windows', 'windows'), ('Linux', 'linux'), ('Darwin', 'other'), ('FreeBSD', 'other'), ('', 'other')])
def test_client_os(system, expected):
    assert client_os(system) == expected


def test_client_os_defaults_to_this_machine(monkeypatch):
    monkeypatch.setattr(capabilities.platform, 'system', lambda: 'Darwin')
    assert client_os() == 'other'


def test_rows_for_client():
    assert {(r.target_os, r.method) for r in rows_for_client('windows')} == {
        ('windows', 'rdp'), ('linux', 'ssh'), ('any', 'tunnel')}
    assert all(r.client == 'other' for r in rows_for_client('other'))
    assert rows_for_client('amiga') == []


def test_find_row_prefers_the_exact_os_then_any():
    assert find_row('windows', 'Windows', 'rdp').target_os == 'windows'
    assert find_row('linux', 'windows', 'tunnel').target_os == 'any'
    assert find_row('linux', None, 'tunnel').target_os == 'any'
    assert find_row('linux', 'windows', 'ssh') is None          # Linux client -> Windows VM: only the tunnel
    assert find_row('windows', None, 'rdp') is None             # unknown OS matches 'any' rows only


def test_decide_returns_the_row_for_an_allowed_combination():
    row = decide('windows', 'linux', 'ssh', auth_type='aad', custom_port=2222)
    assert (row.client, row.target_os, row.method) == ('windows', 'linux', 'ssh')
    assert decide('linux', 'linux', 'ssh', auth_type='AAD').entra_auth


def test_decide_refuses_aad_on_the_tunnel_naming_the_row_and_the_alternative():
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'windows', 'tunnel', auth_type='aad')
    assert 'Linux native client -> any VM via `az network bastion tunnel`' in refused.value.message
    assert capabilities.SUPPORT_TABLE_TITLE in refused.value.message
    assert 'Entra ID auth: no' in refused.value.message
    assert '--resource-port 3389' in refused.value.recommendation
    assert 'RDP client' in refused.value.recommendation


def test_decide_refuses_a_method_with_no_row_and_lists_what_is_offered():
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'windows', 'ssh')
    assert 'not offered from a Linux native client' in refused.value.message
    assert 'az network bastion tunnel' in refused.value.message
    assert 'az network bastion tunnel' in refused.value.recommendation


def test_decide_custom_port_only_where_the_row_allows_it():
    assert decide('windows', 'windows', 'rdp', custom_port=3390).custom_port
    assert decide('other', 'any', 'tunnel', custom_port=8443)   # the tunnel's port is its target, not "custom"
    assert decide('linux', 'linux', 'ssh', custom_port=22)


def test_decide_refuses_a_custom_port_on_a_row_without_it(monkeypatch):
    no_custom = capabilities.Row('linux', 'linux', 'ssh', True, False, True, False)
    monkeypatch.setattr(capabilities, 'ALL_ROWS', (no_custom,))
    assert decide('linux', 'linux', 'ssh', custom_port=22) is no_custom
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'linux', 'ssh', custom_port=2222)
    assert 'custom port (2222)' in refused.value.message


def test_decide_ip_connect_refuses_entra_and_custom_ports():
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'linux', 'ssh', auth_type='aad', ip_connect=True)
    assert 'IP-based connect' in refused.value.message
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'linux', 'ssh', custom_port=2222, ip_connect=True)
    assert '2222' in refused.value.message
    assert decide('linux', 'linux', 'ssh', custom_port=22, ip_connect=True, auth_type='ssh-key')


def test_decide_file_transfer():
    assert decide('linux', 'any', 'tunnel', file_transfer=True)
    with pytest.raises(CapabilityRefused) as refused:
        decide('linux', 'linux', 'ssh', file_transfer=True)
    assert 'file transfer: no' in refused.value.message


def test_row_as_dict_is_json_ready():
    row = capabilities.row_as_dict(find_row('windows', 'windows', 'rdp'))
    assert row['command'] == 'az network bastion rdp'
    assert row['entraAuth'] is True and row['beyondDocumentedTable'] is False


# -- what to run instead: matches the method, the VM's OS and the sign-in options of the command ----------------
def _refusal(*args, **kwargs):
    with pytest.raises(CapabilityRefused) as refused:
        decide(*args, **kwargs)
    return refused.value


@pytest.mark.parametrize('client', ['windows', 'linux', 'other'])
@pytest.mark.parametrize('target_os, method, instead, port, program, not_program', [
    ('linux', 'rdp', 'ssh', 3389, 'RDP client', 'ssh'),         # rdp to Linux: never ssh to 3389
    ('windows', 'ssh', 'rdp', 22, 'ssh -p 50022', 'RDP'),       # ssh to Windows: never an RDP client on 22
])
def test_a_method_the_vms_os_lacks_suggests_that_os_method_or_a_tunnel_for_the_asked_program(
        client, target_os, method, instead, port, program, not_program):
    advice = _refusal(client, target_os, method).recommendation
    assert advice.startswith(f'use `az network bastion {instead} -g RG -n BASTION --target-resource-id VM_ID`')
    tunnel_part = advice.split(f'--resource-port {port}', 1)[1]
    assert program in tunnel_part and not_program not in tunnel_part


def test_a_custom_port_is_kept_in_the_tunnel_suggestion():
    advice = _refusal('linux', 'linux', 'rdp', custom_port=3390).recommendation
    assert '--resource-port 3390' in advice and 'RDP client' in advice


@pytest.mark.parametrize('client', ['linux', 'other'])
def test_rdp_with_entra_where_it_is_not_offered_never_suggests_an_ssh_key(client):
    advice = _refusal(client, 'windows', 'rdp', auth_type='aad').recommendation
    assert 'ssh-key' not in advice and 'drop --auth-type aad' in advice


def test_ssh_with_entra_where_it_is_not_offered_suggests_password_or_key():
    advice = _refusal('other', 'linux', 'ssh', auth_type='aad').recommendation
    assert '--auth-type password' in advice and '--auth-type ssh-key --ssh-key PATH' in advice


def test_entra_with_ip_connect_suggests_the_sign_in_options_of_the_method():
    assert 'ssh-key' not in _refusal('windows', 'windows', 'rdp', auth_type='aad', ip_connect=True).recommendation
    assert 'ssh-key' in _refusal('linux', 'linux', 'ssh', auth_type='aad', ip_connect=True).recommendation


def test_suggestions_name_the_users_host_and_target_when_given():
    args = capabilities.CommandArgs('demo-rg', 'demo-bastion', '--target-ip-address 10.0.0.4')
    advice = _refusal('linux', 'windows', 'ssh', args=args).recommendation
    assert '`az network bastion rdp -g demo-rg -n demo-bastion --target-ip-address 10.0.0.4`' in advice
    assert 'RG' not in advice and 'VM_ID' not in advice


def test_refusals_name_the_documentation_by_title_and_link():
    for refusal in (_refusal('linux', 'windows', 'ssh'), _refusal('linux', 'windows', 'rdp', auth_type='aad')):
        assert capabilities.SUPPORT_TABLE_TITLE in refusal.message
        assert capabilities.SUPPORT_TABLE_URL in refusal.message
