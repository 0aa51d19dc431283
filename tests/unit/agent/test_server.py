"""agent/server.py against a stand-in for the hosts: answers are one JSON line, a failure is one line for the user,
stop/idle end the agent with the socket gone and every client closed, one agent per lock."""
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import threading

import pytest

from azext_bastion_native.agent import proxy_helper, server
from azext_bastion_native.dataplane import DataPlaneError
from azext_bastion_native.errors import Refused
from tests.unit.agent.test_proxy_helper import NOBODY, SYSTEM_PYTHON


class _Client:
    def __init__(self, fail):
        self.fail = fail
        self.live_sessions = []
        self.deleted = []

    async def mint(self, _target):
        raise self.fail

    async def delete(self, session):
        self.deleted.append(session)
        return True


class _Hosts:
    def __init__(self, fail=None, client_fail=None):
        self.fail = fail
        self.client = _Client(client_fail)
        self.closed = False

    async def get(self, _request):
        if self.fail is not None:
            raise self.fail
        return self.client, 'target'

    def clients(self):
        return [self.client]

    def refresh_tokens(self):
        pass

    async def aclose(self, timeout):  # pylint: disable=unused-argument
        self.closed = True


@pytest.fixture
def paths(short_tmp):
    return proxy_helper.agent_paths({'XDG_RUNTIME_DIR': str(short_tmp), 'AZURE_CONFIG_DIR': str(short_tmp / 'c')})


def _ask(path, message):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    with sock:
        return proxy_helper.ask(sock, message, timeout=10)[0]


def _serve(agent):
    """Run the agent on a thread; returns (thread, result holder)."""
    result = {}

    def run():
        result['reason'] = server.run_agent(agent)
    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(500):
        if _listening(agent.paths.socket):
            break
        threading.Event().wait(0.01)
    return thread, result


def _listening(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe:
        return probe.connect_ex(path) == 0


@pytest.mark.parametrize('failure, words', [
    (Refused("Bastion host 'bh' does not have native client support (tunneling) enabled.",
             'Turn it on: az network bastion native-client enable -g rg -n bh'),
     "Bastion host 'bh' does not have native client support (tunneling) enabled. Turn it on: az network"),
    (RuntimeError('AADSTS700082: The refresh token has expired.\nPlease run az login'),
     'AADSTS700082: The refresh token has expired. Please run az login'),
])
def test_a_failed_connect_is_one_line_and_the_agent_goes_on(paths, failure, words):
    hosts = _Hosts(fail=failure)
    agent = server.ConnectionAgent(paths, hosts, idle_timeout=60)
    thread, result = _serve(agent)
    request = proxy_helper.connect_request('rg', 'bh', '/subscriptions/s/resourceGroups/rg/x/vm1', 22)
    answer = _ask(paths.socket, request)
    assert answer['ok'] is False and '\n' not in answer['error'] and answer['error'].startswith(words)
    status = _ask(paths.socket, {'v': 1, 'op': 'status'})['status']
    assert status['connectionsFailed'] == 1 and status['liveConnections'] == 0 and status['pid'] == os.getpid()
    assert _ask(paths.socket, {'v': 1, 'op': 'stop'})['ok']
    thread.join(10)
    assert result['reason'] == 'stopped' and hosts.closed and not os.path.exists(paths.socket)


def test_a_data_plane_refusal_is_passed_on_in_its_own_words(paths):
    hosts = _Hosts(client_fail=DataPlaneError("The virtual machine 'vm1' is not running (power state: stopped)."))
    agent = server.ConnectionAgent(paths, hosts, idle_timeout=60)
    thread, _ = _serve(agent)
    answer = _ask(paths.socket, proxy_helper.connect_request('rg', 'bh', '/x/vm1', 22))
    assert answer == {'ok': False, 'error': "The virtual machine 'vm1' is not running (power state: stopped)."}
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_another_protocol_version_and_garbage_are_refused(paths):
    agent = server.ConnectionAgent(paths, _Hosts(), idle_timeout=60)
    thread, _ = _serve(agent)
    assert 'agent stop' in _ask(paths.socket, {'v': 99, 'op': 'status'})['error']
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(paths.socket)
    with sock:
        sock.sendall(b'not json\n')
        assert b'"ok":false' in sock.recv(1000)
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_idle_agent_exits_by_itself_and_closes_its_clients(paths):
    hosts = _Hosts()
    agent = server.ConnectionAgent(paths, hosts, idle_timeout=0.3)
    assert server.run_agent(agent) == 'idle'
    assert hosts.closed and not os.path.exists(paths.socket)


def test_status_questions_do_not_keep_an_idle_agent_alive(paths):
    # Idle means no connection: `agent status` polled more often than the idle timeout must not hold it up.
    agent = server.ConnectionAgent(paths, _Hosts(), idle_timeout=0.5)
    thread, result = _serve(agent)
    for _ in range(100):                # 10 s at most; the agent should be gone after about 0.5 s
        if not thread.is_alive():
            break
        try:
            _ask(paths.socket, {'v': 1, 'op': 'status'})
        except OSError:
            pass                        # it stopped between two questions
        threading.Event().wait(0.1)
    stopped = not thread.is_alive()
    if not stopped:
        _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)
    assert stopped and result['reason'] == 'idle'


