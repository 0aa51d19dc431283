"""management/hosts.py: the SKU rules create/update check before sending, list and delete, without ARM."""

import pytest
from azure.cli.core import azclierror

from azext_bastion_native.bastion_facts import HOST_FEATURES
from azext_bastion_native.management import hosts
from tests.unit.boundary import raises_as


def _asking(*rest_names):
    return {name: True for name in rest_names}


@pytest.mark.parametrize('sku, allowed', [
    ('Developer', set()),
    ('Basic', {'enableKerberos'}),
    ('Standard', {feature.rest_name for feature in HOST_FEATURES} - {'enableSessionRecording',
                                                                     'enablePrivateOnlyBastion'}),
    ('Premium', {feature.rest_name for feature in HOST_FEATURES}),
])
def test_each_sku_offers_exactly_its_features(sku, allowed):
    for feature in HOST_FEATURES:
        if feature.rest_name in allowed:
            hosts.check_sku_rules(sku, _asking(feature.rest_name))
        else:
            with raises_as(azclierror.ArgumentUsageError) as refused:
                hosts.check_sku_rules(sku, _asking(feature.rest_name))
            assert feature.flag in refused.value.error_msg


def test_the_recommendation_names_the_cheapest_sku_offering_everything_asked():
    with raises_as(azclierror.ArgumentUsageError) as refused:
        hosts.check_sku_rules('Basic', _asking('enableTunneling', 'enableSessionRecording'))
    assert '--sku Premium' in refused.value.recommendations[0]


@pytest.mark.parametrize('sku, units, error', [
    ('Standard', 1, azclierror.InvalidArgumentValueError), ('Premium', 51, azclierror.InvalidArgumentValueError),
    ('Basic', 3, azclierror.ArgumentUsageError), ('Developer', 4, azclierror.ArgumentUsageError)])
def test_scale_units(sku, units, error):
    with raises_as(error):
        hosts.check_sku_rules(sku, {}, scale_units=units)


def test_scale_units_in_range_and_fixed_two_pass():
    hosts.check_sku_rules('Premium', {}, scale_units=50)
    hosts.check_sku_rules('Basic', {}, scale_units=2)


@pytest.mark.parametrize('old, new', [('Premium', 'Standard'), ('Standard', 'Basic'), ('Developer', 'Standard')])
def test_sku_changes_azure_refuses(old, new):
    with raises_as(azclierror.ValidationError):
        hosts.check_sku_change('host', old, new)


def test_features_from_flags_by_parameter_name():
    features = hosts.features_from_flags(file_copy=True, shareable_link=False, session_recording=None)
    assert features['enableFileCopy'] is True and features['enableShareableLink'] is False
    assert features['enableSessionRecording'] is None and features['enableTunneling'] is None
    assert hosts.sdk_attribute('enablePrivateOnlyBastion') == 'enable_private_only_bastion'


class _Hosts:
    def __init__(self, error=None):
        self.calls, self.error = [], error

    def list_by_resource_group(self, resource_group):
        self.calls.append(('list_by_resource_group', resource_group))
        if self.error:
            raise self.error
        return iter(['h1', 'h2'])

    def list(self):
        self.calls.append(('list',))
        return iter(['h1', 'h2', 'h3'])

    def begin_delete(self, resource_group, name, polling=True):
        self.calls.append(('begin_delete', resource_group, name, polling))
        return 'poller'


def test_list_hosts_reads_the_resource_group_or_the_subscription():
    from types import SimpleNamespace
    from azext_bastion_native.management.hosts import list_hosts
    client = SimpleNamespace(bastion_hosts=_Hosts())
    assert list_hosts(client, 'rg') == ['h1', 'h2'] and list_hosts(client) == ['h1', 'h2', 'h3']
    assert client.bastion_hosts.calls == [('list_by_resource_group', 'rg'), ('list',)]


def test_list_hosts_names_the_resource_group_azure_did_not_find():
    from types import SimpleNamespace
    from azure.core.exceptions import ResourceNotFoundError
    from azext_bastion_native.management.errors import ArmNotFound
    from azext_bastion_native.management.hosts import list_hosts
    client = SimpleNamespace(bastion_hosts=_Hosts(ResourceNotFoundError(message='no rg')))
    with pytest.raises(ArmNotFound, match="Resource group 'rg' was not found"):
        list_hosts(client, 'rg')


def test_delete_host_with_no_wait_starts_the_delete_and_returns_nothing():
    from types import SimpleNamespace
    from azext_bastion_native.management.hosts import delete_host
    client = SimpleNamespace(bastion_hosts=_Hosts())
    assert delete_host(None, client, 'rg', 'bh', no_wait=True) is None
    assert client.bastion_hosts.calls == [('begin_delete', 'rg', 'bh', False)]     # azure-cli's sdk_no_wait
