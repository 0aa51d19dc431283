"""nsg/rule_set.py: the NSG rule set for AzureBastionSubnet, its rows and its ARM JSON."""
from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_as_row, rule_to_arm, target_ports


def test_rule_set_keeps_ssh_and_rdp_and_adds_the_ports():
    rules = {r.name: r for r in bastion_rule_set(['22', '8000-8010'])}
    assert rules['AllowSshRdpOutbound'].ports == ('22', '3389')       # Azure requires both, whatever --ports says
    assert rules['AllowCustomPortsOutbound'].ports == ('8000-8010',)
    assert rules['AllowCustomPortsOutbound'].destination == 'VirtualNetwork'
    assert rules['DenyOtherVnetOutbound'].access == 'Deny'
    assert rule_as_row(rules['AllowCustomPortsOutbound'])['ports'] == '8000-8010'
    assert target_ports(['22', '8000-8010']) == ['22', '3389', '8000-8010']
    assert 'AllowCustomPortsOutbound' not in {r.name for r in bastion_rule_set(['22'])}
    assert bastion_rule_set(['22']) == bastion_rule_set(['3389']) == bastion_rule_set()


def test_rule_to_arm_uses_single_or_plural_port_fields():
    rules = {r.name: r for r in bastion_rule_set()}
    assert rule_to_arm(rules['AllowHttpsInbound'])['properties']['destinationPortRange'] == '443'
    assert rule_to_arm(rules['AllowSshRdpOutbound'])['properties']['destinationPortRanges'] == ['22', '3389']
