"""`az network bastion ssh-config` end to end: the real az writes the block, then the real ssh and scp use it
(ProxyCommand: the connection agent's helper, or `az network bastion proxy` with --no-agent) against the emulator
and a real sshd; no Bastion session is left. The agent itself: test_fleet_agent.py."""

import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from azext_bastion_native.connect.ssh_config_text import end_marker, start_marker
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

ALIAS = 'bastion-linux-vm'


def _ssh_config(az, vm_id, *extra, check=True):
    return az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--target-resource-id', vm_id, *extra,
              check=check)


def _client(az, program, config, known_hosts, *args):
    """ssh or scp with the written config; known_hosts in the test's own file (ssh reads ~ from passwd)."""
    return subprocess.run([program, '-F', str(config), '-o', f'UserKnownHostsFile={known_hosts}',
                           '-o', 'BatchMode=yes', *args],
                          env=az.env, capture_output=True, text=True, timeout=90, check=False)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_written_config_drives_real_ssh_and_scp_both_ways(az, emulator, sshd_linux_vm, ssh_key, tmp_path):
    sshd = sshd_linux_vm.sshd
    config = tmp_path / 'dot-ssh' / 'config'        # neither directory nor file exists yet
    result = _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', ALIAS, '--username', sshd.user,
                         '--ssh-key', str(ssh_key), '--file', str(config), '--no-agent')
    assert result.stdout == ''
    assert f"Connect with: ssh -F {config} {ALIAS}\n" in result.stderr      # not a file ssh reads by itself
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700

    known_hosts = tmp_path / 'known_hosts'
    uname = _client(az, 'ssh', config, known_hosts, ALIAS, 'uname -a; whoami')
    assert uname.returncode == 0, uname.stderr[-2000:]
    assert uname.stdout.startswith('Linux ') and uname.stdout.split()[-1] == sshd.user
    # Pinned under the same name `az network bastion ssh` uses for this VM (never under the alias or a port).
    pinned = known_hosts.read_text(encoding='utf-8')
    assert pinned.split()[0] == 'bastion.' + sshd_linux_vm.vm_id.lower().replace('/', '-').strip('-')
    assert sshd.host_key_pub.split()[1] in pinned

    upload = tmp_path / 'upload.bin'
    upload.write_bytes(os.urandom(256 * 1024))
    remote = f'ssh-config-{os.getpid()}.bin'
    sent = _client(az, 'scp', config, known_hosts, str(upload), f'{ALIAS}:{remote}')
    assert sent.returncode == 0, sent.stderr[-2000:]
    back = tmp_path / 'back.bin'
    fetched = _client(az, 'scp', config, known_hosts, f'{ALIAS}:{remote}', str(back))
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert _sha256(back) == _sha256(upload)
    _client(az, 'ssh', config, known_hosts, ALIAS, f'rm -f {remote}')
    assert sessions_drain(emulator)


def test_without_file_stdout_is_exactly_the_block(az, sshd_linux_vm):
    block = _ssh_config(az, sshd_linux_vm.vm_id, '--no-agent').stdout
    lines = block.splitlines()
    assert lines[0] == start_marker('linux-vm')          # default alias: the VM name
    assert lines[-1] == end_marker('linux-vm')
    assert 'Host linux-vm' in lines
    proxy = next(line.split(None, 1)[1] for line in lines if line.strip().startswith('ProxyCommand'))
    program = proxy.split()[0]
    assert os.path.isabs(program) and os.access(program, os.X_OK)
    assert proxy.endswith(f'network bastion proxy -g {RG} -n {HOST} --target-resource-id {sshd_linux_vm.vm_id} '
                          '--resource-port 22')
    assert '    StrictHostKeyChecking accept-new' in lines
    assert not any('IdentityFile' in line for line in lines)       # no key given, none written