def test_socket_is_0600_and_a_second_agent_does_not_start(paths):
    agent = server.ConnectionAgent(paths, _Hosts(), idle_timeout=60)
    thread, _ = _serve(agent)
    assert os.stat(paths.socket).st_mode & 0o777 == 0o600
    with pytest.raises(server.AlreadyRunning):
        server.run_agent(server.ConnectionAgent(paths, _Hosts(), idle_timeout=60))
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_describe_failure_never_spans_lines():
    assert server.describe_failure(asyncio.TimeoutError()) == 'TimeoutError'
    assert server.describe_failure(ValueError('a\n  b')) == 'a b'


@pytest.mark.parametrize('change, words', [
    ({'resource_group': ['rg']}, "'resource_group' must be text of 1 to 90 printable characters, not a list"),
    ({'name': ''}, "'name' must be text of 1 to 80 printable characters, not ''"),
    ({'target': 'vm1'}, "'target' must be a resource id (/subscriptions/...)"),
    ({'target': '/x/vm1\nHost *'}, "'target' must be text of 1 to 1024 printable characters, not '/x/vm1\\nHost *'"),
    ({'port': '22'}, "'port' must be a whole number from 1 to 65535, not '22'"),
    ({'port': True}, "'port' must be a whole number from 1 to 65535, not true/false"),
    ({'port': 70000}, "'port' must be a whole number from 1 to 65535, not a number"),
    ({'subscription': ['s']}, "'subscription' must be absent or a subscription id, not a list"),
    ({'op': ['connect']}, "'op' must be status, stop, stop_forward, connect or forward, not a list"),
    ({'op': 'stop_forward'}, "'forward' must be a forward's id (a whole number from 1), not null"),
    ({'op': 'stop_forward', 'forward': '1'}, "'forward' must be a forward's id (a whole number from 1), not '1'"),
    ({'op': 'stop_forward', 'forward': 0}, "'forward' must be a forward's id (a whole number from 1), not a number"),
    ({'op': 'forward'}, "'local_forward' must be a list of at most 64 -L specs, not null"),
    ({'op': 'forward', 'local_forward': ['0:web-1:22\nHost *']},
     "'local_forward' must be a list of at most 64 -L specs, not a list"),
    ({'op': 'forward', 'local_forward': [], 'timeout': 0},
     "'timeout' and 'idle_timeout' must be absent or seconds above 0"),
    ({'op': 'forward', 'local_forward': [], 'max_connections': True},
     "'max_connections' must be absent or a whole number of at least 1, not true/false"),
    ({'op': 'forward', 'local_forward': [], 'socks': 1080}, "'socks' must be absent or a -D spec, not a number"),
])
def test_a_malformed_request_is_refused_in_words_and_the_agent_goes_on(paths, change, words):
    hosts = _Hosts(fail=AssertionError('a malformed request must not reach the hosts'))
    agent = server.ConnectionAgent(paths, hosts, idle_timeout=60)
    thread, _ = _serve(agent)
    answer = _ask(paths.socket, {**proxy_helper.connect_request('rg', 'bh', '/x/vm1', 22), **change})
    assert answer == {'ok': False, 'error': words}
    status = _ask(paths.socket, {'v': 1, 'op': 'status'})['status']
    assert status['connectionsFailed'] == 0 and status['connectionsServed'] == 0
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_target_labels_are_escaped_for_the_log():
    label = server.target_label({'target': '/x/vm\n2026-12-07 agent stopping\x1b[2J', 'port': 22})
    assert label == 'vm\\n2026-12-07 agent stopping\\x1b[2J:22'
    assert label.isprintable() and len(server.target_label({'target': '/' + 'v' * 500, 'port': 1})) <= 120


