"""The data plane's access rules alone (no sockets): NSG outbound evaluation, IP connect, SKU checks."""
import pytest

from bastion_emulator.dataplane import policy


def rule(name, access, priority, direction="Outbound", **props):
    base = {"direction": direction, "access": access, "priority": priority, "protocol": "*",
            "sourceAddressPrefix": "*", "destinationAddressPrefix": "VirtualNetwork"}
    base.update(props)
    return {"name": name, "properties": base}


def nsg(*rules):
    return {"name": "bastion-nsg", "properties": {"securityRules": list(rules)}}


def test_no_nsg_allows_everything():
    assert policy.evaluate_outbound(None, "10.0.0.4", 8080).allowed


def test_default_rules_allow_vnet_when_nsg_has_no_user_rules():
    verdict = policy.evaluate_outbound(nsg(), "10.0.0.4", 8080)
    assert verdict.allowed and verdict.rule_name == "AllowVnetOutBound"


@pytest.mark.parametrize("port, allowed, decided_by", [
    (22, True, "AllowSshRdp"), (3389, True, "AllowSshRdp"), (5000, True, "AllowRange"), (5010, True, "AllowRange"),
    (5011, False, "DenyVnet"), (80, False, "DenyVnet"),
])
def test_ports_lists_and_ranges_by_priority(port, allowed, decided_by):
    rules = nsg(rule("DenyVnet", "Deny", 300, destinationPortRange="*"),
                rule("AllowSshRdp", "Allow", 100, destinationPortRanges=["22", "3389"]),
                rule("AllowRange", "Allow", 200, destinationPortRange="5000-5010"))
    verdict = policy.evaluate_outbound(rules, "10.0.0.4", port)
    assert (verdict.allowed, verdict.rule_name) == (allowed, decided_by)


def test_inbound_udp_and_other_destinations_do_not_match():
    rules = nsg(rule("InboundDeny", "Deny", 100, direction="Inbound", destinationPortRange="*"),
                rule("UdpDeny", "Deny", 110, protocol="Udp", destinationPortRange="*"),
                rule("InternetDeny", "Deny", 120, destinationAddressPrefix="Internet", destinationPortRange="*"),
                rule("OtherSubnetDeny", "Deny", 130, destinationAddressPrefix="10.9.0.0/24", destinationPortRange="*"),
                rule("ThisSubnetDeny22", "Deny", 140, destinationAddressPrefix="10.0.0.0/24",
                     destinationPortRange="22"))
    assert policy.evaluate_outbound(rules, "10.0.0.4", 3389).rule_name == "AllowVnetOutBound"
    verdict = policy.evaluate_outbound(rules, "10.0.0.4", 22)
    assert not verdict.allowed and verdict.rule_name == "ThisSubnetDeny22"


def test_nsg_default_rules_from_the_document_are_used():
    document = nsg()
    document["properties"]["defaultSecurityRules"] = [rule("DenyAllOutBound", "Deny", 65500,
                                                           destinationAddressPrefix="*", destinationPortRange="*")]
    assert not policy.evaluate_outbound(document, "10.0.0.4", 22).allowed


def test_check_nsg_message_names_port_rule_and_nsg():
    with pytest.raises(policy.AccessRefused) as refused:
        policy.check_nsg(nsg(rule("DenyAll", "Deny", 100, destinationPortRange="*")), "10.0.0.4", 8080)
    assert refused.value.status == 403
    assert all(word in refused.value.message for word in ("8080", "DenyAll", "bastion-nsg"))


def test_host_connect_ip_and_vm_id():
    sub_rg = "/subscriptions/s/resourceGroups/rg"
    assert policy.host_connect_ip(f"{sub_rg}/providers/Microsoft.Network/bh-hostConnect/10.0.0.4") == "10.0.0.4"
    assert policy.host_connect_ip(f"{sub_rg}/providers/microsoft.network/BH-HOSTCONNECT/10.0.0.4") == "10.0.0.4"
    assert policy.host_connect_ip(f"{sub_rg}/providers/Microsoft.Compute/virtualMachines/vm") is None
    assert policy.is_vm_id(f"{sub_rg}/providers/Microsoft.Compute/virtualMachines/vm")
    assert not policy.is_vm_id(f"{sub_rg}/providers/Microsoft.Compute/virtualMachines/vm/extensions/x")


