"""management/nsg.py: finding AzureBastionSubnet, choosing the NSG to merge into, and the ARM writes `nsg apply`
makes (one PUT per rule with its ETag, a new NSG whole, the subnet last), against an in-memory network client."""
from types import SimpleNamespace

import pytest
from azure.core.exceptions import ResourceNotFoundError

from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management import nsg
from azext_bastion_native.nsg.rule_set import Network, bastion_rule_set, rule_to_arm
from tests.unit.cli_context import RecordingCli

SUBNET_ID = ('/subscriptions/sub-vnet/resourceGroups/vnet-rg/providers/Microsoft.Network/virtualNetworks/hub/'
             'subnets/AzureBastionSubnet')
NSG_PATH = '/subscriptions/sub-vnet/resourceGroups/vnet-rg/providers/Microsoft.Network/networkSecurityGroups/'
NETWORK = Network(('10.0.1.0/26',), ('10.0.0.0/16',))


class _Nsg:
    def __init__(self, json):
        self.json = json

    def as_dict(self):
        return self.json


class _Poller:
    def result(self):
        return None


class _Arm:
    """The few azure-mgmt-network operations nsg.py calls; every write is recorded in `writes`."""

    def __init__(self, nsgs=None, nsg_id=None, host_subnet_id=SUBNET_ID, kerberos=False):
        self.nsgs = dict(nsgs or {})            # name -> ARM JSON
        self.writes = []
        self.subscriptions = []
        configs = [SimpleNamespace(subnet=SimpleNamespace(id=host_subnet_id))] if host_subnet_id else []
        self.host = SimpleNamespace(ip_configurations=configs, enable_kerberos=kerberos)
        self.subnet = SimpleNamespace(
            name='AzureBastionSubnet', address_prefix='10.0.1.0/26', address_prefixes=None, etag='W/"subnet-1"',
            network_security_group=SimpleNamespace(id=nsg_id) if nsg_id else None)
        vnet = SimpleNamespace(location='westeurope', address_space=SimpleNamespace(address_prefixes=['10.0.0.0/16']),
                               dhcp_options=None)
        self.bastion_hosts = SimpleNamespace(get=lambda rg, name: self.host)
        self.virtual_networks = SimpleNamespace(get=lambda rg, name: vnet)
        self.subnets = SimpleNamespace(get=self._subnet, begin_create_or_update=self._put('subnet'))
        self.network_security_groups = SimpleNamespace(get=self._nsg, begin_create_or_update=self._put('nsg'))
        self.security_rules = SimpleNamespace(begin_create_or_update=self._put('rule'))

    def _subnet(self, rg, vnet, name):
        assert (rg, vnet, name) == ('vnet-rg', 'hub', 'AzureBastionSubnet')
        return self.subnet

    def _nsg(self, rg, name):
        if name not in self.nsgs:
            raise ResourceNotFoundError(message=f'NSG {name} not found')
        return _Nsg(self.nsgs[name])

    def _put(self, what):
        def put(*args, headers=None, **_):
            self.writes.append((what, args, headers))
            return _Poller()
        return put


@pytest.fixture
def arm(monkeypatch):
    """Install an _Arm as every subscription's network client; call it with the _Arm's arguments."""
    holder = {}

    def install(**kwargs):
        holder['arm'] = _Arm(**kwargs)
        return holder['arm']

    def cf_network(_cli_ctx, subscription_id=None):
        holder['arm'].subscriptions.append(subscription_id)
        return holder['arm']
    monkeypatch.setattr(nsg, 'cf_network', cf_network)
    return install


def _rules(ports=None, without=()):
    return [dict(rule_to_arm(rule), etag=f'W/"{rule.name}-1"') for rule in bastion_rule_set(ports, NETWORK)
            if rule.name not in without]


def _nsg_json(name, rules):
    return {'id': NSG_PATH + name, 'name': name, 'etag': f'W/"{name}-1"', 'properties': {'securityRules': rules}}


def test_the_subnet_is_read_in_the_virtual_networks_own_subscription(arm):
    fake = arm(kerberos=True)
    target = nsg.find_bastion_subnet(None, 'rg', 'bh')
    assert (target.subscription, target.resource_group, target.vnet) == ('sub-vnet', 'vnet-rg', 'hub')
    assert target.subnet is fake.subnet and target.kerberos and target.nsg_id is None
    assert fake.subscriptions == [None, 'sub-vnet']


def test_a_host_without_a_subnet_is_refused(arm):
    arm(host_subnet_id=None)
    with pytest.raises(Refused, match="Bastion host 'bh' has no IP configuration with a subnet"):
        nsg.find_bastion_subnet(None, 'rg', 'bh')


