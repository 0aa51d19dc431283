"""A fleet end to end: an emulator with resource group fleet-rg (8 Linux VMs, each its own real sshd; a Windows VM; a VM
the host cannot reach), `ssh-config --vm-resource-group` with an Ansible inventory, then the real ssh and
ansible-core through the connection agent: ping and a playbook on every VM, each VM reached at its own sshd, no
session left after `agent stop`, no token in any log."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bastion_emulator.testing.fleet import FLEET_RG, HOSTILE_RG, HOSTILE_VMS, OTHER_RG, start_fleet
from bastion_emulator.testing.sshd import sshd_available
from azext_bastion_native.connect.ssh_config_text import end_marker, start_marker
from tests.conftest import make_short_dir
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
VMS = [f'web-{number}' for number in range(1, 9)]


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    if not sshd_available():
        pytest.skip('OpenSSH server (sshd) is not installed')
    running = start_fleet(tmp_path_factory.mktemp('fleet'))
    runtime = make_short_dir('bn-runtime-')     # the agent's socket goes in it
    running.az_env['XDG_RUNTIME_DIR'] = str(runtime)
    yield running
    running.az('network', 'bastion', 'agent', 'stop', check=False)
    running.stop()
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope='module')
def written(fleet, tmp_path_factory):
    """ssh-config for fleet-rg into a config whose user's `Host *` comes first (and keeps known_hosts here)."""
    home = tmp_path_factory.mktemp('fleet-home')
    config, inventory = home / 'ssh config', home / 'inventory.yml'      # a space: quoted for Ansible
    users_lines = f"Host *\n    UserKnownHostsFile {home / 'known_hosts'}\n    ServerAliveInterval 30\n"
    config.write_text(users_lines, encoding='utf-8')
    result = fleet.az(*_fleet_config(fleet), '--file', str(config), '--inventory', str(inventory))
    return {'home': home, 'config': config, 'inventory': inventory, 'users_lines': users_lines,
            'summary': result.json}


def _fleet_config(fleet):
    """ssh-config for fleet-rg, signing in as the sshds' user with the one key they all trust."""
    return ('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
            '--username', next(iter(fleet.sshds.values())).user, '--ssh-key', str(fleet.client_key))


def _ssh(fleet, written, alias, *command, timeout=120):
    options = [word for word in command if word.startswith('-v')]
    command = [word for word in command if word not in options]
    return subprocess.run(['ssh', '-F', str(written['config']), '-o', 'BatchMode=yes', *options, alias, *command],
                          env=fleet.az_env, capture_output=True, text=True, timeout=timeout, check=False)


def test_one_block_per_linux_vm_windows_and_unreachable_skipped_users_lines_kept(fleet, written):
    summary = written['summary']
    assert summary['added'] == sorted(VMS) and summary['updated'] == [] and summary['pruned'] == []
    skipped = {item['vm']: item['reason'] for item in summary['skipped']}
    assert set(skipped) == {'win-1', 'isolated-1'}
    assert 'Windows' in skipped['win-1'] and 'virtual network' in skipped['isolated-1']
    text = written['config'].read_text(encoding='utf-8')
    assert text.endswith('\n' + written['users_lines'])        # before the user's Host *, which stays as it was
    for vm in VMS:
        assert text.count(f'Host {vm}\n') == 1

    again = fleet.az(*_fleet_config(fleet), '--file', str(written['config']),
                     '--inventory', str(written['inventory'])).json
    assert again['updated'] == sorted(VMS) and again['added'] == []
    assert written['config'].read_text(encoding='utf-8') == text          # idempotent: the same text


def test_prune_removes_only_blocks_of_vms_that_are_gone(fleet, written, tmp_path):
    config = tmp_path / 'config'
    shutil.copyfile(written['config'], config)
    text = config.read_text(encoding='utf-8')
    gone = text[text.index(start_marker('web-8')):text.index(end_marker('web-8'))]
    stale = (gone.replace('web-8', 'web-99') + end_marker('web-99') + '\n\n')
    mine = 'Host mine\n    Port 2222\n\n'
    config.write_text(mine + stale + text, encoding='utf-8')
    args = (*_fleet_config(fleet), '--file', str(config))
    assert fleet.az(*args).json['pruned'] == []
    assert 'Host web-99' in config.read_text(encoding='utf-8')
    pruned = fleet.az(*args, '--prune').json
    assert pruned['pruned'] == ['web-99']
    after = config.read_text(encoding='utf-8')
    assert 'web-99' not in after and after.startswith(mine) and after.count('Host web-') == 8


