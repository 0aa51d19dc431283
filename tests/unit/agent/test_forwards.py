"""`forward --background` inside the agent (agent/forwards.py and the agent's "forward" request), with a stand-in for
the hosts that builds a real relay service over a loopback websocket server: the answer is the ready line, the forward
relays, `status` lists it, it keeps an idle agent alive, a refusal is one line, and `stop` ends it with every
session deleted."""
import socket
import time

from azext_bastion_native.agent import server
from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.errors import Refused
from azext_bastion_native.relay.tunnel import Listener, RelayService
from tests.unit.agent.test_server import _ask, _Hosts, _serve, paths  # noqa: F401  pylint: disable=unused-import
from tests.unit.relay.doubles import FakeDataPlane, echo_server_on_a_thread

TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/web-1', 22)
REQUEST = {'v': 1, 'op': 'forward', 'resource_group': 'rg', 'name': 'bh', 'local_forward': ['0:web-1:22']}


class _ForwardingHosts(_Hosts):
    def __init__(self, url, refuse=None):
        super().__init__()
        self.url = url
        self.refuse = refuse
        self.data_planes = []

    async def forward(self, request):
        if self.refuse is not None:
            raise self.refuse
        assert request['local_forward'] == ['0:web-1:22']
        data_plane = FakeDataPlane(self.url)
        self.data_planes.append(data_plane)
        service = RelayService(data_plane, [Listener(TARGET, name='web-1:22')])
        [(address, port)] = await service.start_listeners()
        return service, {'forwards': [{'address': address, 'port': port, 'target': 'web-1', 'targetPort': 22}],
                         'socks': None}


def test_a_forward_listens_relays_is_listed_keeps_the_agent_and_ends_with_it(paths):  # noqa: F811
    with echo_server_on_a_thread() as url:
        hosts = _ForwardingHosts(url)
        agent = server.ConnectionAgent(paths, hosts, idle_timeout=0.3)
        thread, result = _serve(agent)
        answer = _ask(paths.socket, REQUEST)
        assert answer['ok'] and answer['id'] == 1 and answer['pid'] and answer['socks'] is None
        [ready] = answer['forwards']
        with socket.create_connection(('127.0.0.1', ready['port']), timeout=10) as sock:
            sock.sendall(b'through the agent')
            assert sock.recv(100) == b'through the agent'
            [listed] = _ask(paths.socket, {'v': 1, 'op': 'status'})['status']['forwards']
            assert listed['forwards'] == [ready] and listed['id'] == 1 and listed['liveConnections'] == 1
        time.sleep(1.0)         # past the agent's idle timeout: the forward keeps it
        assert thread.is_alive() and _ask(paths.socket, {'v': 1, 'op': 'status'})['ok']
        _ask(paths.socket, {'v': 1, 'op': 'stop'})
        thread.join(20)
    assert result['reason'] == 'stopped'
    [data_plane] = hosts.data_planes
    assert data_plane.minted == 1 and data_plane.closed and not data_plane.live
    try:
        socket.create_connection(('127.0.0.1', ready['port']), timeout=2).close()
        listening = True
    except OSError:
        listening = False
    assert not listening


def test_a_refused_forward_is_one_line_and_nothing_runs(paths):  # noqa: F811
    hosts = _ForwardingHosts('ws://unused', refuse=Refused("-L 0:nope:22: No VM named 'nope'.", 'List them.'))
    agent = server.ConnectionAgent(paths, hosts, idle_timeout=60)
    thread, _ = _serve(agent)
    assert _ask(paths.socket, REQUEST) == {'ok': False, 'error': "-L 0:nope:22: No VM named 'nope'. List them."}
    assert _ask(paths.socket, {'v': 1, 'op': 'status'})['status']['forwards'] == []
    _ask(paths.socket, {'v': 1, 'op': 'stop'})
    thread.join(10)


def _refused(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    except OSError:
        return True
    return False


def _ended(sock):
    try:
        return sock.recv(100) == b''
    except ConnectionResetError:
        return True


def test_stop_forward_ends_that_forward_only_with_its_sessions_and_the_agent_goes_on(paths):  # noqa: F811
    with echo_server_on_a_thread() as url:
        hosts = _ForwardingHosts(url)
        agent = server.ConnectionAgent(paths, hosts, idle_timeout=60)
        thread, _ = _serve(agent)
        first, second = _ask(paths.socket, REQUEST), _ask(paths.socket, REQUEST)
        assert (first['id'], second['id']) == (1, 2)
        [first_ready], [second_ready] = first['forwards'], second['forwards']
        with socket.create_connection(('127.0.0.1', first_ready['port']), timeout=10) as held:
            held.sendall(b'a session of its own')
            assert held.recv(100) == b'a session of its own'
            assert hosts.data_planes[0].live
            answer = _ask(paths.socket, {'v': 1, 'op': 'stop_forward', 'forward': 1})
            assert answer == {'ok': True, 'pid': first['pid'], 'id': 1, 'forwards': first['forwards'],
                              'socks': None, 'stopped': True}
            assert _ended(held)                     # its live connection ended with it
        stopped, going_on = hosts.data_planes
        assert stopped.closed and not stopped.live and not going_on.closed
        assert _refused(first_ready['port'])
        with socket.create_connection(('127.0.0.1', second_ready['port']), timeout=10) as sock:
            sock.sendall(b'still relaying')
            assert sock.recv(100) == b'still relaying'
        [listed] = _ask(paths.socket, {'v': 1, 'op': 'status'})['status']['forwards']
        assert listed['id'] == 2 and thread.is_alive()
        assert _ask(paths.socket, {'v': 1, 'op': 'stop_forward', 'forward': 1}) == {
            'ok': False, 'unknown': True, 'error': 'no background forward has id 1'}
        _ask(paths.socket, {'v': 1, 'op': 'stop'})
        thread.join(20)
    assert going_on.closed and _refused(second_ready['port'])