def test_second_write_refused_then_overwrite_replaces_only_the_block(az, sshd_linux_vm, tmp_path):
    config = tmp_path / 'config'
    before = 'Host *\n    ServerAliveInterval 30\n'
    config.write_text(before, encoding='utf-8')
    config.chmod(0o640)
    _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', 'web', '--username', 'alice', '--file', str(config))
    after = '\nHost other\n    HostName 192.0.2.1   # the user\'s own, kept as it is\n'
    with open(config, 'a', encoding='utf-8') as handle:
        handle.write(after)
    first = config.read_text(encoding='utf-8')

    refused = _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', 'web', '--username', 'bob', '--file',
                          str(config), check=False)
    assert refused.returncode != 0
    assert '--overwrite' in refused.stderr and 'Traceback' not in refused.stderr
    assert config.read_text(encoding='utf-8') == first

    _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', 'web', '--username', 'bob', '--file', str(config),
                '--overwrite')
    second = config.read_text(encoding='utf-8')
    assert second.endswith(before + after)         # the block sits before the user's `Host *`: ssh reads it first
    assert second.count(start_marker('web')) == 1
    assert '    User bob' in second and 'alice' not in second
    assert second.replace('User bob', 'User alice') == first     # exactly the block changed, nothing else
    assert stat.S_IMODE(config.stat().st_mode) == 0o640          # the user's mode is kept
    assert [name for name in os.listdir(tmp_path) if name.startswith('.config.')] == []


def test_host_without_native_client_is_refused_and_nothing_written(az, emulator, tmp_path):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    config = tmp_path / 'config'
    result = az('network', 'bastion', 'ssh-config', '-g', RG, '-n', 'basic-bastion', '--target-resource-id', vm_id,
                '--file', str(config), check=False)
    assert result.returncode != 0
    assert 'az network bastion native-client enable -g demo-rg -n basic-bastion' in result.stderr
    assert not config.exists()


def test_missing_vm_is_refused(az, emulator):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'no-such-vm')
    result = _ssh_config(az, vm_id, check=False)
    assert result.returncode != 0
    assert 'no-such-vm' in result.stderr and 'az vm list' in result.stderr
    assert result.stdout == ''


def test_cloud_shell_and_key_vault_key_are_refused_before_any_request(az, emulator, sshd_linux_vm, tmp_path):
    for extra, env, words in (([], {'ACC_CLOUD': '1'}, 'Cloud Shell'),
                              (['--ssh-key', 'https://myvault.vault.azure.net/secrets/sshkey'], {}, 'Key Vault')):
        emulator.delete('/_emulator/requests')
        result = az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--target-resource-id',
                    sshd_linux_vm.vm_id, '--file', str(tmp_path / 'config'), *extra, check=False, env_extra=env)
        seen = [r for r in emulator.get('/_emulator/requests').json()['requests']
                if not r['path'].startswith('/_emulator')]
        assert result.returncode != 0 and words in result.stderr
        assert seen == []
        assert not (tmp_path / 'config').exists()


def test_block_wins_over_the_users_host_star_and_quotes_an_apostrophe_key(
        az, emulator, sshd_linux_vm, ssh_key, tmp_path):
    """ssh takes the first value it finds: the user's `Host *` (another User, strict host keys) must not win over
    the block; a key path with an apostrophe and --subscription are written so ssh and the proxy take them."""
    sshd = sshd_linux_vm.sshd
    key = tmp_path / "bob's_key"
    key.write_bytes(ssh_key.read_bytes())
    key.chmod(0o600)
    config = tmp_path / 'config'
    users_lines = 'Host *\n    User someone\n    StrictHostKeyChecking yes\n'
    config.write_text(users_lines, encoding='utf-8')
    subscription = emulator.ready['subscription']
    _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', 'starred', '--username', sshd.user, '--ssh-key', str(key),
                '--file', str(config), '--subscription', subscription, '--no-agent')
    text = config.read_text(encoding='utf-8')
    assert text.endswith('\n' + users_lines) and text.index('Host starred') < text.index('Host *')
    assert f'--subscription {subscription}' in text
    result = _client(az, 'ssh', config, tmp_path / 'known_hosts', 'starred', 'whoami')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == sshd.user
    assert sessions_drain(emulator)


def _resolved(config, alias, env):
    out = subprocess.run(['ssh', '-G', '-F', str(config), alias], capture_output=True, text=True, check=True,
                         timeout=10, env=env).stdout
    options = {}
    for line in out.splitlines():
        key, _, value = line.partition(' ')
        options.setdefault(key, []).append(value)
    return options