def test_all_makes_clashing_names_unique_and_leaves_out_what_the_host_cannot_reach(fleet):
    result = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--all')
    hosts = sorted(line.split()[1] for line in result.stdout.splitlines() if line.startswith('Host '))
    assert f'web-1-{FLEET_RG}' in hosts and f'web-1-{OTHER_RG}' in hosts and 'web-1' not in hosts
    assert 'web-2' in hosts and 'linux-vm' in hosts
    assert 'isolated-1' not in hosts and 'win-1' not in hosts
    # Skipped VMs are named on stderr without --file too (--all: those the host reaches).
    assert "Skipped VM 'win-1' (resource group fleet-rg): Windows VM" in result.stderr
    assert "Skipped VM 'web-stopped' (resource group hostile-rg): not running (power state: deallocated)" \
        in result.stderr


def test_an_alias_written_by_one_scope_stays_under_the_other(fleet, written, tmp_path):
    """web-1 written by --vm-resource-group stays web-1 under --all; only the newcomer of the same name is renamed."""
    config = tmp_path / 'config'
    shutil.copyfile(written['config'], config)
    summary = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--all', '--file', str(config)).json
    assert 'web-1' in summary['updated'] and f'web-1-{OTHER_RG}' in summary['added']
    assert f'web-1-{FLEET_RG}' not in summary['added'] + summary['updated']


def test_hostile_values_from_arm_never_become_ssh_options(fleet, tmp_path):
    """hostile-rg: a VM whose name and one whose admin user end their line and add `Host *` + ProxyCommand, a VM
    whose NIC is gone, a stopped VM. Each is skipped with its reason; nothing of them is written; the run succeeds,
    printed or written, and the user's own hosts get no ProxyCommand."""
    config = tmp_path / 'config'
    users = 'Host mine\n    Port 2222\n'
    config.write_text(users, encoding='utf-8')
    printed = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', HOSTILE_RG)
    assert printed.stdout == '' and all(line.startswith('Skipped VM ') for line in printed.stderr.splitlines())
    for words in ('control character', 'network interface could not be read', 'not running'):
        assert words in printed.stderr
    result = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', HOSTILE_RG,
                      '--file', str(config), '-o', 'json')
    reasons = {item['vm']: item['reason'] for item in result.json['skipped']}
    assert set(reasons) == {HOSTILE_VMS['named'].replace('\n', '\\x0a'), 'web-admin', 'web-no-nic', 'web-stopped'}
    assert 'admin user' in reasons['web-admin'] and 'HTTP 404' in reasons['web-no-nic']
    assert result.json['added'] == [] and config.read_text(encoding='utf-8') == users
    for host in ('mine', 'anything'):
        resolved = subprocess.run(['ssh', '-G', '-F', str(config), host], capture_output=True, text=True,
                                  check=True, timeout=10).stdout
        assert 'proxycommand' not in resolved


