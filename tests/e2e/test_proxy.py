"""`az network bastion proxy` as ssh's ProxyCommand, against the emulator and a real sshd."""

import select
import shlex
import signal
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


ECHO_VM_PORT = 7007


@pytest.fixture
def echo_vm(emulator, echo_server):
    emulator.set_vm_endpoint('linux-vm', ECHO_VM_PORT, echo_server.host, echo_server.port)
    yield emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    emulator.delete('/_emulator/faults')


def _proxy(az_env, vm_id, *options):
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [az_executable(), 'network', 'bastion', 'proxy', '-g', RG, '-n', HOST, '--target-resource-id', vm_id,
         '--resource-port', str(ECHO_VM_PORT), *options],
        env=az_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize('signum, code', [(signal.SIGHUP, 129), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_proxy_with_its_exit_status_and_deletes_the_session(az_env, emulator, echo_vm, signum,
                                                                              code):
    proxy = _proxy(az_env, echo_vm)
    try:
        proxy.stdin.write(b'ping')
        proxy.stdin.flush()
        assert select.select([proxy.stdout], [], [], 60)[0], 'nothing relayed'
        assert proxy.stdout.read1(4) == b'ping'
        assert len(emulator.get('/_emulator/sessions').json()) == 1
        proxy.send_signal(signum)
        _, stderr = proxy.communicate(timeout=30)
    finally:
        if proxy.poll() is None:
            proxy.kill()
    assert proxy.returncode == code, stderr[-2000:]
    assert b'Traceback' not in stderr
    assert sessions_drain(emulator)


def test_a_refused_session_is_logged_as_an_error(az_env, emulator, echo_vm):
    emulator.post('/_emulator/faults', {'mint_status': 401, 'count': 1})
    proxy = _proxy(az_env, echo_vm)
    _, stderr = proxy.communicate(b'', timeout=60)
    assert proxy.returncode == 1
    text = stderr.decode(errors='replace')
    assert 'ERROR: proxy (stdio): ' in text and 'HTTP 401' in text, text[-2000:]
    assert 'WARNING: proxy (stdio)' not in text and 'Traceback' not in text


def _echoed(proxy, data):
    proxy.stdin.write(data)
    proxy.stdin.flush()
    assert select.select([proxy.stdout], [], [], 60)[0], 'nothing relayed'
    return proxy.stdout.read1(len(data))


def test_idle_timeout_ends_a_quiet_relay_with_exit_0_and_deletes_the_session(az_env, emulator, echo_vm):
    """stdin stays open (ssh's would): only --idle-timeout can end this relay."""
    proxy = _proxy(az_env, echo_vm, '--idle-timeout', '2', '--verbose')
    try:
        assert _echoed(proxy, b'ping') == b'ping'
        code = proxy.wait(timeout=60)
        stderr = proxy.stderr.read().decode(errors='replace')
    finally:
        if proxy.poll() is None:
            proxy.kill()
        proxy.stdin.close()
    assert code == 0, stderr[-2000:]
    assert '--idle-timeout elapsed' in stderr and 'Traceback' not in stderr
    assert sessions_drain(emulator)


def test_timeout_ends_a_busy_relay_with_exit_0_and_deletes_the_session(az_env, emulator, echo_vm):
    """Bytes keep flowing both ways until the proxy exits: --timeout ends it all the same."""
    proxy = _proxy(az_env, echo_vm, '--timeout', '3', '--verbose')
    try:
        for _ in range(600):
            if proxy.poll() is not None:
                break
            try:
                assert _echoed(proxy, b'x') in (b'x', b'')
            except BrokenPipeError:
                break
            select.select([], [], [], 0.1)
        code = proxy.wait(timeout=60)
        stderr = proxy.stderr.read().decode(errors='replace')
    finally:
        if proxy.poll() is None:
            proxy.kill()
    assert code == 0, stderr[-2000:]
    assert '--timeout elapsed' in stderr and 'Traceback' not in stderr
    assert sessions_drain(emulator)


@pytest.mark.parametrize('option', ['--timeout', '--idle-timeout'])
def test_a_time_limit_of_zero_is_refused_before_any_request(az, emulator, echo_vm, option):
    result = az('network', 'bastion', 'proxy', '-g', RG, '-n', HOST, '--target-resource-id', echo_vm,
                '--resource-port', ECHO_VM_PORT, option, '0', check=False, input='')
    assert result.returncode != 0 and result.stdout == ''
    assert f'{option} 0' in result.stderr and 'Traceback' not in result.stderr