def test_the_users_top_level_lines_and_include_do_not_win(az, emulator, sshd_linux_vm, ssh_key, tmp_path):
    """A config as people have it: top-level User/ProxyCommand none and, first of all, an Include whose file says
    `Host *` + ProxyJump (the corporate jump host). The block must still be what ssh uses for its alias, the user's
    lines still what it uses for every other host, and a real ssh through the block must reach the VM."""
    sshd = sshd_linux_vm.sshd
    corp = tmp_path / 'corp.conf'
    corp.write_text('Host *\n    ProxyJump corp-jump.example\n    User corpuser\n', encoding='utf-8')
    config = tmp_path / 'config'
    users = f'Include {corp}\nUser topuser\nProxyCommand none\nServerAliveInterval 15\n\nHost other\n    Port 2222\n'
    config.write_text(users, encoding='utf-8')
    before_elsewhere = _resolved(config, 'elsewhere', az.env)
    result = _ssh_config(az, sshd_linux_vm.vm_id, '--host-alias', 'vm', '--username', sshd.user, '--ssh-key',
                         str(ssh_key), '--file', str(config), '--no-agent')
    assert 'Added the Bastion block' in result.stderr
    mine = _resolved(config, 'vm', az.env)
    assert mine['user'] == [sshd.user] and 'proxyjump' not in mine
    assert 'network bastion proxy' in mine['proxycommand'][0] and mine['identityfile'][0] == str(ssh_key)
    assert _resolved(config, 'elsewhere', az.env) == before_elsewhere       # the user's lines apply as before
    result = _client(az, 'ssh', config, tmp_path / 'known_hosts', 'vm', 'whoami')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == sshd.user
    assert sessions_drain(emulator)


def test_several_runs_at_once_on_one_file_keep_every_block(az, sshd_linux_vm, tmp_path):
    """Six real az processes write six blocks into one config at the same time (an `ssh` that takes a second to
    read the config, as on a loaded machine, keeps each run's read-merge-write open long enough to overlap)."""
    slow = tmp_path / 'slow-bin'
    slow.mkdir()
    (slow / 'ssh').write_text(f'#!/bin/sh\nsleep 1\nexec {shutil.which("ssh")} "$@"\n', encoding='utf-8')
    (slow / 'ssh').chmod(0o755)
    config = tmp_path / 'config'
    config.write_text('Host mine\n    Port 2222\n', encoding='utf-8')
    env = dict(az.env, PATH=f"{slow}:{az.env.get('PATH', os.environ['PATH'])}")
    runs = [subprocess.Popen([az.executable, 'network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST,
                              '--target-resource-id', sshd_linux_vm.vm_id, '--host-alias', f'vm{number}',
                              '--file', str(config), '--no-agent'], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for number in range(6)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    text = config.read_text(encoding='utf-8')
    for number in range(6):
        assert text.count(start_marker(f'vm{number}')) == 1 and f'Host vm{number}\n' in text
    assert text.startswith('Host mine\n    Port 2222\n')


@pytest.mark.parametrize('output', ['json', 'none'])
def test_an_output_format_gets_a_result_not_the_raw_block(az, sshd_linux_vm, output):
    result = _ssh_config(az, sshd_linux_vm.vm_id, '--no-agent', '-o', output)
    assert start_marker('linux-vm') not in result.stdout.replace('\\n', '\n').split('"blocks"')[0]
    if output == 'none':
        assert result.stdout == ''
    else:
        assert sorted(result.json) == ['blocks', 'skipped'] and result.json['skipped'] == []
        assert result.json['blocks']['linux-vm'].startswith(start_marker('linux-vm') + '\n')


def test_a_file_ssh_does_not_read_by_itself_is_in_the_connect_hint(az, sshd_linux_vm, tmp_path):
    config = tmp_path / 'my configs' / 'bastion'
    result = _ssh_config(az, sshd_linux_vm.vm_id, '--file', str(config), '--no-agent')
    assert f"Connect with: ssh -F '{config}' linux-vm" in result.stderr


def test_a_stopped_vm_is_refused_as_ssh_refuses_it(az, emulator, tmp_path):
    """The one rule for stopped VMs: no block (the one-VM form refuses, --vm-resource-group/--all skip it)."""
    stopped = emulator.resource_id('Microsoft.Compute/virtualMachines', 'stopped-vm')
    config = tmp_path / 'config'
    result = _ssh_config(az, stopped, '--file', str(config), check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'not running' in result.stderr and 'az vm start' in result.stderr
    assert not config.exists()


def test_query_gets_the_result_too(az, sshd_linux_vm):
    result = _ssh_config(az, sshd_linux_vm.vm_id, '--no-agent', '--query', 'blocks."linux-vm"', '-o', 'tsv')
    assert result.stdout.startswith(start_marker('linux-vm') + '\n')
    bare = _ssh_config(az, sshd_linux_vm.vm_id, '--no-agent', '--query', 'skipped')
    assert bare.json == []
