"""The Bastion data plane as a real client sees it: requests for the HTTPS calls, websockets for the tunnel,
against real TLS listeners (see dataplane_harness.py) relaying to real loopback TCP servers and sshd."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from bastion_emulator.dataplane import app as dataplane
from bastion_emulator.testing.backends import source_bytes, start_echo_server, start_sink_source
from bastion_emulator.testing.sshd import sshd_available, start_sshd
from dataplane_harness import DEVELOPER_HOST, InProcessEmulator


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    emulator = InProcessEmulator(tmp_path_factory.mktemp("dataplane-emulator"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def echo():
    with start_echo_server() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_faults(emu):
    yield
    requests.delete(f"{emu.control_url}/_emulator/faults", verify=emu.ca_bundle, timeout=10)


@pytest.fixture
def linux_vm_to(emu):
    """Point the seeded linux-vm's port 22 at a loopback server."""
    def point(address, port=22, vm="linux-vm"):
        emu.state.set_vm_endpoint(emu.vm_id(vm), port, address[0], address[1])
    return point


def mint(emu, vm="linux-vm", port=22, host="demo-bastion", token=None, resource_id=None, **extra):
    """POST /api/tokens on a host's dnsName (``host`` names it) or on an address (host:port, e.g. a data pod)."""
    form = {"resourceId": resource_id or emu.vm_id(vm), "protocol": "tcptunnel", "workloadHostPort": str(port),
            "aztoken": emu.token() if token is None else token, **extra}
    address = emu.endpoints.get(host, host)
    return requests.post(f"https://{address}/api/tokens", data=form, verify=emu.ca_bundle, timeout=10)


def ws_url(emu, minted: dict, host="demo-bastion") -> str:
    return f"wss://{emu.endpoints[host]}/webtunnelv2/{minted['websocketToken']}?X-Node-Id={minted['nodeId']}"


def delete(emu, minted: dict, host="demo-bastion"):
    address = emu.endpoints.get(host, host)
    return requests.delete(f"https://{address}/api/tokens/{minted['authToken']}",
                           headers={"X-Node-Id": minted["nodeId"]}, verify=emu.ca_bundle, timeout=10)


def control(emu, path, **params):
    answer = requests.get(f"{emu.control_url}/_emulator/{path}", params=params, verify=emu.ca_bundle, timeout=10)
    answer.raise_for_status()
    return answer.json()


def set_faults(emu, **faults):
    answer = requests.post(f"{emu.control_url}/_emulator/faults", json=faults, verify=emu.ca_bundle, timeout=10)
    assert answer.status_code == 200, answer.text


