"""management/native_client.py: what native client on means for a host, and turning it on or off: the SKU rules,
asking before an upgrade or a disable, nothing written when nothing changes, the PUT only of the version read."""
from types import SimpleNamespace

import pytest
from azure.mgmt.network.models import BastionHost, Sku

from azext_bastion_native import capabilities
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management import native_client

HOST_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/bh'


class _Arm:
    """bastion_hosts of azure-mgmt-network: one host; every PUT recorded with its headers."""

    def __init__(self, host):
        self.host, self.puts = host, []
        self.bastion_hosts = SimpleNamespace(get=lambda rg, name: self.host, begin_create_or_update=self._put)

    def _put(self, resource_group, name, host, headers=None, polling=True):
        self.puts.append((resource_group, name, host, headers, polling))
        return SimpleNamespace(result=lambda: host)


def _host(sku='Standard', tunneling=False, ip_connect=False):
    host = BastionHost(id=HOST_ID, sku=Sku(name=sku), enable_tunneling=tunneling, enable_ip_connect=ip_connect,
                       enable_file_copy=True)
    host.name, host.etag = 'bh', 'W/"host-1"'
    return host


@pytest.fixture(autouse=True)
def waited(monkeypatch):
    """wait_for without azure-cli's progress indicator: the poller's result."""
    monkeypatch.setattr(native_client, 'wait_for', lambda cli_ctx, poller, what, start_msg=None: poller.result())


@pytest.fixture
def no_terminal(monkeypatch):
    monkeypatch.setattr('sys.stdin', SimpleNamespace(isatty=lambda: False))


def test_describe_lists_the_methods_only_when_native_client_is_on(monkeypatch):
    monkeypatch.setattr(capabilities, 'client_os', lambda: 'linux')
    on = native_client.describe(_host(tunneling=True))
    assert (on['name'], on['resourceGroup'], on['sku'], on['nativeClient'], on['clientOs']) == \
        ('bh', 'rg', 'Standard', 'on', 'linux')
    assert on['methods'] and {method['client'] for method in on['methods']} == {'linux'}
    off = native_client.describe(_host('Basic', tunneling=True))        # Basic: the switch means nothing
    assert off['nativeClient'] == 'off' and off['methods'] == [] and off['enableFileCopy'] is True


def test_enable_turns_tunnelling_on_with_the_etag_read():
    arm = _Arm(_host())
    result = native_client.enable(None, arm, 'rg', 'bh')
    [(_, _, written, headers, _)] = arm.puts
    assert written.enable_tunneling is True and not written.enable_ip_connect and result is written
    assert headers == {'If-Match': 'W/"host-1"'}


def test_enable_adds_ip_connect_when_asked_even_with_tunnelling_already_on():
    arm = _Arm(_host(tunneling=True))
    native_client.enable(None, arm, 'rg', 'bh', enable_ip_connect=True)
    assert arm.puts[0][2].enable_ip_connect is True


def test_nothing_is_written_when_it_is_already_on(caplog):
    arm = _Arm(_host(tunneling=True, ip_connect=True))
    assert native_client.enable(None, arm, 'rg', 'bh', enable_ip_connect=True) is arm.host
    assert arm.puts == [] and 'already enabled' in caplog.text


def test_a_basic_host_is_upgraded_only_when_asked_and_confirmed(no_terminal):
    arm = _Arm(_host('Basic'))
    with pytest.raises(Refused) as refused:
        native_client.enable(None, arm, 'rg', 'bh')
    assert refused.value.kind is Kind.VALIDATION and '--upgrade-sku' in refused.value.recommendation
    with pytest.raises(Refused) as unconfirmed:
        native_client.enable(None, arm, 'rg', 'bh', upgrade_sku=True)
    assert unconfirmed.value.kind is Kind.USAGE and unconfirmed.value.recommendation == 'Add --yes to confirm.'
    assert arm.puts == []
    native_client.enable(None, arm, 'rg', 'bh', upgrade_sku=True, yes=True)
    assert arm.puts[0][2].sku.name == 'Standard' and arm.puts[0][2].enable_tunneling is True


def test_a_developer_host_has_nothing_to_turn_on():
    arm = _Arm(_host('Developer'))
    with pytest.raises(Refused, match='Developer SKU: it has no native client setting') as refused:
        native_client.enable(None, arm, 'rg', 'bh', upgrade_sku=True, yes=True)
    assert 'az network bastion create' in refused.value.recommendation and arm.puts == []


def test_disable_asks_first_and_no_wait_returns_nothing(no_terminal):
    arm = _Arm(_host(tunneling=True))
    with pytest.raises(Refused, match='will stop working'):
        native_client.disable(None, arm, 'rg', 'bh')
    assert arm.puts == []
    assert native_client.disable(None, arm, 'rg', 'bh', yes=True, no_wait=True) is None
    [(_, _, written, headers, polling)] = arm.puts
    assert written.enable_tunneling is False and headers == {'If-Match': 'W/"host-1"'} and polling is False


def test_disabling_what_is_off_writes_nothing():
    arm = _Arm(_host(tunneling=False))
    assert native_client.disable(None, arm, 'rg', 'bh') is arm.host and arm.puts == []
