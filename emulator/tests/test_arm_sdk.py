"""The real azure-mgmt-network client round-trips resources through the emulator's ARM."""
import socket
import uuid

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models

RG = "demo-rg"
LOCATION = "westeurope"


class EmulatorCredential:  # pylint: disable=too-few-public-methods
    """Fetches a token from the emulator's token endpoint, like any client-credentials credential."""

    def __init__(self, arm_http):
        self._arm = arm_http

    def get_token(self, *_scopes, **_kwargs):
        answer = self._arm.fetch_token(self._arm.ready["client_secret"]).json()
        return AccessToken(answer["access_token"], 4102444800)


@pytest.fixture(scope="module")
def network(arm):
    ready = arm.ready
    return NetworkManagementClient(EmulatorCredential(arm), ready["subscription"], base_url=ready["arm"],
                                   connection_verify=ready["ca_bundle"], polling_interval=0.05,
                                   credential_scopes=["https://management.core.windows.net//.default"])


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _bastion_network(network, vnet_name, pip_name, bastion_prefix="10.20.1.0/26"):
    network.virtual_networks.begin_create_or_update(RG, vnet_name, models.VirtualNetwork(
        location=LOCATION, address_space=models.AddressSpace(address_prefixes=["10.20.0.0/16"]),
        subnets=[models.Subnet(name="AzureBastionSubnet", address_prefix=bastion_prefix)])).result()
    pip = network.public_ip_addresses.begin_create_or_update(RG, pip_name, models.PublicIPAddress(
        location=LOCATION, sku=models.PublicIPAddressSku(name="Standard"),
        public_ip_allocation_method="Static")).result()
    subnet = network.subnets.get(RG, vnet_name, "AzureBastionSubnet")
    return subnet, pip


def _host(subnet, pip, sku="Standard", **features):
    return models.BastionHost(location=LOCATION, sku=models.Sku(name=sku), ip_configurations=[
        models.BastionHostIPConfiguration(name="IpConf", subnet=models.SubResource(id=subnet.id),
                                          public_ip_address=models.SubResource(id=pip.id))], **features)


def test_seeded_hosts_are_listed_by_group_and_subscription(network):
    by_group = {h.name: h for h in network.bastion_hosts.list_by_resource_group(RG)}
    by_sub = {h.name for h in network.bastion_hosts.list()}
    assert {"demo-bastion", "basic-bastion"} <= set(by_group) and {"demo-bastion", "basic-bastion"} <= by_sub
    demo = by_group["demo-bastion"]
    assert demo.sku.name == "Standard" and demo.enable_tunneling and demo.enable_ip_connect
    host, port = demo.dns_name.split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert by_group["basic-bastion"].dns_name != demo.dns_name


def test_bastion_host_lifecycle(network):
    vnet_name, pip_name, host_name = _name("vnet"), _name("pip"), _name("bastion")
    subnet, pip = _bastion_network(network, vnet_name, pip_name)
    created = network.bastion_hosts.begin_create_or_update(RG, host_name,
                                                           _host(subnet, pip, enable_tunneling=True)).result()
    assert created.provisioning_state == "Succeeded"
    assert created.enable_tunneling is True and created.sku.name == "Standard"
    assert created.ip_configurations[0].subnet.id.lower() == subnet.id.lower()
    assert created.dns_name.startswith("127.0.0.1:")
    assert created.etag

    tagged = network.bastion_hosts.begin_update(RG, host_name, models.BastionHostUpdate(tags={"env": "test"})).result()
    assert tagged.tags == {"env": "test"}
    assert network.bastion_hosts.get(RG, host_name).tags == {"env": "test"}

    dataplane_port = int(created.dns_name.split(":")[1])
    with socket.create_connection(("127.0.0.1", dataplane_port), timeout=5):
        pass  # the host's own data-plane listener is up

    network.bastion_hosts.begin_delete(RG, host_name).result()
    with pytest.raises(ResourceNotFoundError):
        network.bastion_hosts.get(RG, host_name)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", dataplane_port), timeout=5).close()
    network.virtual_networks.begin_delete(RG, vnet_name).result()
    network.public_ip_addresses.begin_delete(RG, pip_name).result()