def test_the_agent_serves_its_own_user_only(paths):
    agent = server.ConnectionAgent(paths, _Hosts(), idle_timeout=60)
    thread, _ = _serve(agent)
    # Let another user reach the socket at all (the private directory is what normally keeps them out).
    for directory in (os.path.dirname(paths.directory), paths.directory):
        os.chmod(directory, 0o711)
    os.chmod(paths.socket, 0o666)
    answer = subprocess.run([SYSTEM_PYTHON, '-I', '-c', (
        'import socket, sys\n'
        's = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n'
        'print(s.recv(1000).decode())\n'), paths.socket],      # answered before it could ask anything
        user=NOBODY, group=NOBODY, capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(answer) == {'ok': False, 'error': 'this agent serves its own user only'}
    assert _ask(paths.socket, {'v': 1, 'op': 'status'})['ok']
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_connections_beyond_the_limit_are_refused_in_words(paths):
    started = threading.Event()

    class SlowHosts(_Hosts):
        async def get(self, _request):
            started.set()
            await asyncio.sleep(60)
    agent = server.ConnectionAgent(paths, SlowHosts(), idle_timeout=60, grace_period=1, max_connections=1)
    thread, _ = _serve(agent)
    first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    first.connect(paths.socket)
    first.sendall(proxy_helper.encode(proxy_helper.connect_request('rg', 'bh', '/x/vm1', 22)))
    assert started.wait(10)
    answer = _ask(paths.socket, proxy_helper.connect_request('rg', 'bh', '/x/vm2', 22))
    assert answer['ok'] is False and answer['error'].startswith('the agent relays at most 1 connections at once')
    first.close()
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def test_soft_open_file_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        assert server.raise_descriptor_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


AGENT_UNDER_LOW_LIMIT = '''
import asyncio, resource, sys
from azext_bastion_native.agent import proxy_helper, server

class Hosts:
    async def get(self, request):
        raise RuntimeError('no hosts here')
    def clients(self):
        return []
    def refresh_tokens(self):
        pass
    async def aclose(self, timeout):
        pass

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
paths = proxy_helper.agent_paths({'XDG_RUNTIME_DIR': sys.argv[1], 'AZURE_CONFIG_DIR': sys.argv[1] + '/c'})
limit = int(sys.argv[2]) if sys.argv[2] else None
print(server.run_agent(server.ConnectionAgent(paths, Hosts(), idle_timeout=120, max_connections=limit)), flush=True)
'''


@pytest.mark.parametrize('max_connections', [None, 500])
def test_out_of_descriptors_the_agent_backs_off_and_keeps_accepting(paths, short_tmp, max_connections):
    """A real RLIMIT_NOFILE of 64 and 150 connections at once: accepting goes on once they are gone. Its own
    limit keeps the agent within its descriptors; beyond them (a limit set too high) accepts fail with EMFILE, are
    logged and tried again."""
    with subprocess.Popen([sys.executable, '-c', AGENT_UNDER_LOW_LIMIT, str(short_tmp), str(max_connections or '')],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=os.getcwd()) as agent:
        for _ in range(1000):
            if _listening(paths.socket):
                break
            threading.Event().wait(0.01)
        crowd = []
        for _ in range(150):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(paths.socket)
            crowd.append(sock)
        threading.Event().wait(1.0)         # the agent meets its limit meanwhile
        for sock in crowd:
            sock.close()
        status = _ask(paths.socket, {'v': 1, 'op': 'status'})
        assert status['ok'] and status['status']['maxConnections'] == (max_connections or server.connection_limit(64))
        assert _ask(paths.socket, proxy_helper.connect_request('rg', 'bh', '/x/vm1', 22)) == {
            'ok': False, 'error': 'no hosts here'}
        _ask(paths.socket, {'v': 1, 'op': 'stop'})
        out, err = agent.communicate(timeout=30)
    assert out.strip() == 'stopped' and 'Traceback' not in err
    assert ('cannot accept a connection (EMFILE: Too many open files)' in err) == bool(max_connections), err
