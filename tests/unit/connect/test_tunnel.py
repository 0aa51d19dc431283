"""connect/tunnel.py: `tunnel` and `proxy` around the relay engine: a Developer host's one connection at a time, the
ready line in the user's output format, what a port that cannot be listened on says, the exit codes of `proxy`."""
import errno
import io
import json
import socket
import sys
from types import SimpleNamespace

import pytest

from azext_bastion_native.connect import tunnel
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.relay import stdio as relay_stdio, tunnel as relay_tunnel
from azext_bastion_native.relay.tunnel import StopReason


@pytest.mark.parametrize('address, loopback', [('127.0.0.1', True), ('127.0.0.2', True), ('::1', True),
                                               ('localhost', True), ('0.0.0.0', False), ('10.0.0.4', False),
                                               ('my-host', False)])
def test_loopback_addresses(address, loopback):
    assert tunnel.is_loopback(address) is loopback


@pytest.mark.parametrize('error, phrase, kind', [
    (socket.gaierror(-2, 'Name or service not known'), "--bind-address 'nowhere' is not an IP address",
     Kind.INVALID_ARGUMENT),
    (OSError(errno.EADDRNOTAVAIL, 'Cannot assign requested address'), 'is not an address of this machine',
     Kind.INVALID_ARGUMENT),
    (OSError(errno.EADDRINUSE, 'Address already in use'), 'port 2222: another program uses it', Kind.VALIDATION),
    (OSError(errno.EACCES, 'Permission denied'), 'port 2222: Permission denied.', Kind.VALIDATION),
])
def test_a_port_that_cannot_be_listened_on_says_whether_the_address_or_the_port_is_wrong(error, phrase, kind):
    refused = tunnel.cannot_listen(error, 'nowhere', 2222)
    assert phrase in refused.message and refused.kind is kind


class _Cli:
    """The bits of azure-cli's context write_ready_line uses: the invocation's -o and --query, the result event."""

    def __init__(self, output, query=None):
        self.invocation = SimpleNamespace(data={'output': output, 'query_active': query is not None})
        self.query = query
        self.output = SimpleNamespace(get_formatter=lambda name: lambda item: f'{name}: {item.result}\n')

    def raise_event(self, _event, event_data):
        if self.query:
            event_data['result'] = self.query(event_data['result'])


@pytest.mark.parametrize('output, query, printed', [
    ('json', None, '{"address": "127.0.0.1", "port": 40100}\n'),
    ('jsonc', lambda ready: ready['port'], '40100\n'),
    ('tsv', lambda ready: ready['port'], 'tsv: 40100\n'),
    ('none', None, ''),
])
def test_the_ready_line_follows_output_and_query(monkeypatch, output, query, printed):
    stdout = io.StringIO()
    monkeypatch.setattr(sys, 'stdout', stdout)
    tunnel.write_ready_line(_Cli(output, query), {'address': '127.0.0.1', 'port': 40100})
    assert stdout.getvalue() == printed
    if output == 'json':
        json.loads(printed)                         # one line a script can parse


def _client(developer):
    return SimpleNamespace(endpoint=SimpleNamespace(developer=developer))


@pytest.fixture
def engine(monkeypatch):
    """The data plane resolved without Azure, and the relay engine replaced by a recorder of how it was set up."""
    made = SimpleNamespace(servers=[], client=_client(False), reason=StopReason.STOPPED)

    class FakeServer:  # pylint: disable=too-few-public-methods
        def __init__(self, client, target, **settings):
            self.client, self.target, self.settings, self.limit_reason = client, target, settings, None
            made.servers.append(self)

    def run_tunnel(server, on_ready=None):
        return made.reason
    monkeypatch.setattr(tunnel, '_open_data_plane', lambda *_: (made.client, 'target'))
    monkeypatch.setattr(relay_tunnel, 'TunnelServer', FakeServer)
    monkeypatch.setattr(relay_tunnel, 'run_tunnel', run_tunnel)
    return made


def test_a_developer_host_takes_one_connection_at_a_time(engine):
    engine.client = _client(True)
    tunnel.tunnel_command(None, 'rg', 'bh', 22, port=2222, max_connections=10)
    [server] = engine.servers
    assert server.settings['max_connections'] == 1 and 'one connection at a time' in server.limit_reason
    engine.client = _client(False)
    tunnel.tunnel_command(None, 'rg', 'bh', 22, port=2222, max_connections=10)
    assert engine.servers[1].settings['max_connections'] == 10 and engine.servers[1].limit_reason is None


def test_a_signal_is_the_tunnels_exit_code(engine):
    engine.reason = StopReason.TERMINATED
    with pytest.raises(SystemExit) as exited:
        tunnel.tunnel_command(None, 'rg', 'bh', 22)
    assert exited.value.code == 143


def test_a_port_in_use_is_refused_not_a_traceback(engine, monkeypatch):
    def in_use(server, on_ready=None):
        raise OSError(errno.EADDRINUSE, 'Address already in use')
    monkeypatch.setattr(relay_tunnel, 'run_tunnel', in_use)
    with pytest.raises(Refused, match='127.0.0.1 port 2222: another program uses it'):
        tunnel.tunnel_command(None, 'rg', 'bh', 22, port=2222)


@pytest.mark.parametrize('outcome, code', [(True, None), (False, 1),
                                           (relay_stdio.StdioStopped(StopReason.HUNG_UP), 129)])
def test_proxy_exits_1_without_a_session_and_128_plus_the_signal_after_one(engine, monkeypatch, outcome, code):
    def run_stdio(client, target, timeout=None, idle_timeout=None):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    monkeypatch.setattr(relay_stdio, 'run_stdio', run_stdio)
    if code is None:
        assert tunnel.proxy_command(None, 'rg', 'bh', 22) is None
        return
    with pytest.raises(SystemExit) as exited:
        tunnel.proxy_command(None, 'rg', 'bh', 22)
    assert exited.value.code == code


def test_proxy_on_a_regular_file_says_how_it_is_used(engine, monkeypatch):
    def not_pipes(*_, **__):
        raise relay_stdio.StdioNotSupportedError('stdin and stdout must be pipes, sockets or a terminal.')
    monkeypatch.setattr(relay_stdio, 'run_stdio', not_pipes)
    with pytest.raises(Refused) as refused:
        tunnel.proxy_command(None, 'rg', 'bh', 22)
    assert refused.value.kind is Kind.USAGE and 'ProxyCommand="az network bastion proxy' in refused.value.recommendation