@pytest.mark.parametrize("bastion, status", [
    ({"sku": {"name": "Basic"}, "properties": {}}, 403),
    ({"sku": {"name": "Standard"}, "properties": {"enableTunneling": False}}, 403),
    ({"sku": {"name": "Premium"}, "properties": {"enableTunneling": True}}, None),
    ({"sku": {"name": "Developer"}, "properties": {}}, None),
])
def test_check_native_client(bastion, status):
    if status is None:
        policy.check_native_client(bastion)
    else:
        with pytest.raises(policy.AccessRefused) as refused:
            policy.check_native_client(bastion)
        assert refused.value.status == status


def test_ip_connect_rules():
    enabled = {"sku": {"name": "Standard"}, "properties": {"enableIpConnect": True}}
    policy.check_ip_connect(enabled, 22)
    policy.check_ip_connect(enabled, 3389)
    for bastion, port in ((enabled, 8080), ({"sku": {"name": "Standard"}, "properties": {}}, 22),
                          ({"sku": {"name": "Developer"}, "properties": {"enableIpConnect": True}}, 22)):
        with pytest.raises(policy.AccessRefused):
            policy.check_ip_connect(bastion, port)


@pytest.mark.parametrize("value", ["0", "65536", "ssh", None, ""])
def test_parse_port_refuses_non_ports(value):
    with pytest.raises(policy.AccessRefused):
        policy.parse_port(value)


# --- the wire as Microsoft's client sends it ------------------------------------------------------
def test_an_empty_token_field_is_refused_an_absent_one_is_not():
    with pytest.raises(policy.AccessRefused) as refused:
        policy.check_mint_form({"aztoken": "t", "token": ""})
    assert refused.value.status == 400
    policy.check_mint_form({"aztoken": "t"})


def test_developer_sessions_live_on_the_data_pod_and_api_connection_on_the_dns_name():
    developer = {"sku": {"name": "Developer"}, "properties": {"dnsName": "127.0.0.1:8443"}}
    pod = policy.data_pod_host("127.0.0.1:8443")
    assert pod == "localhost:8443"
    policy.check_developer_host(developer, pod, data_pod=True)
    policy.check_developer_host(developer, "127.0.0.1:8443", data_pod=False)
    for host, data_pod in (("127.0.0.1:8443", True), (pod, False)):
        with pytest.raises(policy.AccessRefused):
            policy.check_developer_host(developer, host, data_pod=data_pod)
    standard = {"sku": {"name": "Standard"}, "properties": {"dnsName": "127.0.0.1:9443"}}
    policy.check_developer_host(standard, "127.0.0.1:9443", data_pod=True)


@pytest.mark.parametrize("origin, host, refused", [
    (None, "bst.example", False),
    ("https://bst.example", "bst.example", False),
    ("https://bst.example", "bst.example:443", False),
    ("https://127.0.0.1:8443", "127.0.0.1:8443", False),
    ("https://evil.example", "bst.example", True),
    ("http://bst.example", "bst.example", True),
])
def test_only_the_hosts_own_origin_opens_a_websocket(origin, host, refused):
    assert bool(policy.websocket_origin_refusal(origin, host)) is refused


def test_a_rule_whose_source_ports_leave_out_the_connections_does_not_apply():
    narrowed = rule("AllowSshRdp", "Allow", 100, destinationPortRanges=["22", "3389"], sourcePortRange="1-2")
    deny = rule("DenyVnet", "Deny", 4000, destinationPortRange="*")
    verdict = policy.evaluate_outbound(nsg(narrowed, deny), "10.0.0.4", 22)
    assert (verdict.allowed, verdict.rule_name) == (False, "DenyVnet")
    every = dict(narrowed, properties=dict(narrowed["properties"], sourcePortRange="*"))
    assert policy.evaluate_outbound(nsg(every, deny), "10.0.0.4", 22).rule_name == "AllowSshRdp"
    dynamic = dict(narrowed, properties=dict(narrowed["properties"], sourcePortRange=None,
                                             sourcePortRanges=["1024-65535"]))
    assert policy.evaluate_outbound(nsg(dynamic, deny), "10.0.0.4", 22).rule_name == "AllowSshRdp"


def test_a_side_given_only_by_application_security_groups_is_not_every_address():
    to_group = rule("AllowWeb", "Allow", 100, destinationAddressPrefix=None, destinationPortRange="*",
                    destinationApplicationSecurityGroups=[{"id": "/subscriptions/s/.../applicationSecurityGroups/w"}])
    deny = rule("DenyVnet", "Deny", 4000, destinationPortRange="*")
    assert policy.evaluate_outbound(nsg(to_group, deny), "10.0.0.4", 8080).rule_name == "DenyVnet"
