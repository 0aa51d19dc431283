"""ARM's refusals, on the wire: status, ``{"error": {"code", "message"}}``, and nothing changed afterwards."""
import time
import uuid

import pytest

from conftest import NETWORK_API


def _error(answer, status, code):
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


def _wait_succeeded(arm, path, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = arm.call("GET", path).json()
        if current["properties"]["provisioningState"] == "Succeeded":
            return current
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached Succeeded")


@pytest.fixture(scope="module")
def bastion_network(arm):
    """A VNet with a /26 AzureBastionSubnet, a Standard static IP, and a Basic dynamic IP; removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    vnet = arm.network_id("virtualNetworks", f"val-vnet-{suffix}")
    pip = arm.network_id("publicIPAddresses", f"val-pip-{suffix}")
    basic_pip = arm.network_id("publicIPAddresses", f"val-basic-pip-{suffix}")
    assert arm.call("PUT", vnet, {"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.40.0.0/16"]},
        "subnets": [{"name": "AzureBastionSubnet", "properties": {"addressPrefix": "10.40.1.0/26"}},
                    {"name": "small", "properties": {"addressPrefix": "10.40.2.0/27"}}]}}).status_code == 201
    assert arm.call("PUT", pip, {"location": "westeurope", "sku": {"name": "Standard"},
                                 "properties": {"publicIPAllocationMethod": "Static"}}).status_code == 201
    assert arm.call("PUT", basic_pip, {"location": "westeurope", "sku": {"name": "Basic"},
                                       "properties": {"publicIPAllocationMethod": "Dynamic"}}).status_code == 201
    yield {"vnet": vnet, "subnet": f"{vnet}/subnets/AzureBastionSubnet", "small": f"{vnet}/subnets/small",
           "pip": pip, "basic_pip": basic_pip}
    for path in (vnet, pip, basic_pip):
        arm.call("DELETE", path)


def _host_body(subnet, pip, sku="Standard", **props):
    return {"location": "westeurope", "sku": {"name": sku}, "properties": {
        "ipConfigurations": [{"name": "IpConf", "properties": {"subnet": {"id": subnet},
                                                               "publicIPAddress": {"id": pip}}}], **props}}


def test_unknown_resource_and_unknown_group(arm):
    _error(arm.call("GET", arm.network_id("bastionHosts", "no-such-host")), 404, "ResourceNotFound")
    _error(arm.call("GET", arm.network_id("bastionHosts", "x", group="no-such-rg")), 404, "ResourceGroupNotFound")


def test_api_version_missing_or_unknown(arm):
    path = arm.network_id("bastionHosts", "demo-bastion")
    _error(arm.call("GET", path, api_version=None), 400, "MissingApiVersionParameter")
    # A well-formed version the provider does not serve: ARM names the location, the version and the type.
    body = _error(arm.call("GET", path, api_version="2099-01-01"), 400, "NoRegisteredProviderFound")
    message = body["error"]["message"]
    assert "API version '2099-01-01' for type 'bastionHosts'" in message and NETWORK_API in message
    _error(arm.call("GET", path, api_version="latest"), 400, "InvalidApiVersionParameter")


def test_requests_without_a_valid_token_are_refused(arm):
    path = arm.network_id("bastionHosts", "demo-bastion")
    missing = arm.call("GET", path, token=False)
    _error(missing, 401, "AuthenticationFailed")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer ")
    _error(arm.call("GET", path, token=False, headers={"Authorization": "Bearer forged.token.value"}), 401,
           "InvalidAuthenticationToken")


def test_get_and_put_carry_etags_and_if_match_is_enforced(arm):
    path = arm.network_id("bastionHosts", "demo-bastion")
    current = arm.call("GET", path)
    assert current.headers["ETag"] == current.json()["etag"]
    body = _error(arm.call("PUT", path, current.json(), headers={"If-Match": 'W/"stale"'}), 412, "PreconditionFailed")
    assert "If-Match" in body["error"]["message"]
    assert arm.call("GET", path).json()["etag"] == current.json()["etag"]


def test_sku_downgrade_is_refused(arm):
    path = arm.network_id("bastionHosts", "demo-bastion")
    host = arm.call("GET", path).json()
    host["sku"] = {"name": "Basic"}
    host["properties"]["enableTunneling"] = False
    host["properties"]["enableIpConnect"] = False
    host["properties"]["enableFileCopy"] = False
    _error(arm.call("PUT", path, host), 400, "BastionHostSkuDowngradeNotAllowed")
    assert arm.call("GET", path).json()["sku"]["name"] == "Standard"


@pytest.mark.parametrize("feature", ["enableTunneling", "enableIpConnect", "enableFileCopy"])
@pytest.mark.parametrize("sku", ["Basic"])
def test_native_client_features_need_standard(arm, feature, sku):
    path = arm.network_id("bastionHosts", "basic-bastion")
    host = arm.call("GET", path).json()
    host["sku"] = {"name": sku}
    host["properties"][feature] = True
    body = _error(arm.call("PUT", path, host), 400, "BastionFeatureNotSupportedForSku")
    assert feature in body["error"]["message"]
    assert arm.call("GET", path).json()["properties"][feature] is False


def test_developer_sku_cannot_enable_tunneling(arm):
    body = {"location": "westeurope", "sku": {"name": "Developer"},
            "properties": {"virtualNetwork": {"id": arm.network_id("virtualNetworks", "basic-vnet")},
                           "enableTunneling": True}}
    path = arm.network_id("bastionHosts", f"dev-{uuid.uuid4().hex[:6]}")
    _error(arm.call("PUT", path, body), 400, "FeatureNotSupportedForDeveloperBastionSku")
    _error(arm.call("GET", path), 404, "ResourceNotFound")


def _developer_body(vnet, **props):
    return {"location": "westeurope", "sku": {"name": "Developer"},
            "properties": {"virtualNetwork": {"id": vnet}, "ipConfigurations": [], **props}}


def test_each_sku_has_the_request_shape_of_its_rest_example(arm, bastion_network):
    """BastionHostDeveloperPut.json: virtualNetwork and no IP configuration; BastionHostPut.json: one IP
    configuration with subnet and public IP; BastionHostPutWithPrivateOnly.json: Premium, no public IP."""
    def path():
        return arm.network_id("bastionHosts", f"shape-{uuid.uuid4().hex[:6]}")
    subnet, pip, vnet = bastion_network["subnet"], bastion_network["pip"], bastion_network["vnet"]
    no_vnet = {"location": "westeurope", "sku": {"name": "Developer"}, "properties": {"ipConfigurations": []}}
    _error(arm.call("PUT", path(), no_vnet), 400, "BastionHostVnetIdNotProvided")
    with_ip = _developer_body(vnet)
    with_ip["properties"]["ipConfigurations"] = _host_body(subnet, pip)["properties"]["ipConfigurations"]
    _error(arm.call("PUT", path(), with_ip), 400, "BastionHostDeveloperSkuDoesNotSupportIpConfigurations")
    _error(arm.call("PUT", path(), dict(_developer_body(vnet), zones=["1"])), 400,
           "BastionHostDeveloperSkuDoesNotSupportZones")
    _error(arm.call("PUT", path(), _developer_body(vnet, enableKerberos=True)), 400,
           "FeatureNotSupportedForDeveloperBastionSku")
    for sku in ("Basic", "Standard", "Premium"):
        bare = {"location": "westeurope", "sku": {"name": sku}, "properties": {"virtualNetwork": {"id": vnet}}}
        _error(arm.call("PUT", path(), bare), 400, "BastionHostMustHaveOneIpConfiguration")
    private_with_ip = _host_body(subnet, pip, sku="Premium", enablePrivateOnlyBastion=True)
    _error(arm.call("PUT", path(), private_with_ip), 400, "PrivateOnlyBastionHostCannotHavePublicIp")
    _error(arm.call("PUT", path(), _host_body(subnet, pip, sku="Standard", enablePrivateOnlyBastion=True)), 400,
           "BastionFeatureNotSupportedForSku")
    _error(arm.call("PUT", path(), _host_body(subnet, pip, sku="Basic", disableCopyPaste=True)), 400,
           "BastionFeatureNotSupportedForSku")

    developer = path()
    answer = arm.call("PUT", developer, _developer_body(vnet))
    assert answer.status_code == 201, answer.text
    assert answer.json()["properties"]["ipConfigurations"] == []
    arm.call("DELETE", developer)
    basic_kerberos = path()
    assert arm.call("PUT", basic_kerberos, _host_body(subnet, pip, sku="Basic", enableKerberos=True)).status_code \
        == 201
    _wait_succeeded(arm, basic_kerberos)
    arm.call("DELETE", basic_kerberos)
    deadline = time.monotonic() + 5       # the subnet is free again for the other tests
    while arm.call("GET", basic_kerberos).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_host_needs_azure_bastion_subnet_of_26_or_larger(arm, bastion_network):
    path = arm.network_id("bastionHosts", f"val-{uuid.uuid4().hex[:6]}")
    body = _error(arm.call("PUT", path, _host_body(bastion_network["small"], bastion_network["pip"])), 400,
                  "BastionHostSubnetNameMustBeAzureBastionSubnet")
    assert "AzureBastionSubnet" in body["error"]["message"]
    small_bastion_subnet = {"properties": {"addressPrefix": "10.40.1.0/27"}}
    assert arm.call("PUT", bastion_network["subnet"], small_bastion_subnet).status_code == 200
    _wait_succeeded(arm, bastion_network["subnet"])
    try:
        _error(arm.call("PUT", path, _host_body(bastion_network["subnet"], bastion_network["pip"])), 400,
               "AzureBastionSubnetTooSmall")
    finally:
        arm.call("PUT", bastion_network["subnet"], {"properties": {"addressPrefix": "10.40.1.0/26"}})
        _wait_succeeded(arm, bastion_network["subnet"])
    _error(arm.call("PUT", path, _host_body(bastion_network["vnet"] + "/subnets/missing", bastion_network["pip"])),
           400, "InvalidResourceReference")


def test_host_needs_standard_static_public_ip(arm, bastion_network):
    path = arm.network_id("bastionHosts", f"val-{uuid.uuid4().hex[:6]}")
    _error(arm.call("PUT", path, _host_body(bastion_network["subnet"], bastion_network["basic_pip"])), 400,
           "BastionHostPublicIpMustBeStandardStatic")
    _error(arm.call("GET", path), 404, "ResourceNotFound")


def test_scale_units_range_and_sku(arm, bastion_network):
    path = arm.network_id("bastionHosts", f"val-{uuid.uuid4().hex[:6]}")
    for units in (1, 51):
        _error(arm.call("PUT", path, _host_body(bastion_network["subnet"], bastion_network["pip"], scaleUnits=units)),
               400, "InvalidBastionHostScaleUnits")
    _error(arm.call("PUT", path, _host_body(bastion_network["subnet"], bastion_network["pip"], sku="Basic",
                                            scaleUnits=4)), 400, "BastionHostScaleUnitsNotSupportedForSku")


def test_create_is_long_running_and_a_put_while_updating_conflicts(arm, bastion_network):
    path = arm.network_id("bastionHosts", f"val-{uuid.uuid4().hex[:6]}")
    created = arm.call("PUT", path, _host_body(bastion_network["subnet"], bastion_network["pip"], scaleUnits=3))
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["provisioningState"] == "Updating"
    status_url = created.headers["Azure-AsyncOperation"]
    assert arm.session.get(status_url, verify=arm.ready["ca_bundle"],
                           headers={"Authorization": f"Bearer {arm.token}"}).json()["status"] == "InProgress"
    body = _error(arm.call("PUT", path, created.json()), 409, "AnotherOperationInProgress")
    assert "Updating" in body["error"]["message"]
    done = _wait_succeeded(arm, path)
    assert done["properties"]["scaleUnits"] == 3
    assert arm.session.get(status_url, verify=arm.ready["ca_bundle"],
                           headers={"Authorization": f"Bearer {arm.token}"}).json()["status"] == "Succeeded"
    other = arm.network_id("bastionHosts", f"val-{uuid.uuid4().hex[:6]}")
    _error(arm.call("PUT", other, _host_body(bastion_network["subnet"], bastion_network["pip"])), 400,
           "SubnetInUseByAnotherBastionHost")
    deleted = arm.call("DELETE", path)
    assert deleted.status_code == 202 and deleted.headers["Location"]
    deadline = time.monotonic() + 5
    while arm.call("GET", path).status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_security_rule_priority_range(arm):
    nsg = arm.network_id("networkSecurityGroups", f"val-nsg-{uuid.uuid4().hex[:6]}")
    rule = {"name": "r", "properties": {"priority": 99, "direction": "Outbound", "access": "Allow", "protocol": "*",
                                        "sourceAddressPrefix": "*", "sourcePortRange": "*",
                                        "destinationAddressPrefix": "VirtualNetwork", "destinationPortRange": "22"}}
    _error(arm.call("PUT", nsg, {"location": "westeurope", "properties": {"securityRules": [rule]}}), 400,
           "SecurityRuleInvalidPriority")
    _error(arm.call("GET", nsg), 404, "ResourceNotFound")


def test_injected_arm_faults_answer_then_clear(emulator, arm):
    path = arm.network_id("bastionHosts", "demo-bastion")
    added = emulator.post("arm-faults", {"method": "GET", "path_contains": "bastionHosts/demo-bastion",
                                         "status": 429, "count": 1, "headers": {"Retry-After": "1"}})
    assert added.status_code == 201
    throttled = arm.call("GET", path)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert arm.call("GET", path).status_code == 200


@pytest.mark.parametrize("name", ["b 5!", "-lead", "trail.", "trail-", "x" * 81])
def test_bastion_host_names_follow_azures_rules(arm, bastion_network, name):
    from urllib.parse import quote
    path = arm.network_id("bastionHosts", quote(name, safe=""))
    body = _error(arm.call("PUT", path, _developer_body(bastion_network["vnet"])), 400, "InvalidResourceName")
    assert "up to 80 characters" in body["error"]["message"]


@pytest.mark.parametrize("api_version, props, member", [
    ("2023-09-01", {"enableSessionRecording": False}, "enableSessionRecording"),
    ("2023-09-01", {"enablePrivateOnlyBastion": False}, "enablePrivateOnlyBastion"),
    ("2024-03-01", {"enablePrivateOnlyBastion": False}, "enablePrivateOnlyBastion"),
])
def test_a_property_the_api_version_lacks_is_refused(arm, bastion_network, api_version, props, member):
    path = arm.network_id("bastionHosts", f"ver-{uuid.uuid4().hex[:6]}")
    body = _error(arm.call("PUT", path, _developer_body(bastion_network["vnet"], **props), api_version=api_version),
                  400, "InvalidRequestFormat")
    assert f"Could not find member '{member}'" in body["error"]["message"]
    _error(arm.call("GET", path), 404, "ResourceNotFound")


def test_the_same_properties_are_taken_where_the_api_version_has_them(arm, bastion_network):
    for api_version, props in (("2024-03-01", {"enableSessionRecording": False}),
                               ("2024-05-01", {"enableSessionRecording": False, "enablePrivateOnlyBastion": False})):
        path = arm.network_id("bastionHosts", f"ver-{uuid.uuid4().hex[:6]}")
        answer = arm.call("PUT", path, _developer_body(bastion_network["vnet"], **props), api_version=api_version)
        assert answer.status_code == 201, answer.text
        arm.call("DELETE", path)


def test_network_acls_are_for_developer_hosts_and_ipv4(arm, bastion_network):
    path = arm.network_id("bastionHosts", f"acl-{uuid.uuid4().hex[:6]}")
    six = _developer_body(bastion_network["vnet"], networkAcls={"ipRules": [{"addressPrefix": "2001:db8::/64"}]})
    _error(arm.call("PUT", path, six), 400, "InvalidBastionHostIpRule")
    standard = _host_body(bastion_network["subnet"], bastion_network["pip"],
                          networkAcls={"ipRules": [{"addressPrefix": "203.0.113.0/24"}]})
    _error(arm.call("PUT", path, standard), 400, "BastionHostNetworkAclsNotSupportedForSku")
