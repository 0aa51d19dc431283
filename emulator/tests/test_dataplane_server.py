"""The data plane as wired into the real emulator process: dnsName from ARM, tokens from the identity endpoint,
VM ports re-pointed through the server's hook, sessions visible to ARM's disconnectActiveSessions, no token
in the emulator's request log or its own log."""
import ssl

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from bastion_emulator.testing.backends import start_echo_server


@pytest.fixture(scope="module")
def echo():
    with start_echo_server() as server:
        yield server


def test_tunnel_through_the_emulator_process(emulator, arm, echo):
    emulator.set_vm_endpoint("linux-vm", 22, echo.host, echo.port)
    host = arm.call("GET", arm.network_id("bastionHosts", "demo-bastion")).json()
    endpoint = host["properties"]["dnsName"]
    vm_id = emulator.resource_id("Microsoft.Compute/virtualMachines", "linux-vm")
    known = {s["sessionId"] for s in emulator.get("sessions").json()}
    minted = arm.session.post(f"https://{endpoint}/api/tokens", verify=emulator.ca_bundle, timeout=10, data={
        "resourceId": vm_id, "protocol": "tcptunnel", "workloadHostPort": "22", "aztoken": arm.token})
    assert minted.status_code == 200, minted.text
    tokens = minted.json()
    url = f"wss://{endpoint}/webtunnelv2/{tokens['websocketToken']}?X-Node-Id={tokens['nodeId']}"
    with connect(url, ssl=ssl.create_default_context(cafile=emulator.ca_bundle)) as ws:
        ws.send(b"through the emulator")
        assert ws.recv(timeout=5) == b"through the emulator"
        [session] = [s for s in emulator.get("sessions").json() if s["sessionId"] not in known]
        assert session["state"] == "connected" and session["target"] == vm_id
        answer = arm.call("POST", arm.network_id("bastionHosts", "demo-bastion") + "/disconnectActiveSessions",
                          body={"sessionIds": [session["sessionId"]]})
        assert answer.json()["value"][0]["state"] == "Disconnected"
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=5)
        assert ws.close_code == 1008
    gone = arm.session.delete(f"https://{endpoint}/api/tokens/{tokens['authToken']}", verify=emulator.ca_bundle,
                              headers={"X-Node-Id": tokens["nodeId"]}, timeout=10)
    assert gone.status_code == 404
    assert session["sessionId"] not in {s["sessionId"] for s in emulator.get("sessions").json()}

    recorded = emulator.get("requests").text + emulator.log_path.read_text(errors="replace")
    for secret in (tokens["authToken"], tokens["websocketToken"], arm.token):
        assert secret not in recorded
