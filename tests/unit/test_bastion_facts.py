"""bastion_facts: the facts several modules act on, each written once."""
import pytest

from azext_bastion_native import bastion_facts
from azext_bastion_native.bastion_facts import (canonical_sku, host_label, is_port, native_method, resource_group_of,
                                                sku_limits)

HOST_ID = '/subscriptions/S1/resourceGroups/rg-1/providers/Microsoft.Network/bastionHosts/bh'


@pytest.mark.parametrize('value, port', [(1, True), ('22', True), (65535, True), (0, False), (65536, False),
                                         (-22, False)])
def test_a_port_is_1_to_65535(value, port):
    assert is_port(value) is port


@pytest.mark.parametrize('os_type, method', [('Windows', 'rdp'), ('windows', 'rdp'), ('Linux', 'ssh'), (None, 'ssh'),
                                             ('', 'ssh')])
def test_the_native_method_of_an_os(os_type, method):
    assert native_method(os_type) == method
    assert bastion_facts.DEFAULT_METHOD_PORTS[native_method(os_type)] == (3389 if method == 'rdp' else 22)


def test_resource_group_and_host_label():
    assert resource_group_of(HOST_ID) == 'rg-1' and resource_group_of(None) is None
    assert host_label('rg-1', 'bh') == "Bastion host 'bh' in resource group 'rg-1'"


@pytest.mark.parametrize('value', ['Premium', 'premium', 'name=Premium', '{name:Premium}', '{"name": "Premium"}',
                                   " name = 'Premium' "])
def test_sku_in_our_form_and_microsofts_object_form(value):
    assert canonical_sku(value) == 'Premium'


@pytest.mark.parametrize('value', ['Huge', 'tier=Premium', '{size:Premium}', ''])
def test_sku_values_that_are_not_a_sku(value):
    with pytest.raises(ValueError):
        canonical_sku(value)


def test_developer_limits_are_data():
    assert sku_limits('Developer').ports == (22, 3389) and not sku_limits('Developer').concurrent_sessions
    assert sku_limits('Standard') is None
