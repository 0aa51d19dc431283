"""The connection agent end to end: ssh-config writes the agent helper as ProxyCommand; the real ssh runs it against
the emulator and a real sshd with a cold agent (the helper starts it), a warm one, and after SIGKILL; status,
stop, idle exit and signals delete every session; helpers racing start one agent; a refused connection is one line
on ssh's stderr."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import make_short_dir
from tests.e2e.tunnel_helpers import HOST, RG, RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def agent_env(az):
    """az's environment with a runtime directory of this module's own: its agent is nobody else's."""
    runtime = make_short_dir('bn-runtime-')     # the agent's socket goes in it
    env = dict(az.env, XDG_RUNTIME_DIR=str(runtime))
    yield env
    az('network', 'bastion', 'agent', 'stop', env_extra={'XDG_RUNTIME_DIR': str(runtime)}, check=False)
    shutil.rmtree(runtime, ignore_errors=True)


def _agent(az, agent_env, *args, check=True):
    return az('network', 'bastion', 'agent', *args, env_extra={'XDG_RUNTIME_DIR': agent_env['XDG_RUNTIME_DIR']},
              check=check)


@pytest.fixture(scope='module')
def agent_config(az, sshd_linux_vm, tmp_path_factory):
    config = tmp_path_factory.mktemp('agent-config') / 'config'
    az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--target-resource-id', sshd_linux_vm.vm_id,
       '--username', sshd_linux_vm.sshd.user, '--ssh-key', str(sshd_linux_vm.sshd.client_key), '--file', str(config))
    return config


def _ssh(agent_env, config, *command, alias='linux-vm', timeout=120, extra=()):
    known_hosts = config.parent / 'known_hosts'
    return subprocess.run(['ssh', '-F', str(config), '-o', f'UserKnownHostsFile={known_hosts}', '-o', 'BatchMode=yes',
                           *extra, alias, *command],
                          env=agent_env, capture_output=True, text=True, timeout=timeout, check=False)


