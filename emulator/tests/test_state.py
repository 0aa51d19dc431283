"""EmulatorState on its own: the seed, case-insensitive ids, child collections, tokens."""

from bastion_emulator.state import EmulatorState

SUB = "00000000-0000-4000-8000-00000000b45e"
RG = f"/subscriptions/{SUB}/resourceGroups/demo-rg"


def test_seed_has_the_documented_resources():
    state = EmulatorState.from_file()
    hosts = {h["name"]: h for h in state.list_resources("microsoft.network/bastionhosts", f"/subscriptions/{SUB}")}
    assert hosts["demo-bastion"]["sku"]["name"] == "Standard"
    assert hosts["demo-bastion"]["properties"]["enableTunneling"] is True
    assert hosts["demo-bastion"]["properties"]["enableIpConnect"] is True
    assert hosts["basic-bastion"]["sku"]["name"] == "Basic"
    assert hosts["basic-bastion"]["properties"]["enableTunneling"] is False
    subnet_of = {name: h["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"]
                 for name, h in hosts.items()}
    assert "/virtualNetworks/demo-vnet/" in subnet_of["demo-bastion"]
    assert "/virtualNetworks/basic-vnet/" in subnet_of["basic-bastion"]
    assert state.find_vm_by_private_ip("10.0.0.4")["name"] == "linux-vm"
    assert state.find_vm_by_private_ip("10.0.0.5")["name"] == "win-vm"
    assert state.vm_power_state(f"{RG}/providers/Microsoft.Compute/virtualMachines/stopped-vm") == "stopped"
    assert state.find_vm_by_private_ip("10.9.9.9") is None


def test_ids_are_case_insensitive_and_keep_canonical_casing():
    state = EmulatorState.from_file()
    vm = state.get_resource(f"{RG.upper()}/PROVIDERS/microsoft.compute/VIRTUALMACHINES/LINUX-VM")
    assert vm["id"] == f"{RG}/providers/Microsoft.Compute/virtualMachines/linux-vm"
    assert vm["type"] == "Microsoft.Compute/virtualMachines"
    assert vm["properties"]["storageProfile"]["osDisk"]["osType"] == "Linux"


def test_vm_endpoint_is_unset_until_tests_point_it_somewhere():
    state = EmulatorState.from_file()
    vm_id = f"{RG}/providers/Microsoft.Compute/virtualMachines/linux-vm"
    assert state.vm_target(vm_id, 22) is None
    state.set_vm_endpoint(vm_id.lower(), 22, "127.0.0.1", 2222)
    assert state.vm_target(vm_id, 22) == ("127.0.0.1", 2222)
    assert state.vm_target(vm_id, 3389) is None


def test_subnets_are_children_and_nsg_association_is_reported_both_ways():
    state = EmulatorState.from_file()
    vnet_id = f"{RG}/providers/Microsoft.Network/virtualNetworks/demo-vnet"
    nsg_id = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n1"
    nsg = state.put_resource(nsg_id, {"location": "westeurope", "properties": {"securityRules": [
        {"name": "deny-vnet", "properties": {
            "priority": 200, "direction": "Outbound", "access": "Deny", "protocol": "*", "sourceAddressPrefix": "*",
            "sourcePortRange": "*", "destinationAddressPrefix": "VirtualNetwork", "destinationPortRange": "*"}}]}})
    assert [r["properties"]["priority"] for r in nsg["properties"]["defaultSecurityRules"]] == \
        [65000, 65001, 65500, 65000, 65001, 65500]
    subnet_id = f"{vnet_id}/subnets/AzureBastionSubnet"
    subnet = state.get_resource(subnet_id)
    subnet["properties"]["networkSecurityGroup"] = {"id": nsg_id}
    state.put_resource(subnet_id, subnet)
    bastion_id = f"{RG}/providers/Microsoft.Network/bastionHosts/demo-bastion"
    found = state.bastion_subnet_nsg(bastion_id)
    assert found["id"] == nsg_id
    assert [r["name"] for r in found["properties"]["securityRules"]] == ["deny-vnet"]
    assert found["properties"]["subnets"] == [{"id": subnet_id}]
    assert len(state.get_resource(vnet_id)["properties"]["subnets"]) == 2
    assert state.bastion_subnet_nsg(f"{RG}/providers/Microsoft.Network/bastionHosts/basic-bastion") is None


def test_put_changes_the_etag():
    state = EmulatorState.from_file()
    pip_id = f"{RG}/providers/Microsoft.Network/publicIPAddresses/demo-bastion-ip"
    before = state.get_resource(pip_id)
    after = state.put_resource(pip_id, before)
    assert after["etag"] != before["etag"]


def test_access_tokens_verify_only_when_issued_here_and_unexpired():
    state = EmulatorState.from_file()
    token, _ = state.issue_access_token("https://management.core.windows.net/")
    assert state.verify_access_token(token)["appid"] == state.client_id
    assert token in state.issued_secrets
    assert state.verify_access_token(token[:-2] + "xx") is None
    assert EmulatorState.from_file().verify_access_token(token) is None  # another key
    expired, _ = state.issue_access_token("aud", lifetime=-1)
    assert state.verify_access_token(expired) is None


def test_a_host_reaches_its_own_network_and_networks_peered_both_ways():
    state = EmulatorState.from_file()
    net = f"{RG}/providers/Microsoft.Network/virtualNetworks"
    demo_bastion = f"{RG}/providers/Microsoft.Network/bastionHosts/demo-bastion"
    basic_bastion = f"{RG}/providers/Microsoft.Network/bastionHosts/basic-bastion"
    linux_vm = f"{RG}/providers/Microsoft.Compute/virtualMachines/linux-vm"
    assert state.bastion_reaches_vm(demo_bastion, linux_vm)
    assert not state.bastion_reaches_vm(basic_bastion, linux_vm)        # basic-vnet, peered with nothing

    def peer(local, remote):
        vnet = state.get_resource(f"{net}/{local}")
        vnet["properties"]["virtualNetworkPeerings"] = [{"name": f"to-{remote}", "properties": {
            "remoteVirtualNetwork": {"id": f"{net}/{remote}"}, "peeringState": "Connected"}}]
        state.put_resource(vnet["id"], vnet)
    peer("basic-vnet", "demo-vnet")             # one side only: Initiated, whatever the client wrote
    assert state.get_resource(f"{net}/basic-vnet")["properties"]["virtualNetworkPeerings"][0]["properties"][
        "peeringState"] == "Initiated"
    assert not state.bastion_reaches_vm(basic_bastion, linux_vm)
    peer("demo-vnet", "basic-vnet")
    assert state.get_resource(f"{net}/basic-vnet")["properties"]["virtualNetworkPeerings"][0]["properties"][
        "peeringState"] == "Connected"
    assert state.bastion_reaches_vm(basic_bastion, linux_vm)
