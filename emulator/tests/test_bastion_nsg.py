"""Azure's NSG check on AzureBastionSubnet (NetworkSecurityGroupNotCompliantForAzureBastionSubnet): the rule model,
then on the wire for association, rule PUT, NSG PUT and rule DELETE."""
import time
import uuid

import pytest

from bastion_emulator.arm.bastion_nsg import unmet_flows

SUBNET = "10.41.1.0/26"
CODE = "NetworkSecurityGroupNotCompliantForAzureBastionSubnet"


def rule(name, direction, priority, source, destination, ports, access="Allow", protocol="*"):
    ports = ports if isinstance(ports, list) else [ports]
    return {"name": name, "properties": {
        "priority": priority, "direction": direction, "access": access, "protocol": protocol,
        "sourceAddressPrefix": source, "sourcePortRange": "*", "destinationAddressPrefix": destination,
        "destinationPortRanges": ports}}


def published(**replace):
    """Microsoft's list for AzureBastionSubnet (learn.microsoft.com/azure/bastion/bastion-nsg), some rules replaced
    (None drops one)."""
    rules = {
        "AllowHttpsInbound": rule("AllowHttpsInbound", "Inbound", 120, "Internet", "*", "443", protocol="Tcp"),
        "AllowGatewayManagerInbound": rule("AllowGatewayManagerInbound", "Inbound", 130, "GatewayManager", "*",
                                           "443", protocol="Tcp"),
        "AllowAzureLoadBalancerInbound": rule("AllowAzureLoadBalancerInbound", "Inbound", 140, "AzureLoadBalancer",
                                              "*", "443", protocol="Tcp"),
        "AllowBastionHostCommunication": rule("AllowBastionHostCommunication", "Inbound", 150, "VirtualNetwork",
                                              "VirtualNetwork", ["8080", "5701"]),
        "AllowSshRdpOutbound": rule("AllowSshRdpOutbound", "Outbound", 100, "*", "VirtualNetwork", ["22", "3389"]),
        "AllowAzureCloudOutbound": rule("AllowAzureCloudOutbound", "Outbound", 110, "*", "AzureCloud", "443",
                                        protocol="Tcp"),
        "AllowBastionCommunication": rule("AllowBastionCommunication", "Outbound", 120, "VirtualNetwork",
                                          "VirtualNetwork", ["8080", "5701"]),
        "AllowHttpOutbound": rule("AllowHttpOutbound", "Outbound", 130, "*", "Internet", "80"),
    }
    rules.update(replace)
    return [r for r in rules.values() if r is not None]


def test_the_published_list_is_compliant():
    assert unmet_flows(published(), [SUBNET]) == []


@pytest.mark.parametrize("dropped", ["AllowHttpsInbound", "AllowGatewayManagerInbound",
                                     "AllowAzureLoadBalancerInbound", "AllowBastionHostCommunication",
                                     "AllowSshRdpOutbound", "AllowAzureCloudOutbound", "AllowBastionCommunication",
                                     "AllowHttpOutbound"])
def test_each_published_rule_is_required(dropped):
    assert {flow.split()[0] for flow in unmet_flows(published(**{dropped: None}), [SUBNET])} == {dropped}


def test_default_rules_and_names_do_not_count_the_effect_does():
    renamed = [dict(r, name=f"corp-{i}") for i, r in enumerate(published())]
    assert unmet_flows(renamed, [SUBNET]) == []
    # AllowVnetOutBound (65000) would let 22 through, but only explicit rules count
    unmet = unmet_flows(published(AllowSshRdpOutbound=None), [SUBNET])
    assert unmet == ["AllowSshRdpOutbound 22", "AllowSshRdpOutbound 3389"]


def test_outbound_22_alone_is_not_enough():
    only_ssh = rule("AllowSshRdpOutbound", "Outbound", 100, "*", "VirtualNetwork", "22")
    assert unmet_flows(published(AllowSshRdpOutbound=only_ssh), [SUBNET]) == ["AllowSshRdpOutbound 3389"]


