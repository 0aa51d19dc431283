"""_format.py: the -o table rows of each command, and with several --ids (azure-cli hands each transformer a list of
the single results)."""

from azext_bastion_native import _format

HOST = {'id': '/subscriptions/s/resourceGroups/Hub-RG/providers/Microsoft.Network/bastionHosts/bh', 'name': 'bh',
        'location': 'westeurope', 'sku': {'name': 'Standard'},
        'properties': {'enableTunneling': True, 'enableIpConnect': None, 'provisioningState': 'Succeeded'}}


def test_a_host_row_reads_its_resource_group_from_the_id_and_says_on_or_off():
    row = _format.bastion_host_table_row(HOST)
    assert list(row.items()) == [('Name', 'bh'), ('ResourceGroup', 'Hub-RG'), ('Location', 'westeurope'),
                                 ('Sku', 'Standard'), ('NativeClient', 'on'), ('IpConnect', 'off'),
                                 ('ProvisioningState', 'Succeeded')]
    flat = dict(HOST, **HOST['properties'])                 # the SDK's flattened shape
    del flat['properties']
    assert _format.bastion_host_table_row(flat) == row
    assert _format.bastion_host_table_row([HOST, HOST]) == [row, row]
    assert _format.bastion_hosts_table([HOST]) == [row]
    assert _format.bastion_host_table_row(None) is None


def test_native_client_rows_are_the_host_then_one_per_method():
    result = {'name': 'bh', 'sku': 'Standard', 'nativeClient': 'on', 'enableIpConnect': False,
              'enableFileCopy': True, 'clientOs': 'linux',
              'methods': [{'targetOs': 'linux', 'method': 'ssh', 'entraAuth': True, 'fileTransfer': True,
                           'concurrentSessions': False, 'customPort': True}]}
    host_row, method_row = _format.native_client_table(result)
    assert (host_row['Host'], host_row['IpConnect'], host_row['FileCopy'], host_row['Method']) == \
        ('bh', 'off', 'on', '')
    assert list(method_row.values()) == ['', '', '', '', '', '', 'linux', 'ssh', 'yes', 'yes', 'no', 'yes']
    assert [row['Host'] for row in _format.native_client_table([result, result])] == ['bh', '', 'bh', '']


def test_a_session_row_names_the_target_by_host_name_or_ip():
    rows = _format.sessions_table([
        {'sessionId': 'a', 'userName': 'u', 'protocol': 'SSH', 'targetHostName': 'vm1', 'targetIpAddress': '10.0.0.4',
         'startTime': 't', 'sessionDurationInMins': 3},
        {'sessionId': 'b', 'targetIpAddress': '10.0.0.5'}])
    assert list(rows[0].values()) == ['a', 'u', 'SSH', 'vm1', 't', 3]
    assert rows[1]['Target'] == '10.0.0.5'


def test_nsg_rows_keep_the_columns_a_user_scans_first():
    row = {'name': 'AllowHttpsInbound', 'direction': 'Inbound', 'priority': 120, 'access': 'Allow',
           'source': 'Internet', 'destination': '*', 'ports': '443', 'protocol': 'Tcp', 'description': 'not shown'}
    assert list(_format.nsg_rules_table([row])[0]) == ['Name', 'Direction', 'Priority', 'Access', 'Source',
                                                       'Destination', 'Ports', 'Protocol']


def test_nsg_check_rows_and_several_hosts_named_by_host():
    report = {'host': 'bh', 'findings': [{'rule': '', 'kind': 'no-nsg', 'detail': 'no NSG'},
                                         {'rule': 'AllowHttpsInbound', 'kind': 'missing', 'detail': 'add it'}]}
    assert [list(row.values()) for row in _format.nsg_check_table(report)] == [
        ['-', 'no-nsg', 'no NSG'], ['AllowHttpsInbound', 'missing', 'add it']]
    several = _format.nsg_check_table([report, dict(report, host=None, findings=report['findings'][1:])])
    assert [row['Host'] for row in several] == ['bh', 'bh', '-']


def test_nsg_apply_rows_of_several_hosts_name_their_nsg():
    one = {'nsg': '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/a-nsg',
           'changes': ['added AllowHttpsInbound'], 'unresolved': []}
    other = {'nsg': None, 'changes': [], 'unresolved': ['DenyAll decides 443']}
    rows = _format.nsg_apply_table([one, other])
    assert [list(row.values()) for row in rows] == [
        ['a-nsg', 'added AllowHttpsInbound'], ['-', 'no change'], ['-', 'not changed: DenyAll decides 443']]
    assert list(_format.nsg_apply_table(one)[0]) == ['Change']          # one host: as before


def test_sessions_of_several_hosts_are_one_table():
    sessions = [[{'sessionId': 'a'}], [], [{'sessionId': 'b'}, {'sessionId': 'c'}]]
    assert [row['SessionId'] for row in _format.sessions_table(sessions)] == ['a', 'b', 'c']
    assert _format.sessions_table([]) == []