def test_the_users_top_level_lines_do_not_win_over_the_fleets_blocks(fleet, written, tmp_path):
    corp = tmp_path / 'corp.conf'
    corp.write_text('Host *\n    ProxyJump corp-jump.example\n    User corpuser\n', encoding='utf-8')
    config = tmp_path / 'config'
    config.write_text(f"Include {corp}\nUser topuser\nUserKnownHostsFile {written['home'] / 'known_hosts'}\n",
                      encoding='utf-8')
    fleet.az(*_fleet_config(fleet), '--file', str(config))
    result = subprocess.run(['ssh', '-F', str(config), '-o', 'BatchMode=yes', 'web-4', 'echo $BASTION_VM'],
                            env=fleet.az_env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'web-4'


def test_inventory_groups_by_os_and_resource_group(written):
    inventory = json.loads(written['inventory'].read_text(encoding='utf-8').split('\n', 1)[1])
    children = inventory['all']['children']
    assert sorted(children['linux']['hosts']) == sorted(VMS)
    assert sorted(children['rg_fleet_rg']['hosts']) == sorted(VMS)
    assert inventory['all']['vars']['ansible_ssh_common_args'] == f"-F {shlex.quote(str(written['config']))}"


def _ansible_env(fleet, written):
    env = dict(fleet.az_env, ANSIBLE_LOCAL_TEMP=str(written['home'] / 'ansible-tmp'),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(written['home'] / 'cp'))
    return env


def test_ansible_ping_and_a_playbook_across_the_fleet_then_no_session_and_no_token_in_any_log(fleet, written):
    inventory = str(written['inventory'])       # nothing else configured: the inventory and the ssh config
    env = _ansible_env(fleet, written)
    fleet.az('network', 'bastion', 'agent', 'stop')
    # The agent at --debug, its log in a file of ours (the helpers find it on its socket and use it).
    agent_log = written['home'] / 'agent-debug.log'
    with open(agent_log, 'wb') as log:
        agent = subprocess.Popen([fleet.az.executable, 'network', 'bastion', 'agent', 'start', '--foreground',
                                  '--debug'], env=fleet.az_env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while not fleet.az('network', 'bastion', 'agent', 'status').json['running']:
        assert agent.poll() is None and time.monotonic() < deadline, agent_log.read_text()[-3000:]
        time.sleep(0.2)

    ping = subprocess.run([ANSIBLE, '-i', inventory, 'all', '-m', 'ping', '-vvvv'], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert ping.returncode == 0, ping.stdout[-3000:] + ping.stderr[-3000:]
    assert ping.stdout.count('SUCCESS') == 8

    playbook = written['home'] / 'playbook.yml'
    playbook.write_text("""
- hosts: all
  gather_facts: false
  tasks:
    - copy:
        content: "fleet file for {{ inventory_hostname }}\\n"
        dest: "/tmp/bastion-fleet-{{ inventory_hostname }}.txt"
    - command: "sha256sum /tmp/bastion-fleet-{{ inventory_hostname }}.txt"
      register: digest
    - shell: "echo $BASTION_VM $SSH_CONNECTION"
      register: connection
    - debug:
        msg: "RESULT {{ inventory_hostname }} {{ digest.stdout.split()[0] }} {{ connection.stdout.split()[0] }}
          {{ connection.stdout.split()[4] }}"
""", encoding='utf-8')
    played = subprocess.run([ANSIBLE_PLAYBOOK, '-i', inventory, str(playbook), '-vvv'], env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-3000:]
    import hashlib
    results = {}
    for line in played.stdout.splitlines():
        if '"msg": "RESULT ' in line:
            _, vm, digest, marker, port = line.split('"msg": "', 1)[1].rstrip('"').split()
            results[vm] = (digest, marker, int(port))
    assert sorted(results) == sorted(VMS)
    for vm, (digest, marker, port) in results.items():
        assert digest == hashlib.sha256(f'fleet file for {vm}\n'.encode()).hexdigest()
        assert marker == vm and port == fleet.sshds[vm].port    # each VM reached at its own sshd: kept apart
        os.unlink(f'/tmp/bastion-fleet-{vm}.txt')

    ssh_vvv = _ssh(fleet, written, 'web-5', '-vvv', 'true')
    assert ssh_vvv.returncode == 0, ssh_vvv.stderr[-2000:]
    status = fleet.az('network', 'bastion', 'agent', 'status').json
    assert status['running'] and status['connectionsFailed'] == 0 and status['pid'] == agent.pid
    subprocess.run(['ssh', '-O', 'exit', '-o', f"ControlPath={written['home'] / 'cp'}/%C", 'x'], check=False,
                   capture_output=True, env=env)     # ansible's ControlPersist masters may still hold connections
    assert fleet.az('network', 'bastion', 'agent', 'stop').json['stopped']
    assert agent.wait(30) == 0
    assert sessions_drain(fleet.emulator, timeout=15)

    secrets = fleet.emulator.get('/_emulator/secrets').json()['secrets']
    debug_log = agent_log.read_text(encoding='utf-8', errors='replace')
    assert secrets and 'DEBUG: ' in debug_log          # tokens were issued, and the agent logged at --debug
    assert 'debug1: Executing proxy command' in ssh_vvv.stderr
    for text in (ping.stdout, ping.stderr, played.stdout, played.stderr, debug_log, ssh_vvv.stderr):
        assert not [secret for secret in secrets if secret in text]


def test_vm_3_through_the_config_with_a_cold_a_warm_and_a_killed_agent(fleet, written):
    fleet.az('network', 'bastion', 'agent', 'stop')
    cold = _ssh(fleet, written, 'web-3', 'echo $BASTION_VM')
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert cold.stdout.strip() == 'web-3'
    warm = _ssh(fleet, written, 'web-3', 'true')
    assert warm.returncode == 0, warm.stderr[-2000:]
    pid = fleet.az('network', 'bastion', 'agent', 'status').json['pid']
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f'/proc/{pid}'):
        time.sleep(0.05)
    killed = _ssh(fleet, written, 'web-3', 'true')
    assert killed.returncode == 0, killed.stderr[-2000:]
    assert fleet.az('network', 'bastion', 'agent', 'status').json['pid'] != pid