def test_https_inbound_from_a_set_of_public_addresses_is_enough():
    offices = dict(rule("AllowHttpsInbound", "Inbound", 120, "*", "*", "443", protocol="Tcp"))
    offices["properties"] = dict(offices["properties"], sourceAddressPrefix=None,
                                 sourceAddressPrefixes=["131.107.0.0/16", "20.190.128.5"])
    assert unmet_flows(published(AllowHttpsInbound=offices), [SUBNET]) == []
    private = rule("AllowHttpsInbound", "Inbound", 120, "10.0.0.0/8", "*", "443", protocol="Tcp")
    assert unmet_flows(published(AllowHttpsInbound=private), [SUBNET]) == ["AllowHttpsInbound 443"]


def test_bastion_side_may_be_the_subnet_itself():
    to_subnet = rule("AllowGatewayManagerInbound", "Inbound", 130, "GatewayManager", SUBNET, "443", protocol="Tcp")
    assert unmet_flows(published(AllowGatewayManagerInbound=to_subnet), [SUBNET]) == []
    elsewhere = rule("AllowGatewayManagerInbound", "Inbound", 130, "GatewayManager", "10.41.2.0/24", "443")
    assert unmet_flows(published(AllowGatewayManagerInbound=elsewhere), [SUBNET]) == ["AllowGatewayManagerInbound 443"]


def test_a_deny_that_comes_first_breaks_a_flow_a_deny_by_prefix_does_not():
    assert unmet_flows(published() + [rule("no-web", "Inbound", 110, "Internet", "*", "443", access="Deny")],
                       [SUBNET]) == ["AllowHttpsInbound 443"]
    assert unmet_flows(published() + [rule("after", "Inbound", 200, "Internet", "*", "443", access="Deny")],
                       [SUBNET]) == []
    assert unmet_flows(published() + [rule("one-range", "Inbound", 110, "198.51.100.0/24", "*", "443",
                                           access="Deny")], [SUBNET]) == []


def test_udp_only_does_not_carry_bastion_flows():
    udp = rule("AllowBastionCommunication", "Outbound", 120, "VirtualNetwork", "VirtualNetwork", ["8080", "5701"],
               protocol="Udp")
    assert unmet_flows(published(AllowBastionCommunication=udp), [SUBNET]) == [
        "AllowBastionCommunication 8080", "AllowBastionCommunication 5701"]


# --- on the wire ----------------------------------------------------------------------------------------------
def _settled(arm, path):
    deadline = time.monotonic() + 5
    while arm.call("GET", path).json()["properties"]["provisioningState"] != "Succeeded":
        assert time.monotonic() < deadline, f"{path} never settled"
        time.sleep(0.05)


@pytest.fixture(name="net")
def fixture_net(arm):
    suffix = uuid.uuid4().hex[:6]
    ids = {"vnet": arm.network_id("virtualNetworks", f"nsgchk-{suffix}"),
           "good": arm.network_id("networkSecurityGroups", f"good-{suffix}"),
           "bad": arm.network_id("networkSecurityGroups", f"bad-{suffix}")}
    ids["subnet"] = ids["vnet"] + "/subnets/AzureBastionSubnet"
    ids["other"] = ids["vnet"] + "/subnets/workload"
    assert arm.call("PUT", ids["vnet"], {"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.41.0.0/16"]},
        "subnets": [{"name": "AzureBastionSubnet", "properties": {"addressPrefix": SUBNET}},
                    {"name": "workload", "properties": {"addressPrefix": "10.41.2.0/24"}}]}}).status_code == 201
    for key, rules in (("good", published()), ("bad", published(AllowAzureCloudOutbound=None))):
        assert arm.call("PUT", ids[key], {"location": "westeurope",
                                          "properties": {"securityRules": rules}}).status_code == 201
    for key in ("vnet", "good", "bad"):
        _settled(arm, ids[key])
    yield ids
    for key in ("subnet", "other"):
        arm.call("PUT", ids[key], {"properties": {"addressPrefix": SUBNET if key == "subnet" else "10.41.2.0/24"}})
    for key in ("vnet", "good", "bad"):
        arm.call("DELETE", ids[key])