def recv_exactly(ws, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += ws.recv(timeout=10)
    return bytes(data)


# --- the happy path ------------------------------------------------------------------------------
def test_mint_relay_delete_round_trip(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    before = control(emu, "stats")
    known = {s["sessionId"] for s in control(emu, "sessions")}
    answer = mint(emu)
    assert answer.status_code == 200, answer.text
    minted = answer.json()
    assert set(minted) == {"authToken", "nodeId", "websocketToken"}
    assert minted["authToken"] in emu.state.issued_secrets and minted["websocketToken"] in emu.state.issued_secrets

    [listed] = [s for s in control(emu, "sessions") if s["sessionId"] not in known]
    assert listed["state"] == "minted" and listed["target"] == emu.vm_id("linux-vm")
    assert listed["port"] == 22 and listed["targetIp"] == "10.0.0.4"
    assert minted["authToken"] not in str(control(emu, "sessions"))

    payloads = [b"hello", os.urandom(300_000), os.urandom(1)]
    with connect(ws_url(emu, minted), ssl=emu.client_ssl(), max_size=None) as ws:
        for payload in payloads:
            ws.send(payload)
            assert recv_exactly(ws, len(payload)) == payload
        states = {s["sessionId"]: s["state"] for s in control(emu, "sessions")}
        assert states[listed["sessionId"]] == "connected"

    # After the websocket closes the session stays until DELETE, as in Azure (that is how leaks show).
    deadline = time.time() + 5
    while {s["sessionId"]: s["state"] for s in control(emu, "sessions")}[listed["sessionId"]] != "closed":
        assert time.time() < deadline
        time.sleep(0.05)
    assert delete(emu, minted).status_code == 204
    assert listed["sessionId"] not in {s["sessionId"] for s in control(emu, "sessions")}
    assert delete(emu, minted).status_code == 404

    after = control(emu, "stats")
    total = sum(len(p) for p in payloads)
    assert after["mints"] - before["mints"] == 1
    assert after["deletes"] - before["deletes"] == 1
    assert after["websockets_opened"] - before["websockets_opened"] == 1
    assert after["bytes_client_to_vm"] - before["bytes_client_to_vm"] == total
    assert after["bytes_vm_to_client"] - before["bytes_vm_to_client"] == total


def test_vm_close_delivers_everything_then_closes_1000(emu, linux_vm_to):
    size = 3 * (1 << 20) + 123
    with start_sink_source(send_bytes=size, close_after_send=True) as source:
        linux_vm_to(source.address)
        minted = mint(emu).json()
        received = bytearray()
        with connect(ws_url(emu, minted), ssl=emu.client_ssl(), max_size=None) as ws:
            with pytest.raises(ConnectionClosedOK):
                while True:
                    received += ws.recv(timeout=10)
            assert ws.close_code == 1000
        delete(emu, minted)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(source_bytes(size)).hexdigest()


def test_client_close_half_closes_tcp_and_still_delivers_the_answer(emu, linux_vm_to):
    """The VM sees EOF after the client's Close, and its answer (sent after that EOF) still arrives."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer_after_eof():
        conn, _ = server.accept()
        with conn:
            count = 0
            while chunk := conn.recv(65536):
                count += len(chunk)
            conn.sendall(b"received %d" % count)

    thread = threading.Thread(target=answer_after_eof, daemon=True)
    thread.start()
    try:
        linux_vm_to(server.getsockname())
        minted = mint(emu).json()
        with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
            ws.send(b"x" * 5000)
            ws.close()
            assert ws.recv(timeout=5) == b"received 5000"
        assert ws.close_code == 1000
        delete(emu, minted)
    finally:
        thread.join(5)
        server.close()


def test_relay_carries_a_real_sshd_banner(emu, linux_vm_to, tmp_path):
    if not sshd_available():
        pytest.skip("OpenSSH server (sshd) is not installed")
    handle = start_sshd(tmp_path / "sshd")
    try:
        linux_vm_to((handle.host, handle.port))
        minted = mint(emu).json()
        with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
            assert ws.recv(timeout=10).startswith(b"SSH-2.0-OpenSSH")
        delete(emu, minted)
    finally:
        handle.stop()


def test_ip_connect_mints_for_a_vm_private_ip(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    known = {s["sessionId"] for s in control(emu, "sessions")}
    host_connect = f"{emu.rg_id}/providers/Microsoft.Network/bh-hostConnect/10.0.0.4"
    answer = mint(emu, resource_id=host_connect, hostname="10.0.0.4")
    assert answer.status_code == 200, answer.text
    minted = answer.json()
    with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
        ws.send(b"ping")
        assert ws.recv(timeout=5) == b"ping"
    [session] = [s for s in control(emu, "sessions") if s["sessionId"] not in known]
    assert session["targetIp"] == "10.0.0.4" and session["target"] == emu.vm_id("linux-vm")
    delete(emu, minted)


# --- refusals ------------------------------------------------------------------------------------
HOST_CONNECT = "/providers/Microsoft.Network/bh-hostConnect/"


@pytest.mark.parametrize("case, kwargs, status, words", [
    ("no token", {"token": ""}, 401, "aztoken"),
    ("forged token", {"token": "eyJ.eyJ.sig"}, 401, "aztoken"),
    ("basic sku", {"host": "basic-bastion"}, 403, "Basic SKU"),
    ("unknown vm", {"vm": "no-such-vm"}, 404, "was not found"),
    ("stopped vm", {"vm": "stopped-vm"}, 409, "not running"),
    ("bad port", {"port": 0}, 400, "port"),
    ("ip connect port", {"resource_id": "{rg}" + HOST_CONNECT + "10.0.0.4", "port": 2222}, 403, "22 and 3389"),
    ("ip connect unknown ip", {"resource_id": "{rg}" + HOST_CONNECT + "10.0.0.99"}, 404, "10.0.0.99"),
    ("not a vm id", {"resource_id": "{rg}/providers/Microsoft.Network/virtualNetworks/demo-vnet"}, 400,
     "virtual machine id"),
])
def test_mint_refusals(emu, case, kwargs, status, words):
    kwargs = dict(kwargs)
    if "resource_id" in kwargs:
        kwargs["resource_id"] = kwargs["resource_id"].format(rg=emu.rg_id)
    answer = mint(emu, **kwargs)
    assert answer.status_code == status, (case, answer.text)
    assert words in answer.json()["message"]


def test_wrong_protocol_refused(emu):
    answer = mint(emu, protocol="rdp")
    assert answer.status_code == 400 and "tcptunnel" in answer.json()["message"]


def test_expired_token_refused(emu):
    expired, _ = emu.state.issue_access_token("https://management.core.windows.net/", lifetime=-10)
    answer = mint(emu, token=expired)
    assert answer.status_code == 401


def test_tunnelling_and_ip_connect_switched_off_are_refused(emu):
    host_id = emu.bastion_id("demo-bastion")
    emu.state.set_properties(host_id, enableTunneling=False)
    try:
        answer = mint(emu)
        assert answer.status_code == 403 and "Tunneling is not enabled" in answer.json()["message"]
    finally:
        emu.state.set_properties(host_id, enableTunneling=True)
    emu.state.set_properties(host_id, enableIpConnect=False)
    try:
        answer = mint(emu, resource_id=f"{emu.rg_id}{HOST_CONNECT}10.0.0.4")
        assert answer.status_code == 403 and "IP-based connection is not enabled" in answer.json()["message"]
    finally:
        emu.state.set_properties(host_id, enableIpConnect=True)
    answer = mint(emu)
    assert answer.status_code == 200
    delete(emu, answer.json())


@pytest.fixture
def bastion_subnet_nsg(emu):
    """Attach an NSG with the given outbound rules to demo-bastion's AzureBastionSubnet for one test."""
    subnet_id = f"{emu.rg_id}/providers/Microsoft.Network/virtualNetworks/demo-vnet/subnets/AzureBastionSubnet"
    original = emu.state.get_resource(subnet_id)

    def attach(rules):
        nsg_id = f"{emu.rg_id}/providers/Microsoft.Network/networkSecurityGroups/bastion-test-nsg"
        emu.state.put_resource(nsg_id, {"properties": {"securityRules": [
            {"name": name, "properties": {"direction": "Outbound", "access": access, "priority": priority,
                                          "protocol": "*", "sourceAddressPrefix": "*", "sourcePortRange": "*",
                                          "destinationAddressPrefix": "VirtualNetwork", **ports}}
            for name, access, priority, ports in rules]}})
        subnet = emu.state.get_resource(subnet_id)
        subnet["properties"]["networkSecurityGroup"] = {"id": nsg_id}
        emu.state.put_resource(subnet_id, subnet)
    yield attach
    emu.state.put_resource(subnet_id, original)


def mint_ok(emu, **kwargs) -> bool:
    answer = mint(emu, **kwargs)
    if answer.status_code == 200:
        delete(emu, answer.json())
    return answer.status_code == 200


def test_nsg_outbound_rules_decide_reachable_ports(emu, bastion_subnet_nsg):
    bastion_subnet_nsg([
        ("AllowSshRdpOutbound", "Allow", 100, {"destinationPortRanges": ["22", "3389"]}),
        ("AllowHighPorts", "Allow", 110, {"destinationPortRange": "9000-9010"}),
        ("DenyVnetOutbound", "Deny", 200, {"destinationPortRange": "*"}),
    ])
    assert mint_ok(emu, port=22)
    assert mint_ok(emu, vm="win-vm", port=3389)
    assert mint_ok(emu, port=9005)
    denied = mint(emu, port=8080)
    assert denied.status_code == 403
    assert "Port 8080" in denied.json()["message"] and "DenyVnetOutbound" in denied.json()["message"]


def test_nsg_deny_above_allow_wins(emu, bastion_subnet_nsg):
    bastion_subnet_nsg([("DenySsh", "Deny", 100, {"destinationPortRange": "22"}),
                        ("AllowSsh", "Allow", 110, {"destinationPortRange": "22"})])
    answer = mint(emu, port=22)
    assert answer.status_code == 403 and "DenySsh" in answer.json()["message"]


def test_websocket_token_replay_unknown_and_deleted_refused(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    minted = mint(emu).json()
    with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
        ws.send(b"a")
        assert ws.recv(timeout=5) == b"a"
    with pytest.raises(InvalidStatus) as replay:
        connect(ws_url(emu, minted), ssl=emu.client_ssl())
    assert replay.value.response.status_code == 403
    assert delete(emu, minted).status_code == 204

    fresh = mint(emu).json()
    assert delete(emu, fresh).status_code == 204
    with pytest.raises(InvalidStatus) as deleted:
        connect(ws_url(emu, fresh), ssl=emu.client_ssl())
    assert deleted.value.response.status_code == 404

    with pytest.raises(InvalidStatus) as unknown:
        connect(ws_url(emu, {"websocketToken": "not-a-token", "nodeId": fresh["nodeId"]}), ssl=emu.client_ssl())
    assert unknown.value.response.status_code == 404


def test_websocket_needs_the_session_node_id(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    minted = mint(emu).json()
    with pytest.raises(InvalidStatus) as wrong:
        connect(ws_url(emu, dict(minted, nodeId="other-node")), ssl=emu.client_ssl())
    assert wrong.value.response.status_code == 400
    assert delete(emu, minted).status_code == 204


def test_unreachable_vm_port_refused_before_upgrade(emu, linux_vm_to):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    linux_vm_to(("127.0.0.1", closed_port))
    minted = mint(emu).json()
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(emu, minted), ssl=emu.client_ssl())
    assert refused.value.response.status_code == 502
    delete(emu, minted)


def test_delete_while_connected_closes_the_websocket(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    minted = mint(emu).json()
    with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
        ws.send(b"a")
        assert ws.recv(timeout=5) == b"a"
        assert delete(emu, minted).status_code == 204
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=5)
        assert ws.close_code == 1008


# --- ARM sessions API ----------------------------------------------------------------------------
def test_active_sessions_and_disconnect(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    host_id = emu.bastion_id("demo-bastion")
    minted = mint(emu).json()
    with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
        ws.send(b"a")
        assert ws.recv(timeout=5) == b"a"
        sessions = emu.call(dataplane.active_sessions, emu.state, host_id)
        [mine] = [s for s in sessions if s["targetResourceId"] == emu.vm_id("linux-vm")]
        assert mine["protocol"] == "SSH" and mine["targetIpAddress"] == "10.0.0.4"
        assert mine["targetHostName"] == "linux-vm" and mine["targetResourceGroup"] == "demo-rg"
        assert emu.call(dataplane.active_sessions, emu.state, emu.bastion_id("basic-bastion")) == []

        states = emu.call(dataplane.disconnect_sessions, emu.state, host_id, [mine["sessionId"], "nope"])
        assert states == [
            {"sessionId": mine["sessionId"], "message": "Session disconnected.", "state": "Disconnected"},
            {"sessionId": "nope", "message": "Session not found.", "state": "NotFound"}]
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=5)
    assert mine["sessionId"] not in {s["sessionId"] for s in control(emu, "sessions")}
    assert delete(emu, minted).status_code == 404


def test_sessions_filter_by_bastion(emu):
    known = {s["sessionId"] for s in control(emu, "sessions")}
    minted = mint(emu).json()
    try:
        demo = control(emu, "sessions", bastion=emu.bastion_id("demo-bastion").upper())
        assert [s["state"] for s in demo if s["sessionId"] not in known] == ["minted"]
        assert control(emu, "sessions", bastion=emu.bastion_id("basic-bastion")) == []
    finally:
        delete(emu, minted)


# --- faults --------------------------------------------------------------------------------------
def test_mint_status_fault_counts_down_with_retry_after(emu):
    set_faults(emu, mint_status=429, count=2, retry_after=3)
    for _ in range(2):
        answer = mint(emu)
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
        assert "Retry later" in answer.json()["message"]
    answer = mint(emu)
    assert answer.status_code == 200
    delete(emu, answer.json())


def test_mint_500_fault_and_clear(emu):
    set_faults(emu, mint_status=500, count=5)
    assert mint(emu).status_code == 500
    requests.delete(f"{emu.control_url}/_emulator/faults", verify=emu.ca_bundle, timeout=10)
    answer = mint(emu)
    assert answer.status_code == 200
    delete(emu, answer.json())


def test_drop_after_bytes_cuts_the_next_websocket_only(emu, linux_vm_to):
    with start_sink_source(send_bytes=200_000) as source:
        linux_vm_to(source.address)
        set_faults(emu, drop_after_bytes=1000)
        minted = mint(emu).json()
        received = bytearray()
        with connect(ws_url(emu, minted), ssl=emu.client_ssl()) as ws:
            with pytest.raises(ConnectionClosedError):
                while True:
                    received += ws.recv(timeout=10)
            assert ws.close_code == 1006     # no Close frame: the connection was cut
        assert bytes(received) == source_bytes(1000)
        delete(emu, minted)

        second = mint(emu).json()
        with connect(ws_url(emu, second), ssl=emu.client_ssl(), max_size=None) as ws:
            assert len(recv_exactly(ws, 200_000)) == 200_000
        delete(emu, second)


def test_handshake_delay_slows_the_upgrade(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    set_faults(emu, handshake_delay=0.4)
    minted = mint(emu).json()
    started = time.monotonic()
    with connect(ws_url(emu, minted), ssl=emu.client_ssl()):
        assert time.monotonic() - started >= 0.4
    delete(emu, minted)


def test_bad_fault_description_rejected(emu):
    answer = requests.post(f"{emu.control_url}/_emulator/faults", json={"mint_status": "often"},
                           verify=emu.ca_bundle, timeout=10)
    assert answer.status_code == 400


# --- RDP file and Developer SKU ------------------------------------------------------------------
def test_rdpfile(emu):
    url = f"https://{emu.endpoints['demo-bastion']}/api/rdpfile"
    params = {"resourceId": emu.vm_id("win-vm"), "format": "rdp", "rdpport": "3389", "enablerdsaad": "true"}
    answer = requests.get(url, params=params, headers={"Authorization": f"Bearer {emu.token()}"},
                          verify=emu.ca_bundle, timeout=10)
    assert answer.status_code == 200, answer.text
    fields = dict(line.split(":", 1) for line in answer.text.splitlines() if line)
    assert fields["full address"] == "s:10.0.0.5:3389"
    assert fields["enablerdsaadauth"] == "i:1"
    assert fields["gatewayhostname"] == "s:" + emu.endpoints["demo-bastion"]
    assert fields["gatewayaccesstoken"][2:] in emu.state.issued_secrets
    assert requests.get(url, params=params, verify=emu.ca_bundle, timeout=10).status_code == 401


def test_developer_sku_connection_and_omni_websocket(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    endpoint = emu.endpoints[DEVELOPER_HOST]
    body = {"resourceId": emu.vm_id("linux-vm"), "bastionResourceId": emu.bastion_id(DEVELOPER_HOST),
            "vmPort": 22, "azToken": emu.token(), "connectionType": "nativeclient"}
    answer = requests.post(f"https://{endpoint}/api/connection", json=body, verify=emu.ca_bundle, timeout=10)
    pod = answer.text
    assert answer.status_code == 200 and pod != endpoint and pod.startswith("localhost:")    # another host
    # The dnsName serves /api/connection only; the pod serves sessions only.
    refused = mint(emu, host=DEVELOPER_HOST)
    assert refused.status_code == 404 and "/api/connection" in refused.json()["message"]
    assert requests.post(f"https://{pod}/api/connection", json=body, verify=emu.ca_bundle,
                         timeout=10).status_code == 404
    minted = mint(emu, host=pod).json()
    with pytest.raises(InvalidStatus):
        connect(f"wss://{pod}/webtunnelv2/{minted['websocketToken']}?X-Node-Id={minted['nodeId']}",
                ssl=emu.client_ssl())
    fresh = mint(emu, host=pod).json()
    with pytest.raises(InvalidStatus):                                  # the right path on the wrong host
        connect(f"wss://{endpoint}/omni/webtunnel/{fresh['websocketToken']}", ssl=emu.client_ssl())
    fresh = mint(emu, host=pod).json()
    with connect(f"wss://{pod}/omni/webtunnel/{fresh['websocketToken']}", ssl=emu.client_ssl()) as ws:
        ws.send(b"dev")
        assert ws.recv(timeout=5) == b"dev"
    assert delete(emu, fresh, host=endpoint).status_code == 404          # deleted on the pod, too
    for session in (minted, fresh):
        assert delete(emu, session, host=pod).status_code == 204
    standard = requests.post(f"https://{emu.endpoints['demo-bastion']}/api/connection", json=body,
                             verify=emu.ca_bundle, timeout=10)
    assert standard.status_code == 400


# --- the wire as Microsoft's client sends it ------------------------------------------------------
def test_an_empty_token_field_is_refused_and_none_is_fine(emu):
    form = {"resourceId": emu.vm_id("linux-vm"), "protocol": "tcptunnel", "workloadHostPort": "22",
            "aztoken": emu.token(), "token": ""}
    refused = requests.post(f"https://{emu.endpoints['demo-bastion']}/api/tokens", data=form, verify=emu.ca_bundle,
                            timeout=10)
    assert refused.status_code == 400 and "'token'" in refused.json()["message"]
    minted = mint(emu)
    assert minted.status_code == 200
    assert delete(emu, minted.json()).status_code == 204


def test_a_foreign_origin_is_refused_and_the_clients_headers_are_recorded(emu, echo, linux_vm_to):
    linux_vm_to(echo.address)
    foreign = mint(emu).json()
    with pytest.raises(InvalidStatus):
        connect(ws_url(emu, foreign), ssl=emu.client_ssl(), origin="https://evil.example")
    delete(emu, foreign)
    minted = mint(emu).json()
    own = f"https://{emu.endpoints['demo-bastion']}"
    with connect(ws_url(emu, minted), ssl=emu.client_ssl(), origin=own, user_agent_header="AZURECLI/9 test/1"):
        [listed] = [s for s in control(emu, "sessions") if s["state"] == "connected"]
    assert listed["client"]["websocket_origin"] == own
    assert listed["client"]["websocket_user_agent"] == "AZURECLI/9 test/1"
    assert delete(emu, minted).status_code == 204
