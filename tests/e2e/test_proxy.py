"""`az network bastion proxy` as ssh's ProxyCommand, against the emulator and a real sshd."""

import shlex
import subprocess

import pytest

from bastion_emulator.testing.az_login import az_executable
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e


def test_ssh_runs_a_remote_command_through_the_proxy(az_env, sshd_linux_vm, tmp_path, emulator):
    sshd = sshd_linux_vm.sshd
    proxy = ' '.join(shlex.quote(part) for part in [
        az_executable(), 'network', 'bastion', 'proxy', '-g', RG, '-n', HOST,
        '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', '22'])
    known_hosts = tmp_path / 'known_hosts'
    known_hosts.write_text(f'vm {sshd.host_key_pub}\n')
    result = subprocess.run(
        ['ssh', '-o', f'ProxyCommand={proxy}', '-o', 'HostKeyAlias=vm', '-o', f'UserKnownHostsFile={known_hosts}',
         '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
         '-i', str(sshd.client_key), '-l', sshd.user, 'linux-vm', 'echo proxied-$((6*7))'],
        env=az_env, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'proxied-42'
    assert sessions_drain(emulator)


def test_proxy_refuses_a_host_without_native_client(az, emulator):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    result = az('network', 'bastion', 'proxy', '-g', RG, '-n', 'basic-bastion', '--target-resource-id', vm_id,
                '--resource-port', '22', check=False, input='')
    assert result.returncode != 0
    assert 'az network bastion native-client enable -g demo-rg -n basic-bastion' in result.stderr
    assert result.stdout == ''
