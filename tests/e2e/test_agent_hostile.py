"""The connection agent on a hostile machine, end to end: a real second local user (useradd, runuser) squats and
plants in the shared temp directory or offers a world-writable XDG_RUNTIME_DIR, and the victim's ssh through the
fleet's ssh-config still reaches the right VM, through an agent in a directory of its own, with nothing written
where the other user pointed. A real `ulimit -n 128` with 300 connections at once, and a stopped (SIGSTOP) agent."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from bastion_emulator.testing.fleet import FLEET_RG, start_fleet
from bastion_emulator.testing.sshd import sshd_available
from tests.e2e.tunnel_helpers import HOST, RG, sessions_drain

pytestmark = pytest.mark.e2e

SYSTEM_PYTHON = '/usr/bin/python3'      # one the other user may run
HELPER_PREFIX = 'az network bastion agent: '


@pytest.fixture(scope='module')
def other_user():
    """A second local user for the length of the module."""
    if os.geteuid() != 0 or not shutil.which('useradd') or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip('needs root, useradd and /usr/bin/python3 to act as a second local user')
    name = f'bnother{uuid.uuid4().hex[:6]}'
    subprocess.run(['useradd', '--no-create-home', '--shell', '/usr/sbin/nologin', name], check=True)
    try:
        yield name
    finally:
        subprocess.run(['userdel', name], check=False)


def _as(user, *argv, **kwargs):
    return subprocess.run(['runuser', '-u', user, '--', *argv], check=True, capture_output=True, text=True,
                          timeout=30, **kwargs)


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    if not sshd_available():
        pytest.skip('OpenSSH server (sshd) is not installed')
    running = start_fleet(tmp_path_factory.mktemp('hostile-fleet'), count=2)
    yield running
    running.stop()


@pytest.fixture(scope='module')
def fleet_config(fleet, tmp_path_factory):
    home = tmp_path_factory.mktemp('hostile-fleet-home')
    config = home / 'config'
    config.write_text(f"Host *\n    UserKnownHostsFile {home / 'known_hosts'}\n", encoding='utf-8')
    fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
             '--username', next(iter(fleet.sshds.values())).user, '--ssh-key', str(fleet.client_key),
             '--file', str(config))
    return config


@pytest.fixture
def machine(fleet, tmp_path):
    """The victim's environment on a machine shared with others: TMPDIR a sticky world-writable directory as /tmp
    is, HOME of its own, no XDG_RUNTIME_DIR; its agent is stopped afterwards."""
    shared = tempfile.mkdtemp(prefix='bn-shared-', dir='/tmp')
    os.chmod(shared, 0o1777)
    home = tmp_path / 'home'
    home.mkdir(mode=0o700)
    env = {key: value for key, value in fleet.az_env.items() if key != 'XDG_RUNTIME_DIR'}
    env.update(TMPDIR=shared, HOME=str(home))
    yield env
    _agent(fleet, env, 'stop', check=False)
    shutil.rmtree(shared, ignore_errors=True)


def _agent(fleet, env, *args, check=True):
    return fleet.az('network', 'bastion', 'agent', *args, env_extra=env, check=check)


def _ssh(env, config, vm, timeout=120):
    return subprocess.run(['ssh', '-F', str(config), '-o', 'BatchMode=yes', vm, 'echo $BASTION_VM'], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _socket_name(env):
    """The agent socket's file name for this az configuration (proxy_helper.agent_paths)."""
    digest = hashlib.sha256(os.path.realpath(env['AZURE_CONFIG_DIR']).encode()).hexdigest()[:16]
    return digest + '.sock'


