"""agent/server.py against a stand-in for the hosts: answers are one JSON line, a failure is one line for the user,
stop/idle end the agent with the socket gone and every client closed, one agent per lock."""
import asyncio
import os
import socket
import threading

import pytest

from azext_bastion_native.agent import proxy_helper, server
from azext_bastion_native.dataplane import DataPlaneError
from azext_bastion_native.errors import Refused


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
    for _ in range(200):
        if os.path.exists(agent.paths.socket):
            break
        threading.Event().wait(0.01)
    return thread, result


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
