"""results.plain: SDK results as the plain data the newest azure-cli prints, so an older az prints the same.

The reference is azure-cli-core's own ``todict`` of this venv (2.91); knack's ``todict`` is what azure-cli 2.67-2.70
serialises a result with."""
import datetime
import enum
import json

import pytest
from azure.cli.core.commands import AzCliCommandInvoker
from azure.cli.core.util import todict as newest_todict
from azure.mgmt.network import models
from knack.util import todict as knack_todict

from azext_bastion_native.results import command_result, plain

SUB = '/subscriptions/00000000-0000-4000-8000-00000000b45e/resourceGroups/demo-rg/providers/Microsoft.Network'
HOST_WIRE = {
    'id': f'{SUB}/bastionHosts/demo-bastion', 'name': 'demo-bastion', 'type': 'Microsoft.Network/bastionHosts',
    'location': 'westeurope', 'etag': 'W/"1"', 'sku': {'name': 'Standard'}, 'tags': {'team': 'ops'},
    'zones': ['1', '2'],
    'properties': {
        'provisioningState': 'Succeeded', 'dnsName': 'bst-1.bastion.azure.com', 'scaleUnits': 2,
        'enableTunneling': True, 'enableIpConnect': False, 'disableCopyPaste': False,
        'ipConfigurations': [{
            'id': f'{SUB}/bastionHosts/demo-bastion/bastionHostIpConfigurations/IpConf', 'name': 'IpConf',
            'properties': {'privateIPAllocationMethod': 'Dynamic', 'provisioningState': 'Succeeded',
                           'subnet': {'id': f'{SUB}/virtualNetworks/v/subnets/AzureBastionSubnet'},
                           'publicIPAddress': {'id': f'{SUB}/publicIPAddresses/pip'}}}],
    },
}
NSG_WIRE = {
    'id': f'{SUB}/networkSecurityGroups/nsg', 'name': 'nsg', 'location': 'westeurope',
    'properties': {'securityRules': [{
        'name': 'AllowHttpsInbound', 'properties': {
            'protocol': 'Tcp', 'access': 'Allow', 'direction': 'Inbound', 'priority': 120,
            'sourceAddressPrefix': 'Internet', 'sourcePortRange': '*', 'destinationAddressPrefix': '*',
            'destinationPortRanges': ['443']}}]},
}


def newest(obj):
    """What azure-cli 2.91 prints for ``obj`` (AzCliCommandInvoker._run_job's serialisation)."""
    return newest_todict(obj, AzCliCommandInvoker.remove_additional_prop_layer)


@pytest.mark.parametrize('model', [
    models.BastionHost(HOST_WIRE),
    models.NetworkSecurityGroup(NSG_WIRE),
    models.BastionActiveSession({'sessionId': 's1', 'startTime': '2026-12-07T10:00:00Z', 'userName': 'ann',
                                 'protocol': 'SSH', 'targetResourceId': f'{SUB}/x'}),
    # a field renamed in Python (items -> items_property) prints under its original name, as the newest az does
    models.ConnectionMonitorEndpointFilter({'type': 'Include', 'items': [{'type': 'AgentAddress', 'address': 'a'}]}),
], ids=['bastion host', 'nsg', 'session', 'renamed field'])
def test_a_model_becomes_what_the_newest_az_prints(model):
    assert plain(model) == newest(model)
    # and it is plain data: JSON round trip, and knack's todict (azure-cli 2.67-2.70) leaves it as it is
    assert json.loads(json.dumps(plain(model))) == plain(model)
    assert knack_todict(plain(model)) == plain(model)


def test_the_older_azure_cli_loses_every_field_without_it():
    """Why the conversion exists: knack's todict sees none of a TypeSpec model's fields."""
    host = models.BastionHost(HOST_WIRE)
    assert knack_todict([host, host]) == [{}, {}]
    assert knack_todict(plain([host, host])) == [newest(host), newest(host)]


def test_flattened_properties_and_attribute_names():
    shown = plain(models.BastionHost(HOST_WIRE))
    assert 'properties' not in shown
    assert shown['provisioningState'] == 'Succeeded' and shown['enableTunneling'] is True
    assert shown['sku'] == {'name': 'Standard'} and shown['tags'] == {'team': 'ops'}
    ip_configuration = shown['ipConfigurations'][0]
    # the attribute's name, not the wire's privateIPAllocationMethod
    assert ip_configuration['privateIpAllocationMethod'] == 'Dynamic'
    assert ip_configuration['publicIpAddress'] == {'id': f'{SUB}/publicIPAddresses/pip'}
    assert shown['virtualNetwork'] is None  # unset fields print as null, as the newest az prints them


class Colour(enum.Enum):
    RED = 'red'


class MsrestLike:  # pylint: disable=too-few-public-methods
    """The shape of an msrest model: fields in __dict__, unknown wire fields in additional_properties."""

    def __init__(self):
        self.provisioning_state = 'Succeeded'
        self.additional_properties = {'extraField': 1}
        self._private = 'hidden'


@pytest.mark.parametrize('value', [
    {'when': datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc), 'day': datetime.date(2026, 1, 2),
     'span': datetime.timedelta(seconds=90), 'colour': Colour.RED, 'list': (1, 'a', None, 2.5, True)},
    MsrestLike(),
    [MsrestLike(), {'nested': [MsrestLike()]}],
], ids=['dates enums tuples', 'msrest-like', 'nested'])
def test_other_values_as_the_newest_az_prints_them(value):
    # compared as printed: the newest az leaves a tuple a tuple, which prints as the list plain makes of it
    assert json.dumps(plain(value)) == json.dumps(newest(value))


def test_a_pager_becomes_a_list_and_a_poller_passes_through():
    host = models.BastionHost(HOST_WIRE)
    assert command_result(iter([host])) == [newest(host)]

    class LROPoller:  # pylint: disable=too-few-public-methods
        """Stands for azure.core's poller by its class name, as azure-cli's _is_poller checks first."""
    poller = LROPoller()
    assert command_result(poller) is poller
    assert command_result(None) is None