def test_bastion_prefixes_put_the_single_prefix_first():
    subnet = SimpleNamespace(address_prefix='10.0.1.0/26', address_prefixes=['10.0.2.0/26'])
    assert nsg.bastion_prefixes(subnet) == ['10.0.1.0/26', '10.0.2.0/26']
    assert nsg.bastion_prefixes(SimpleNamespace(address_prefix=None, address_prefixes=None)) == []


def test_read_network_takes_the_address_space_dns_servers_and_kerberos():
    vnet = SimpleNamespace(location='northeurope', address_space=SimpleNamespace(address_prefixes=['10.0.0.0/16']),
                           dhcp_options=SimpleNamespace(dns_servers=['10.0.0.4']))
    subnet = SimpleNamespace(address_prefix='10.0.1.0/26', address_prefixes=None)
    client = SimpleNamespace(virtual_networks=SimpleNamespace(get=lambda rg, name: vnet))
    target = nsg.BastionSubnet('s', 'vnet-rg', 'hub', subnet, client, kerberos=True)
    assert nsg.read_network(target) == (Network(('10.0.1.0/26',), ('10.0.0.0/16',), ('10.0.0.4',), True),
                                        'northeurope')


def test_a_bare_subnet_gets_a_new_nsg_whole_then_the_association(arm):
    fake = arm()
    result = nsg.apply(None, 'rg', 'bh', None)
    assert [(what, args[:2]) for what, args, _ in fake.writes] == [
        ('nsg', ('vnet-rg', 'bh-nsg')), ('subnet', ('vnet-rg', 'hub'))]
    created, association = fake.writes
    assert created[2] == {'If-None-Match': '*'}       # never replaces an NSG someone created meanwhile
    assert {r.name for r in created[1][2].security_rules} == {r.name for r in bastion_rule_set(None, NETWORK)}
    assert created[1][2].location == 'westeurope'
    assert association[2] == {'If-Match': 'W/"subnet-1"'}
    assert association[1][3].network_security_group.id == NSG_PATH + 'bh-nsg'
    assert result['createdNsg'] and result['associated'] and result['nsg'] == NSG_PATH + 'bh-nsg'
    assert result['changes'][0] == "create NSG 'bh-nsg' (resource group 'vnet-rg')"
    assert result['changes'][-1] == "associate 'bh-nsg' (resource group 'vnet-rg') with AzureBastionSubnet"


def test_an_unassociated_nsg_of_that_name_is_merged_into_not_replaced(arm):
    fake = arm(nsgs={'bh-nsg': _nsg_json('bh-nsg', _rules())})
    result = nsg.apply(None, 'rg', 'bh', None)
    assert not result['createdNsg'] and result['associated']
    assert [what for what, _, _ in fake.writes] == ['subnet']


def test_a_compliant_associated_nsg_is_left_alone(arm):
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules())}, nsg_id=NSG_PATH + 'mine')
    result = nsg.apply(None, 'rg', 'bh', None)
    assert fake.writes == [] and result['changes'] == [] and not result['associated']


THEIR_RULE = {'name': 'their-rule', 'etag': 'e', 'properties': {
    'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourceAddressPrefix': '10.9.0.0/16',
    'sourcePortRange': '*', 'destinationAddressPrefix': '*', 'destinationPortRange': '22'}}


def test_a_missing_rule_is_added_by_its_own_put_that_cannot_overwrite(arm):
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules() + [THEIR_RULE])}, nsg_id=NSG_PATH + 'mine')
    nsg.apply(None, 'rg', 'bh', ['9000'], yes=True)
    assert [(what, args[:3], headers) for what, args, headers in fake.writes] == [
        ('rule', ('vnet-rg', 'mine', 'AllowCustomPortsOutbound'), {'If-None-Match': '*'})]


def test_a_rule_of_ours_is_updated_only_in_the_version_that_was_read(arm):
    rules = _rules(['9000'])
    custom = next(r for r in rules if r['name'] == 'AllowCustomPortsOutbound')
    custom['properties']['destinationPortRange'] = '9001'
    fake = arm(nsgs={'mine': _nsg_json('mine', rules + [THEIR_RULE])}, nsg_id=NSG_PATH + 'mine')
    result = nsg.apply(None, 'rg', 'bh', ['9000'], yes=True)
    assert [(what, args[2], headers) for what, args, headers in fake.writes] == [
        ('rule', 'AllowCustomPortsOutbound', {'If-Match': 'W/"AllowCustomPortsOutbound-1"'})]
    assert result['changes'] == ['update AllowCustomPortsOutbound: Outbound 105 Allow * -> VirtualNetwork ports 9000 '
                                 '(was priority 105, Allow * -> VirtualNetwork ports 9001)']