def _agent_processes(agent_env):
    """pids of agents (`agent start --foreground`) running with this module's runtime directory."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as handle:
                argv = handle.read().split(b'\0')
            with open(f'/proc/{pid}/environ', 'rb') as handle:
                environ = handle.read().split(b'\0')
            with open(f'/proc/{pid}/stat', 'rb') as handle:
                zombie = handle.read().split(b') ', 1)[1][:1] == b'Z'
        except (OSError, IndexError):
            continue
        if b'--foreground' in argv and b'agent' in argv and not zombie and \
                f"XDG_RUNTIME_DIR={agent_env['XDG_RUNTIME_DIR']}".encode() in environ:
            found.append(int(pid))
    return found


def _connected_sessions(emulator):
    """Sessions whose websocket the emulator has opened. A run journals a session before it uses it, so a connected
    one is journaled; the agent's liveConnections counts a connection from its request on, before its host is read
    and its session minted, and a session the emulator lists may still be on its way to the journal."""
    return [session for session in emulator.get('/_emulator/sessions').json() if session['state'] == 'connected']


def _wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_ssh_config_writes_the_agent_helper(agent_config):
    text = agent_config.read_text(encoding='utf-8')
    proxy = next(line.split(None, 1)[1] for line in text.splitlines() if line.strip().startswith('ProxyCommand'))
    assert proxy.split()[1:3] == ['-I', '-S'] and proxy.split()[3].endswith('/agent/proxy_helper.py')
    assert 'network bastion proxy' not in proxy


def test_cold_warm_and_after_sigkill(az, emulator, agent_env, agent_config, sshd_linux_vm):
    _agent(az, agent_env, 'stop')
    assert not _agent(az, agent_env, 'status').json['running']

    cold = _ssh(agent_env, agent_config, 'whoami')             # the helper starts the agent
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert cold.stdout.strip() == sshd_linux_vm.sshd.user
    assert sessions_drain(emulator)                             # deleted as the connection ended
    # ssh exits as the connection ends; the agent ends its relay and deletes the session just after.
    assert _wait_for(lambda: _agent(az, agent_env, 'status').json['liveConnections'] == 0, 30)
    status = _agent(az, agent_env, 'status').json
    assert status['running'] and status['connectionsServed'] == 1
    assert status['sessionsOpen'] == 0 and status['liveConnections'] == 0

    warm = _ssh(agent_env, agent_config, 'whoami')
    assert warm.returncode == 0, warm.stderr[-2000:]
    again = _agent(az, agent_env, 'status').json
    assert again['pid'] == status['pid'] and again['connectionsServed'] == 2

    os.kill(status['pid'], signal.SIGKILL)
    assert _wait_for(lambda: not _agent_processes(agent_env))
    revived = _ssh(agent_env, agent_config, 'whoami')          # stale socket: the next helper starts a new one
    assert revived.returncode == 0, revived.stderr[-2000:]
    assert _agent(az, agent_env, 'status').json['pid'] != status['pid']

    stopped = _agent(az, agent_env, 'stop').json
    assert stopped['stopped']
    assert sessions_drain(emulator)
    assert not _agent(az, agent_env, 'status').json['running']


def test_status_counts_live_connections_and_sigterm_or_sighup_delete_their_sessions(
        az, emulator, agent_env, agent_config):
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with subprocess.Popen(['ssh', '-F', str(agent_config), '-o',
                               f"UserKnownHostsFile={agent_config.parent / 'known_hosts'}", '-o', 'BatchMode=yes',
                               'linux-vm', 'sleep 60'], env=agent_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) as ssh:
            assert _wait_for(lambda: len(_connected_sessions(emulator)) == 1, 60)
            status = _agent(az, agent_env, 'status').json
            assert status['liveConnections'] == 1 and status['connectionsPerTarget'] == {'linux-vm:22': 1}
            assert status['sessionsOpen'] == 1
            assert len(emulator.get('/_emulator/sessions').json()) == 1
            os.kill(status['pid'], signum)
            assert ssh.wait(30) != 0                    # its connection was cut, not left hanging
        assert sessions_drain(emulator, timeout=15)
        assert _wait_for(lambda: not _agent_processes(agent_env))


def test_refused_connection_is_one_line_on_stderr_not_a_hang(az, emulator, agent_env, agent_config, sshd_linux_vm):
    emulator.post('/_emulator/vm-power', json={'vm_id': sshd_linux_vm.vm_id, 'power_state': 'stopped'})
    try:
        started = time.monotonic()
        result = _ssh(agent_env, agent_config, 'true', timeout=60)
        elapsed = time.monotonic() - started
    finally:
        emulator.post('/_emulator/vm-power', json={'vm_id': sshd_linux_vm.vm_id, 'power_state': 'running'})
    assert result.returncode == 255
    lines = [line for line in result.stderr.splitlines() if line.startswith('az network bastion agent: ')]
    assert len(lines) == 1 and 'not running' in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
    assert elapsed < 50
    assert sessions_drain(emulator)


def test_helpers_racing_start_one_agent_and_idle_exit(az, emulator, agent_env, agent_config):
    _agent(az, agent_env, 'stop')
    runs = [subprocess.Popen(['ssh', '-F', str(agent_config), '-o',  # pylint: disable=consider-using-with
                              f"UserKnownHostsFile={agent_config.parent / 'known_hosts'}", '-o', 'BatchMode=yes',
                              'linux-vm', 'true'], env=agent_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(6)]
    codes = [run.wait(120) for run in runs]
    errors = [run.stderr.read().decode() for run in runs]
    for run in runs:
        run.stderr.close()
    assert codes == [0] * 6, errors
    assert len(_agent_processes(agent_env)) == 1
    assert _agent(az, agent_env, 'status').json['connectionsServed'] == 6

    _agent(az, agent_env, 'stop')
    started = _agent(az, agent_env, 'start', '--idle-timeout', '2').json
    assert started['running'] and started['idleTimeoutSeconds'] == 2
    assert _wait_for(lambda: not _agent(az, agent_env, 'status').json['running'], 30)
    assert _wait_for(lambda: not _agent_processes(agent_env))
    assert sessions_drain(emulator)


@pytest.mark.parametrize('seconds', ['0', '-5'])
def test_idle_timeout_not_above_zero_is_refused_with_the_real_default(az, agent_env, seconds):
    result = _agent(az, agent_env, 'start', '--idle-timeout', seconds, check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'leave it out for the default of 900 seconds' in result.stderr, result.stderr
    assert 'no limit' not in result.stderr
    assert not _agent(az, agent_env, 'status').json['running']


def _journal_entries(agent_env):
    directory = os.path.join(agent_env['AZURE_CONFIG_DIR'], 'bastion-sessions')
    return [name for name in os.listdir(directory) if name.startswith('session-')]


def _journal_drains(agent_env, timeout=15.0):
    """True when the journal is empty within ``timeout``: an entry is crossed out when its DELETE's answer arrives,
    just after the emulator has let the session go (the agent runs on, so nothing else says it is done)."""
    return _wait_for(lambda: _journal_entries(agent_env) == [], timeout)


def _orphan_after_kill_9(az, emulator, agent_env, agent_config):
    """kill -9 of the agent with one live ssh: its session stays on the host, and in the journal."""
    with subprocess.Popen(['ssh', '-F', str(agent_config), '-o',
                           f"UserKnownHostsFile={agent_config.parent / 'known_hosts'}", '-o', 'BatchMode=yes',
                           'linux-vm', 'sleep 60'], env=agent_env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as ssh:
        assert _wait_for(lambda: len(_connected_sessions(emulator)) == 1, 60)     # in use, so journaled
        pid = _agent(az, agent_env, 'status').json['pid']
        os.kill(pid, signal.SIGKILL)
        ssh.wait(30)
    assert _wait_for(lambda: not _agent_processes(agent_env))
    left = emulator.get('/_emulator/sessions').json()
    assert len(left) == 1 and len(_journal_entries(agent_env)) == 1
    return left[0]['sessionId']


def test_a_session_left_by_a_killed_agent_is_deleted_by_the_next_agent(az, emulator, agent_env, agent_config):
    _agent(az, agent_env, 'stop')
    assert sessions_drain(emulator)
    _orphan_after_kill_9(az, emulator, agent_env, agent_config)
    assert _agent(az, agent_env, 'start').json['connectionsServed'] == 0     # deleted as it starts, not later
    assert sessions_drain(emulator, timeout=15), emulator.get('/_emulator/sessions').json()
    assert _journal_drains(agent_env)
    assert _agent(az, agent_env, 'status').json['running']
    _orphan_after_kill_9(az, emulator, agent_env, agent_config)
    result = _ssh(agent_env, agent_config, 'true')          # an agent started by the helper
    assert result.returncode == 0, result.stderr[-2000:]
    assert sessions_drain(emulator, timeout=15), emulator.get('/_emulator/sessions').json()
    assert _journal_drains(agent_env)
    _agent(az, agent_env, 'stop')


def test_a_session_left_by_a_killed_agent_is_deleted_by_the_next_tunnel(
        az, emulator, agent_env, agent_config, sshd_linux_vm, tmp_path):
    _agent(az, agent_env, 'stop')
    assert sessions_drain(emulator)
    _orphan_after_kill_9(az, emulator, agent_env, agent_config)
    tunnel = RunningTunnel(agent_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', '22',
                           '--port', '0', stderr_path=tmp_path / 'tunnel.err')
    tunnel.stop()                   # never connected to: it deletes what the journal holds as it closes
    assert tunnel.process.returncode == 130, tunnel.stderr()[-2000:]
    assert sessions_drain(emulator, timeout=15), emulator.get('/_emulator/sessions').json()
    assert _journal_entries(agent_env) == []


def _az_ssh(az, vm, ssh_key, home, remote_command):
    return [az.executable, 'network', 'bastion', 'ssh', '-g', RG, '-n', HOST, '--target-resource-id', vm.vm_id,
            '--auth-type', 'ssh-key', '--username', vm.sshd.user, '--ssh-key', str(ssh_key), '--',
            '-o', f'UserKnownHostsFile={home}/known_hosts', remote_command]


def test_a_session_left_by_a_killed_ssh_is_deleted_by_the_next_ssh(az, emulator, agent_env, sshd_linux_vm, ssh_key,
                                                                   tmp_path):
    _agent(az, agent_env, 'stop')
    assert sessions_drain(emulator)
    env = dict(agent_env, HOME=str(tmp_path))
    with open(tmp_path / 'killed.err', 'wb') as stderr:
        killed = subprocess.Popen(  # pylint: disable=consider-using-with
            _az_ssh(az, sshd_linux_vm, ssh_key, tmp_path, 'sleep 60'), env=env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        assert _wait_for(lambda: len(_connected_sessions(emulator)) == 1, 60), \
            (tmp_path / 'killed.err').read_text()[-2000:]
        assert len(_journal_entries(agent_env)) == 1
    finally:
        os.killpg(killed.pid, signal.SIGKILL)       # az, its in-process tunnel and ssh: no clean-up runs
        killed.wait(30)
    assert not sessions_drain(emulator, timeout=2)  # left on the host by the killed run
    result = subprocess.run(_az_ssh(az, sshd_linux_vm, ssh_key, tmp_path, 'echo next-run'), env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout.strip() == 'next-run', result.stderr[-2000:]
    assert sessions_drain(emulator, timeout=15), emulator.get('/_emulator/sessions').json()
    assert _journal_entries(agent_env) == []
