"""nsg/ports.py: --ports parsed into sorted, non-overlapping ranges, and the lists it refuses."""
import pytest

from azext_bastion_native.nsg.ports import PortListError, parse_ports


@pytest.mark.parametrize('values, expected', [
    (None, ['22', '3389']), ([], ['22', '3389']), (['3389', '22'], ['22', '3389']), (['22,2222'], ['22', '2222']),
    (['8000-8010', '22'], ['22', '8000-8010']), (['1', '65535'], ['1', '65535']), ([' 22 '], ['22'])])
def test_parse_ports(values, expected):
    assert parse_ports(values) == expected


@pytest.mark.parametrize('values, message', [
    (['ssh'], 'is not a port'), (['0'], 'outside 1-65535'), (['65536'], 'outside 1-65535'),
    (['3389-22'], 'reversed'), (['22', '22'], 'overlap'), (['20-30', '22'], 'overlap'), (['22,'], 'empty'),
    (['-5'], 'is not a port'), (['22-'], 'is not a port')])
def test_parse_ports_refuses(values, message):
    with pytest.raises(PortListError, match=message):
        parse_ports(values)