def _associate(arm, subnet_id, nsg_id, prefix=SUBNET):
    answer = arm.call("PUT", subnet_id, {"properties": {"addressPrefix": prefix,
                                                        "networkSecurityGroup": {"id": nsg_id}}})
    if answer.status_code < 300:
        _settled(arm, subnet_id)
    return answer


def _refused(answer, nsg_name):
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == CODE
    assert error["message"] == (f"Network security group {nsg_name} does not have necessary rules for Azure Bastion "
                                "Subnet AzureBastionSubnet.")


def test_association_of_a_non_compliant_nsg_is_refused_and_nothing_changes(arm, net):
    _refused(_associate(arm, net["subnet"], net["bad"]), net["bad"].rsplit("/", 1)[1])
    assert "networkSecurityGroup" not in arm.call("GET", net["subnet"]).json()["properties"]
    assert _associate(arm, net["other"], net["bad"], "10.41.2.0/24").status_code == 200   # other subnets: anything
    assert _associate(arm, net["subnet"], net["good"]).status_code == 200


def test_rule_changes_of_an_associated_nsg_are_checked(arm, net):
    assert _associate(arm, net["subnet"], net["good"]).status_code == 200
    name = net["good"].rsplit("/", 1)[1]
    ssh_only = rule("AllowSshRdpOutbound", "Outbound", 100, "*", "VirtualNetwork", "22")
    _refused(arm.call("PUT", net["good"] + "/securityRules/AllowSshRdpOutbound", ssh_only), name)
    _refused(arm.call("DELETE", net["good"] + "/securityRules/AllowHttpOutbound"), name)
    _refused(arm.call("PUT", net["good"], {"location": "westeurope", "properties": {
        "securityRules": published(AllowHttpsInbound=None)}}), name)
    deny_first = rule("no-cloud", "Outbound", 105, "*", "AzureCloud", "443", access="Deny")
    _refused(arm.call("PUT", net["good"] + "/securityRules/no-cloud", deny_first), name)
    rules = arm.call("GET", net["good"]).json()["properties"]["securityRules"]
    assert sorted(r["name"] for r in rules) == sorted(r["name"] for r in published())
    # a change that keeps every flow is accepted
    extra = rule("their-app", "Inbound", 300, "10.0.0.0/8", "*", "8443")
    assert arm.call("PUT", net["good"] + "/securityRules/their-app", extra).status_code == 201


def test_rules_by_application_security_group_and_source_ports_are_accepted_and_returned(arm, net):
    asg_id = arm.network_id("applicationSecurityGroups", f"web-{uuid.uuid4().hex[:6]}")
    to_web = {"name": "to-web", "properties": {
        "priority": 300, "direction": "Outbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*",
        "sourcePortRanges": ["1024-65535"], "destinationApplicationSecurityGroups": [{"id": asg_id}],
        "destinationPortRange": "443"}}
    missing = arm.call("PUT", net["good"] + "/securityRules/to-web", to_web)     # the group does not exist yet
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "InvalidResourceReference"
    assert arm.call("PUT", asg_id, {"location": "westeurope"}).status_code == 201
    assert arm.call("PUT", net["good"] + "/securityRules/to-web", to_web).status_code == 201
    read = arm.call("GET", net["good"] + "/securityRules/to-web").json()["properties"]
    assert read["destinationApplicationSecurityGroups"] == [{"id": asg_id}]
    assert read["sourcePortRanges"] == ["1024-65535"] and read["destinationAddressPrefixes"] == []
    neither = dict(to_web["properties"], destinationApplicationSecurityGroups=[])
    refused = arm.call("PUT", net["good"] + "/securityRules/to-nothing", {"properties": neither})
    assert refused.status_code == 400 and "destinationApplicationSecurityGroups" in refused.json()["error"]["message"]
    arm.call("DELETE", net["good"] + "/securityRules/to-web")
    arm.call("DELETE", asg_id)
