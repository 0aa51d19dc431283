"""_validators.py: bad arguments refused before any network call, each with its typed error and a recommendation."""
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import ArgumentUsageError, InvalidArgumentValueError

from azext_bastion_native import _validators

VM_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-1'
HOST_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/bh'


def _advice(refused):
    return ' '.join(refused.value.recommendations)


def test_ports_are_parsed_in_place_or_refused_with_the_form_they_take():
    namespace = SimpleNamespace(ports=['3389', '8000-8010,22'])
    _validators.validate_ports(namespace)
    assert namespace.ports == ['22', '3389', '8000-8010']
    with pytest.raises(InvalidArgumentValueError, match='--ports: .*outside 1-65535') as refused:
        _validators.validate_ports(SimpleNamespace(ports=['70000']))
    assert 'ranges like 8000-8010' in _advice(refused)


@pytest.mark.parametrize('validator, dest, good, bad, phrase', [
    (_validators.validate_resource_port, 'resource_port', [None, 1, 65535], [0, 65536, -1],
     r'is not a port \(1-65535\)'),
    (_validators.validate_local_port, 'port', [None, 0, 65535], [-1, 65536], 'or 0 for a free one'),
    (_validators.validate_max_connections, 'max_connections', [None, 1, 500], [0, -3], 'would refuse every'),
])
def test_numbers_in_and_out_of_range(validator, dest, good, bad, phrase):
    for value in good:
        validator(SimpleNamespace(**{dest: value}))
    for value in bad:
        with pytest.raises(InvalidArgumentValueError, match=phrase) as refused:
            validator(SimpleNamespace(**{dest: value}))
        assert str(value) in refused.value.error_msg and _advice(refused)


def test_time_limits_are_seconds_above_zero():
    _validators.validate_positive_seconds(SimpleNamespace(timeout=None, idle_timeout=0.5))
    with pytest.raises(InvalidArgumentValueError, match='--timeout 0 is not'):
        _validators.validate_positive_seconds(SimpleNamespace(timeout=0, idle_timeout=None))
    with pytest.raises(InvalidArgumentValueError, match='--idle-timeout -1 is not') as refused:
        _validators.validate_positive_seconds(SimpleNamespace(timeout=10, idle_timeout=-1))
    assert 'e.g. --idle-timeout 3600' in _advice(refused)


def test_the_agents_idle_timeout_names_its_default():
    from azext_bastion_native.agent.server import DEFAULT_IDLE_TIMEOUT
    _validators.validate_agent_idle_timeout(SimpleNamespace(idle_timeout=None))
    with pytest.raises(InvalidArgumentValueError, match='--idle-timeout 0 is not') as refused:
        _validators.validate_agent_idle_timeout(SimpleNamespace(idle_timeout=0.0))
    assert f'the default of {DEFAULT_IDLE_TIMEOUT:.0f} seconds' in _advice(refused)


def test_a_connecting_command_takes_one_host():
    _validators.validate_one_host(SimpleNamespace(ids=None))
    _validators.validate_one_host(SimpleNamespace(ids=[HOST_ID]))
    with pytest.raises(ArgumentUsageError, match='--ids names 2 Bastion hosts'):
        _validators.validate_one_host(SimpleNamespace(_ids=[HOST_ID, HOST_ID.replace('/bh', '/bh2')]))


@pytest.mark.parametrize('resource_id, what', [
    (VM_ID, 'a virtual machine'),
    ('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/hub',
     'a Microsoft.Network/virtualNetworks resource'),
])
def test_an_id_that_is_not_a_bastion_host_says_what_it_is_and_where_it_goes(resource_id, what):
    with pytest.raises(InvalidArgumentValueError) as refused:
        _validators.validate_one_host(SimpleNamespace(ids=[resource_id]))
    assert refused.value.error_msg.startswith(f"--ids '{resource_id}' is the ID of {what}, not of a Bastion host")
    assert '--target-resource-id' in _advice(refused)