def test_an_associated_nsg_azure_would_refuse_is_written_whole_in_the_version_read(arm):
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules(without=('AllowHttpOutbound',)) + [THEIR_RULE])},
               nsg_id=NSG_PATH + 'mine')
    nsg.apply(None, 'rg', 'bh', None, yes=True)
    assert [(what, args[:2], headers) for what, args, headers in fake.writes] == [
        ('nsg', ('vnet-rg', 'mine'), {'If-Match': 'W/"mine-1"'})]
    written = {rule.name for rule in fake.writes[0][1][2].security_rules}
    assert {'AllowHttpOutbound', 'their-rule'} <= written


def test_changes_to_an_existing_nsg_are_asked_about_and_refused_without_a_terminal(arm, monkeypatch):
    monkeypatch.setattr('sys.stdin', SimpleNamespace(isatty=lambda: False))
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules())}, nsg_id=NSG_PATH + 'mine')
    with pytest.raises(Refused) as refused:
        nsg.apply(None, 'rg', 'bh', ['9000'])
    assert refused.value.kind is Kind.USAGE and '--yes' in refused.value.recommendation
    assert 'add AllowCustomPortsOutbound' in refused.value.message
    assert fake.writes == []


def test_a_second_nsg_name_for_an_associated_subnet_is_refused(arm):
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules())}, nsg_id=NSG_PATH + 'mine')
    with pytest.raises(Refused) as refused:
        nsg.apply(None, 'rg', 'bh', None, nsg_name='other', yes=True)
    assert refused.value.kind is Kind.USAGE
    assert "already uses NSG 'mine'; --nsg-name 'other' would replace it" in refused.value.message
    assert fake.writes == []
    nsg.apply(None, 'rg', 'bh', None, nsg_name='MINE', yes=True)      # its own name, in any case, is fine


def test_a_breaking_deny_writes_nothing_and_recommends_override_denies(arm):
    deny = {'name': 'their-deny', 'etag': 'd', 'properties': {
        'priority': 90, 'direction': 'Outbound', 'access': 'Deny', 'protocol': '*', 'sourceAddressPrefix': '*',
        'sourcePortRange': '*', 'destinationAddressPrefix': 'VirtualNetwork', 'destinationPortRange': '22'}}
    fake = arm(nsgs={'mine': _nsg_json('mine', _rules() + [deny])}, nsg_id=NSG_PATH + 'mine')
    with pytest.raises(Refused) as refused:
        nsg.apply(None, 'rg', 'bh', None, yes=True)
    assert refused.value.message.startswith("Not changed: NSG 'mine' (resource group 'vnet-rg') would still lack")
    assert '--override-denies' in refused.value.recommendation
    assert fake.writes == []


def test_check_host_refuses_an_nsg_name_that_does_not_exist(arm):
    arm()
    with pytest.raises(Refused) as refused:
        nsg.check_host(None, 'rg', 'bh', None, nsg_name='typo-nsg')
    assert refused.value.kind is Kind.NOT_FOUND and "'typo-nsg' was not found" in refused.value.message


def test_check_host_reports_a_bare_subnet_under_the_host_name(arm):
    arm()
    report = nsg.check_host(None, 'rg', 'bh', None)
    assert report.host == 'bh' and not report.ok
    assert any(f.kind == 'no-nsg' for f in report.findings)


def test_a_compliant_report_exits_as_usual_a_failing_one_with_3_and_the_reason(arm):
    arm(nsgs={'mine': _nsg_json('mine', _rules())}, nsg_id=NSG_PATH + 'mine')
    cli = RecordingCli()
    nsg.exit_when_not_compliant(cli, nsg.check_host(None, 'rg', 'bh', None))
    assert cli.handlers == []
    arm(nsgs={'mine': _nsg_json('mine', _rules(without=('AllowHttpOutbound',)))}, nsg_id=NSG_PATH + 'mine')
    nsg.exit_when_not_compliant(cli, nsg.check_host(None, 'rg', 'bh', None))
    with pytest.raises(SystemExit) as exited:
        cli.handlers[0](cli)
    assert exited.value.code == 3


def test_nsg_show_lists_the_rule_set_with_the_extra_ports():
    rows = nsg.nsg_show(['8080'])
    assert {'name': 'AllowCustomPortsOutbound', 'ports': '8080'}.items() <= rows[5].items()
    assert rows[-1]['access'] == 'Deny'
