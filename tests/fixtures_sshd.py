"""pytest fixtures around a real sshd and loopback TCP backends; imported by tests/conftest.py.

- ``sshd`` (session): a real OpenSSH server on a loopback port (see ``bastion_emulator.sshd``) that trusts the
  emulator's SSH user CA; the password/key user is ``sshd.user``, the certificate user is ``sshd.cert_user``
  (the emulator's login name). Skipped when sshd is not installed.
- ``sshd_linux_vm`` (session): the same sshd, with the emulator's seeded ``linux-vm`` port 22 pointed at it.
- ``sshd_second_linux_vm`` (session): another sshd (own host key, own client key) behind the seeded ``linux-vm-2``;
  its sessions see ``VM_MARKER=linux-vm-2`` and its sftp/scp sessions start in ``.sftp_directory``, so a test can
  tell which VM it reached.
- ``echo_server`` (session): a loopback echo server (``.address``, ``.port``).
- ``sink_source`` (function): factory ``sink_source(send_bytes=N, close_after_send=False)`` -> a server that
  sends N deterministic bytes per connection and counts what it receives (``.connections``).

``sshd`` and ``sshd_linux_vm`` need the ``emulator`` fixture (``.ready`` = ready.json) from tests/conftest.py.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bastion_emulator.testing.backends import LoopbackServer, start_echo_server, start_sink_source
from bastion_emulator.testing.sshd import SshdHandle, sshd_available, start_sshd

LINUX_VM = "linux-vm"
SECOND_LINUX_VM = "linux-vm-2"
DEFAULT_LOGIN_NAME = "azureuser"


@dataclass
class LinuxVmSshd:
    sshd: SshdHandle
    vm_id: str
    vm_port: int = 22
    marker: str | None = None           # VM_MARKER in its sessions' environment
    sftp_directory: Path | None = None  # where its scp/sftp sessions start


@pytest.fixture(scope="session")
def sshd(emulator, tmp_path_factory):
    if not sshd_available():
        pytest.skip("OpenSSH server (sshd) is not installed: apt-get install openssh-server")
    ready = emulator.ready
    handle = start_sshd(tmp_path_factory.mktemp("sshd"), user_ca_pub=ready.get("user_ca_pub"),
                        login_user=ready.get("login_name", DEFAULT_LOGIN_NAME))
    yield handle
    handle.stop()


def _point_vm_at(emulator, vm_name: str, handle: SshdHandle) -> str:
    """The seeded VM's port 22 reaches ``handle``; returns the VM's resource id."""
    ready = emulator.ready
    vm_id = f"/subscriptions/{ready['subscription']}/resourceGroups/demo-rg/providers/Microsoft.Compute/" \
            f"virtualMachines/{vm_name}"
    answer = requests.post(f"{ready['arm'].rstrip('/')}/_emulator/vm-endpoints", verify=ready["ca_bundle"],
                           json={"vm_id": vm_id, "port": 22, "host": handle.host, "target_port": handle.port},
                           timeout=10)
    answer.raise_for_status()
    return vm_id


@pytest.fixture(scope="session")
def sshd_linux_vm(emulator, sshd):
    return LinuxVmSshd(sshd=sshd, vm_id=_point_vm_at(emulator, LINUX_VM, sshd))


@pytest.fixture(scope="session")
def sshd_second_linux_vm(emulator, sshd, tmp_path_factory):
    """A second VM on a second sshd. Its sftp directory is outside pytest's root-only temp dir (sshd opens it as
    the login user) and world-writable for that user."""
    sftp_directory = Path(tempfile.mkdtemp(prefix="bastion-sshd-vm2-"))
    sftp_directory.chmod(0o1777)
    ready = emulator.ready
    handle = start_sshd(tmp_path_factory.mktemp("sshd-vm2"), user_ca_pub=ready.get("user_ca_pub"),
                        login_user=ready.get("login_name", DEFAULT_LOGIN_NAME),
                        environment={"VM_MARKER": SECOND_LINUX_VM}, sftp_directory=sftp_directory)
    yield LinuxVmSshd(sshd=handle, vm_id=_point_vm_at(emulator, SECOND_LINUX_VM, handle), marker=SECOND_LINUX_VM,
                      sftp_directory=sftp_directory)
    handle.stop()
    shutil.rmtree(sftp_directory, ignore_errors=True)


@pytest.fixture
def ssh_key(sshd_linux_vm, tmp_path):
    """The key authorised on the test sshd, copied to a 0600 file of the test's own (ssh refuses open keys)."""
    key = tmp_path / "id_ed25519"
    shutil.copyfile(sshd_linux_vm.sshd.client_key, key)
    key.chmod(0o600)
    return key


@pytest.fixture(scope="session")
def echo_server():
    server = start_echo_server()
    yield server
    server.stop()


@pytest.fixture
def sink_source():
    servers: list[LoopbackServer] = []

    def make(send_bytes: int = 0, close_after_send: bool = False) -> LoopbackServer:
        server = start_sink_source(send_bytes=send_bytes, close_after_send=close_after_send)
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.stop()