def _listen_as(user, path):
    """The other user's fake agent on ``path``: it prints 'ready', then 'accepted' for each connection it gets."""
    # pylint: disable-next=consider-using-with
    process = subprocess.Popen([SYSTEM_PYTHON, '-I', '-c', (
        'import socket, sys\n'
        's = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print("ready", flush=True)\n'
        'while True:\n'
        '    c, _ = s.accept(); print("accepted", flush=True); c.sendall(b\'{"ok":true}\\n\')\n'), path],
        user=user, group=user, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == 'ready'
    return process


def test_a_world_writable_runtime_directory_of_another_user_is_not_used(fleet, fleet_config, machine, other_user):
    runtime = os.path.join(machine['TMPDIR'], 'runtime')
    _as(other_user, 'mkdir', '-m', '0777', runtime)
    env = dict(machine, XDG_RUNTIME_DIR=runtime)
    result = _ssh(env, fleet_config, 'web-2')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'web-2'
    status = _agent(fleet, env, 'status').json
    assert status['running'] and status['socket'] == os.path.join(
        machine['TMPDIR'], f'az-bastion-agent-{os.getuid()}', _socket_name(env))
    assert not os.listdir(runtime)          # nothing of ours where the other user could swap it


@pytest.mark.parametrize('squat', ['directory', 'symlink'])
def test_a_temp_directory_squatted_by_another_user_does_not_lock_the_user_out(fleet, fleet_config, machine,
                                                                              other_user, squat, tmp_path):
    squatted = os.path.join(machine['TMPDIR'], f'az-bastion-agent-{os.getuid()}')
    pointed_at = tmp_path / 'victims-own'           # where a symlink would have us write: a directory of ours
    pointed_at.mkdir(mode=0o700)
    fake_agent = None
    if squat == 'directory':
        _as(other_user, 'mkdir', '-m', '0777', squatted)
        fake_agent = _listen_as(other_user, os.path.join(squatted, _socket_name(machine)))
    else:
        _as(other_user, 'ln', '-s', str(pointed_at), squatted)
    try:
        result = _ssh(machine, fleet_config, 'web-1')
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == 'web-1'
        debug = _agent(fleet, machine, 'status', '--debug')
        assert debug.json['socket'] == os.path.join(machine['HOME'], '.cache', 'az-bastion-agent',
                                                    _socket_name(machine))
        reason = 'owner uid' if squat == 'directory' else 'a symlink'
        assert f'agent directory: {squatted} is not used: ' in debug.stderr and reason in debug.stderr, \
            debug.stderr[-3000:]
    finally:
        if fake_agent is not None:
            fake_agent.kill()
            accepted = fake_agent.communicate(timeout=10)[0]
    assert not os.listdir(pointed_at)
    if fake_agent is not None:
        assert 'accepted' not in accepted        # the other user's socket was never asked for a connection


def _open_files_limit(pid):
    with open(f'/proc/{pid}/limits', encoding='ascii') as handle:
        line = next(line for line in handle if line.startswith('Max open files'))
    return [int(word) for word in line.split()[3:5]]


def test_300_connections_under_ulimit_128_leave_an_agent_that_answers_and_connects(fleet, fleet_config, machine):
    from azext_bastion_native.agent.server import connection_limit
    az_line = ' '.join([fleet.az.executable, 'network', 'bastion', 'agent', 'start'])
    started = subprocess.run(['bash', '-c', f'ulimit -n 128 && exec {az_line} -o json'], env=machine,
                             capture_output=True, text=True, timeout=120, check=False)
    assert started.returncode == 0, started.stderr[-2000:]
    status = _agent(fleet, machine, 'status').json
    assert _open_files_limit(status['pid']) == [128, 128]
    assert status['maxConnections'] == connection_limit(128)

    crowd = []
    for number in range(300):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(status['socket'])
        if number % 3 == 0:
            sock.sendall(b'{"v":1,"op":"status"}\n')
        crowd.append(sock)
    time.sleep(2)                   # the agent meets its open-file limit meanwhile
    for sock in crowd:
        sock.close()

    after = _agent(fleet, machine, 'status').json
    assert after['running'] and after['pid'] == status['pid']
    result = _ssh(machine, fleet_config, 'web-2')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'web-2'
    stopped = _agent(fleet, machine, 'stop').json
    assert stopped['stopped'] and stopped['pid'] == status['pid']
    assert sessions_drain(fleet.emulator)


def test_a_stopped_agent_is_one_line_and_exit_255_not_a_hang(fleet, fleet_config, machine):
    warm = _ssh(machine, fleet_config, 'web-1')
    assert warm.returncode == 0, warm.stderr[-2000:]
    pid = _agent(fleet, machine, 'status').json['pid']
    os.kill(pid, signal.SIGSTOP)
    try:
        # Before, the helper waited 2 x 120 s; the timeout is only a bound for a hang.
        result = _ssh(machine, fleet_config, 'web-1', timeout=60)
        status = _agent(fleet, machine, 'status')
        stop = _agent(fleet, machine, 'stop')
    finally:
        os.kill(pid, signal.SIGCONT)
    for answer in (status, stop):
        assert answer.json['running'] and answer.json['answering'] is False and answer.json['pid'] == pid
        assert f'The agent (pid {pid}) takes connections but does not answer' in answer.stderr
    assert result.returncode == 255
    lines = [line for line in result.stderr.splitlines() if line.startswith(HELPER_PREFIX)]
    assert len(lines) == 1 and f'no answer from the agent (pid {pid})' in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
    assert _agent(fleet, machine, 'stop').json['stopped']
    assert sessions_drain(fleet.emulator, timeout=15)
