"""-o table with several --ids: azure-cli hands each transformer a list of the single results."""

from azext_bastion_native import _format


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
