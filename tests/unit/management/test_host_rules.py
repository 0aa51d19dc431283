"""management/hosts.py: host names, --network-acls and the final check of what --set produced, without ARM."""

import pytest
from azure.mgmt.network.models import BastionHost, BastionHostPropertiesFormatNetworkAcls, IPRule, Sku

from azext_bastion_native.errors import Refused
from azext_bastion_native.management import hosts

LABEL = "Bastion host 'b' in resource group 'rg'"


@pytest.mark.parametrize('name', ['b', 'bastion-prod_01', 'a.b', 'x_', 'A' * 80, '9lives'])
def test_names_azure_takes(name):
    hosts.check_host_name(name)


@pytest.mark.parametrize('name', ['', 'b 5!', '-b', '_b', '.b', 'b-', 'b.', 'A' * 81, 'bé', 'b/c'])
def test_names_azure_refuses(name):
    with pytest.raises(Refused) as refused:
        hosts.check_host_name(name)
    assert '1-80 characters' in refused.value.message


@pytest.mark.parametrize('value', ['{ip-rules:[{address-prefix:203.0.113.0/24}]}',
                                   '{"ipRules": [{"addressPrefix": "203.0.113.0/24"}]}'])
def test_network_acls_in_shorthand_and_json(value):
    acls = hosts.network_acls_from_argument(value)
    assert [rule.address_prefix for rule in acls.ip_rules] == ['203.0.113.0/24']


@pytest.mark.parametrize('value, phrase', [
    ("{ip-rules:[{address-prefix:'2001:db8::/64'}]}", 'IPv4'),
    ('{ip-rules:[{address-prefix:not-an-address}]}', 'IPv4'),
    ('{rules:[]}', 'ip-rules'),
    ('[1, 2]', 'ip-rules'),
])
def test_network_acls_refused(value, phrase):
    with pytest.raises(Refused) as refused:
        hosts.network_acls_from_argument(value)
    assert phrase in refused.value.message


def _host(sku, **features):
    return BastionHost(sku=Sku(name=sku), scale_units=2, **features)


def test_final_check_refuses_what_set_made_a_downgrade_or_a_missing_feature():
    with pytest.raises(Refused) as downgrade:
        hosts.check_final_host(LABEL, 'Standard', _host('Basic'))
    assert 'does not downgrade' in downgrade.value.message
    with pytest.raises(Refused) as feature:
        hosts.check_final_host(LABEL, 'Standard', _host('Standard', enable_session_recording=True))
    assert '--session-recording' in feature.value.message
    with pytest.raises(Refused) as unknown:
        hosts.check_final_host(LABEL, 'Standard', _host('Huge'))
    assert 'Huge' in unknown.value.message
    acls = BastionHostPropertiesFormatNetworkAcls(ip_rules=[IPRule(address_prefix='203.0.113.0/24')])
    with pytest.raises(Refused) as acl:
        hosts.check_final_host(LABEL, 'Standard', _host('Standard', network_acls=acls))
    assert 'Developer hosts only' in acl.value.message


def test_final_check_takes_an_allowed_change_and_spells_the_sku_as_azure_does():
    host = hosts.check_final_host(LABEL, 'Standard', _host('premium', enable_session_recording=True))
    assert host.sku.name == 'Premium'
