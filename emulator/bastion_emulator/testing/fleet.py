"""A fleet of VMs behind one Bastion host, for the fleet tests and bench/fleet.py.

``fleet_seed()``: the default seed plus resource group ``fleet-rg`` with N Linux VMs (``web-1`` ... ``web-N``) and one
Windows VM (``win-1``) in ``demo-vnet``, where ``demo-bastion`` reaches them; ``isolated-1`` in ``fleet-rg`` on
``basic-vnet`` (not peered: the host does not reach it); and ``web-1`` again in ``fleet-other-rg`` (a name clash for
``--all``). Resource group ``hostile-rg`` holds what ARM may say that no ssh option may become (HOSTILE_VMS): a VM
whose name, and one whose admin user, carries a line break and quotes balanced for ssh's parser, a VM whose NIC is
gone (404) and a deallocated one. ``start_fleet()`` runs an emulator with that seed, a config directory of az signed
in to it, and one real sshd per Linux VM (each its own host key, port and BASTION_VM marker variable; all trusting
one client key, as a user's VMs trust the user's key), each VM's port 22 pointed at its own sshd, and port 8080 at a
tiny HTTP server of its own that answers every GET with the VM's name."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .sandbox import AzCli, EmulatorProcess, az_environment
from .sshd import SshdHandle, start_sshd

FLEET_RG = "fleet-rg"
WEB_PORT = 8080         # each Linux VM's web server port
OTHER_RG = "fleet-other-rg"
HOSTILE_RG = "hostile-rg"
# A value that, written raw into ssh_config, ends its line and adds `Host *` with a ProxyCommand for every host.
INJECTION = "q\\'\"\nHost *\n    ProxyCommand touch {marker}\n#"
# Which fields Azure lets carry such characters: ARM refuses control characters in VM and resource group names
# (resource-name-rules), so a hostile VM *name* takes a compromised or impersonated ARM endpoint, as here through the
# seed; osProfile.adminUsername is checked by the Compute RP for length and a list of words (the REST spec names no
# character rule), and tags and the VM's computerName reach ARM as the VM reports them. The client trusts none.
HOSTILE_VMS = {
    "named": INJECTION.format(marker="bastion-hostile-name"),      # the VM's name
    "admin": "web-admin",                                               # its adminUsername carries the line break
    "no-nic": "web-no-nic",                                             # its NIC is gone (404)
    "stopped": "web-stopped",                                           # deallocated
}
HOSTILE_ADMIN = INJECTION.format(marker="bastion-hostile-admin")
DEFAULT_SEED = Path(__file__).resolve().parents[1] / "default_seed.json"
_PROVIDERS = "/subscriptions/{subscription}/resourceGroups/%s/providers/"


def _vm_pair(template_vm: dict, template_nic: dict, group: str, name: str, address: str, vnet: str,
             serial: int) -> list[dict]:
    nic_id = _PROVIDERS % group + f"Microsoft.Network/networkInterfaces/{name}-nic"
    nic = copy.deepcopy(template_nic)
    nic["id"] = nic_id
    ip_config = nic["properties"]["ipConfigurations"][0]
    ip_config["id"] = f"{nic_id}/ipConfigurations/ipconfig1"
    ip_config["properties"]["privateIPAddress"] = address
    ip_config["properties"]["subnet"]["id"] = \
        _PROVIDERS % "demo-rg" + f"Microsoft.Network/virtualNetworks/{vnet}/subnets/default"
    vm = copy.deepcopy(template_vm)
    vm["id"] = _PROVIDERS % group + f"Microsoft.Compute/virtualMachines/{name}"
    vm["properties"]["vmId"] = f"5b1c1a56-8f5e-4d0c-9a57-{serial:012x}"
    vm["properties"]["osProfile"]["computerName"] = name
    vm["properties"]["storageProfile"]["osDisk"]["name"] = f"{name}_OsDisk_1"
    vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"] = nic_id
    vm["emulator"] = {"powerState": "running", "endpoints": {}}
    return [nic, vm]


def fleet_seed(count: int = 8, base: Path = DEFAULT_SEED) -> dict:
    seed = json.loads(Path(base).read_text(encoding="utf-8"))
    by_name = {resource["id"].rsplit("/", 1)[-1]: resource for resource in seed["resources"]}
    linux, windows = by_name["linux-vm"], by_name["win-vm"]
    linux_nic, windows_nic = by_name["linux-vm-nic"], by_name["win-vm-nic"]
    seed["resource_groups"] = [*seed["resource_groups"], FLEET_RG, OTHER_RG]
    added = []
    for number in range(1, count + 1):
        added += _vm_pair(linux, linux_nic, FLEET_RG, f"web-{number}", f"10.0.0.{100 + number}", "demo-vnet",
                          0xf1ee7000 + number)
    added += _vm_pair(windows, windows_nic, FLEET_RG, "win-1", "10.0.0.99", "demo-vnet", 0xf1ee7100)
    added += _vm_pair(linux, linux_nic, FLEET_RG, "isolated-1", "10.1.0.50", "basic-vnet", 0xf1ee7200)
    added += _vm_pair(linux, linux_nic, OTHER_RG, "web-1", "10.0.0.98", "demo-vnet", 0xf1ee7300)
    seed["resource_groups"].append(HOSTILE_RG)
    for serial, (kind, name) in enumerate(HOSTILE_VMS.items()):
        nic, vm = _vm_pair(linux, linux_nic, HOSTILE_RG, name if kind != "named" else f"hostile-{serial}",
                           f"10.0.0.{90 + serial}", "demo-vnet", 0xf1ee7400 + serial)
        if kind == "named":     # the name in the VM's id and body; its NIC keeps a plain one
            vm["id"] = _PROVIDERS % HOSTILE_RG + f"Microsoft.Compute/virtualMachines/{name}"
        if kind == "admin":
            vm["properties"]["osProfile"]["adminUsername"] = HOSTILE_ADMIN
        if kind == "stopped":
            vm["emulator"]["powerState"] = "deallocated"
        added += [vm] if kind == "no-nic" else [nic, vm]
    seed["resources"] = [*seed["resources"], *added]
    return seed


@dataclass
class Fleet:
    emulator: EmulatorProcess
    az_env: dict
    client_key: Path                                                # every VM's sshd trusts it
    sshds: dict[str, SshdHandle] = field(default_factory=dict)      # VM name -> its sshd
    web_servers: dict[str, ThreadingHTTPServer] = field(default_factory=dict)   # VM name -> its web server

    @property
    def az(self) -> AzCli:
        return AzCli(self.az_env)

    def vm_id(self, name: str, group: str = FLEET_RG) -> str:
        return self.emulator.resource_id("Microsoft.Compute/virtualMachines", name, group)

    def point(self, name: str, port: int, host: str, target_port: int, group: str = FLEET_RG) -> None:
        answer = self.emulator.post("/_emulator/vm-endpoints", json={
            "vm_id": self.vm_id(name, group), "port": port, "host": host, "target_port": target_port})
        answer.raise_for_status()

    def stop(self) -> None:
        for sshd in self.sshds.values():
            sshd.stop()
        for web in self.web_servers.values():
            web.shutdown()
            web.server_close()
        self.emulator.stop()


def start_web_server(vm_name: str) -> ThreadingHTTPServer:
    """A loopback HTTP server answering every GET with ``vm_name`` (a line of text), on a thread of its own."""
    body = f"{vm_name}\n".encode()

    class NameHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NameHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_fleet(workdir: str | Path, count: int = 8) -> Fleet:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seed_path = workdir / "fleet_seed.json"
    seed_path.write_text(json.dumps(fleet_seed(count)), encoding="utf-8")
    client_key = workdir / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bastion-fleet-client", "-f",
                    str(client_key)], check=True, capture_output=True)
    emulator = EmulatorProcess(workdir / "emulator", seed=str(seed_path)).start()
    fleet = Fleet(emulator, {}, client_key)
    try:
        fleet.az_env = az_environment(emulator, workdir / "azure-config")
        ready = emulator.ready
        for number in range(1, count + 1):
            name = f"web-{number}"
            sshd_dir = workdir / f"sshd-{name}"
            sshd_dir.mkdir()
            for suffix in ("", ".pub"):     # start_sshd keeps a client key it finds
                shutil.copyfile(f"{client_key}{suffix}", sshd_dir / f"client_key{suffix}")
            (sshd_dir / "client_key").chmod(0o600)
            sshd = start_sshd(sshd_dir, user_ca_pub=ready.get("user_ca_pub"),
                              login_user=ready.get("login_name", "azureuser"), environment={"BASTION_VM": name})
            fleet.sshds[name] = sshd
            fleet.point(name, 22, sshd.host, sshd.port)
            web = fleet.web_servers[name] = start_web_server(name)
            fleet.point(name, WEB_PORT, *web.server_address[:2])
    except BaseException:
        fleet.stop()
        raise
    return fleet