def test_vnet_subnet_and_nsg_round_trip(network):
    # a workload subnet: on AzureBastionSubnet this one-rule NSG would be refused (test_bastion_nsg.py)
    vnet_name, nsg_name = _name("vnet"), _name("nsg")
    nsg = network.network_security_groups.begin_create_or_update(RG, nsg_name, models.NetworkSecurityGroup(
        location=LOCATION)).result()
    assert {r.name: r.priority for r in nsg.default_security_rules} == {
        "AllowVnetInBound": 65000, "AllowAzureLoadBalancerInBound": 65001, "DenyAllInBound": 65500,
        "AllowVnetOutBound": 65000, "AllowInternetOutBound": 65001, "DenyAllOutBound": 65500}
    rule = network.security_rules.begin_create_or_update(RG, nsg_name, "AllowSshRdpOutbound", models.SecurityRule(
        priority=100, direction="Outbound", access="Allow", protocol="*", source_address_prefix="*",
        source_port_range="*", destination_address_prefix="VirtualNetwork",
        destination_port_ranges=["22", "3389"])).result()
    assert rule.destination_port_ranges == ["22", "3389"]
    assert [r.name for r in network.security_rules.list(RG, nsg_name)] == ["AllowSshRdpOutbound"]

    network.virtual_networks.begin_create_or_update(RG, vnet_name, models.VirtualNetwork(
        location=LOCATION, address_space=models.AddressSpace(address_prefixes=["10.30.0.0/16"]))).result()
    subnet = network.subnets.begin_create_or_update(RG, vnet_name, "workload", models.Subnet(
        address_prefix="10.30.1.0/26", network_security_group=models.NetworkSecurityGroup(id=nsg.id))).result()
    assert subnet.network_security_group.id == nsg.id
    assert [s.name for s in network.virtual_networks.get(RG, vnet_name).subnets] == ["workload"]
    assert network.network_security_groups.get(RG, nsg_name).subnets[0].id == subnet.id

    with pytest.raises(HttpResponseError) as in_use:
        network.network_security_groups.begin_delete(RG, nsg_name).result()
    assert in_use.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"

    network.security_rules.begin_delete(RG, nsg_name, "AllowSshRdpOutbound").result()
    assert list(network.security_rules.list(RG, nsg_name)) == []
    network.virtual_networks.begin_delete(RG, vnet_name).result()
    network.network_security_groups.begin_delete(RG, nsg_name).result()
    with pytest.raises(ResourceNotFoundError):
        network.network_security_groups.get(RG, nsg_name)


def test_public_ip_is_static_with_an_address(network):
    name = _name("pip")
    pip = network.public_ip_addresses.begin_create_or_update(RG, name, models.PublicIPAddress(
        location=LOCATION, sku=models.PublicIPAddressSku(name="Standard"))).result()
    assert pip.public_ip_allocation_method == "Static" and pip.ip_address
    assert network.public_ip_addresses.get(RG, name).ip_address == pip.ip_address
    network.public_ip_addresses.begin_delete(RG, name).result()


def test_nic_of_seeded_vm_has_its_private_ip(network):
    nic = network.network_interfaces.get(RG, "linux-vm-nic")
    assert nic.ip_configurations[0].private_ip_address == "10.0.0.4"


def test_active_sessions_are_pageable_and_disconnect_answers_per_id(network):
    sessions = list(network.begin_get_active_sessions(RG, "demo-bastion").result())
    assert sessions == []  # nobody connected through the data plane in this test
    result = list(network.disconnect_active_sessions(
        RG, "demo-bastion", models.SessionIds(session_ids=["no-such-session"])))
    assert [r.session_id for r in result] == ["no-such-session"]
