"""doctor/probe.py: the data-plane probes `az network bastion doctor` runs (a session round trip, a TLS handshake)."""
import socket
import threading
from types import SimpleNamespace

import pytest

from azext_bastion_native.doctor import checks
from azext_bastion_native.dataplane.errors import SessionRefusedError, SessionUnavailableError, WebsocketOpenError
from azext_bastion_native.dataplane.settings import ConnectionSettings
from azext_bastion_native.doctor.probe import session_round_trip, tls_handshake


class FakeTransport:
    def __init__(self):
        self.written, self.closed = b'', False

    def writelines(self, chunks):
        self.written += b''.join(chunks)

    def close(self):
        self.closed = True


def opened_websocket():
    """An OpenedWebsocket as DataPlaneClient.connect() returns it: an open websockets protocol over a plain
    (TLS-less) session and a transport that records what is written."""
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri
    from azext_bastion_native.dataplane.tls import TlsSession
    from azext_bastion_native.dataplane.websocket import OpenedWebsocket
    return OpenedWebsocket(FakeTransport(), TlsSession(None, 'bst.example'),
                           ClientProtocol(parse_uri('wss://bst.example/webtunnelv2/t'), state=State.OPEN))


class FakeClient:
    """DataPlaneClient's surface the probe uses; records what happened."""

    def __init__(self, mint_error=None, delete_ok=True, close_deletes=True, connect_error=None):
        self.endpoint = SimpleNamespace(host='bst.example')
        self.settings = ConnectionSettings(verify=True)
        self.mint_error, self.delete_ok, self.close_deletes = mint_error, delete_ok, close_deletes
        self.connect_error, self.websockets = connect_error, []
        self.live_sessions, self.closed = [], False

    async def mint(self, target):
        if self.mint_error:
            raise self.mint_error
        self.live_sessions.append(target)
        return target

    async def connect(self, session):
        assert session in self.live_sessions
        if self.connect_error:
            raise self.connect_error
        self.websockets.append(opened_websocket())
        return self.websockets[-1]

    async def delete(self, session):
        if self.delete_ok:
            self.live_sessions.remove(session)
        return self.delete_ok

    async def aclose(self):
        self.closed = True
        if self.close_deletes:
            self.live_sessions.clear()


def test_session_probe_mints_opens_the_websocket_closes_it_and_deletes():
    client = FakeClient()
    result = session_round_trip(client, 'target', clock=iter([1.0, 1.05]).__next__)
    assert result.ok and result.deleted and result.elapsed_ms == pytest.approx(50.0)
    assert client.closed and client.live_sessions == []
    [websocket] = client.websockets
    # a close frame (opcode 8, masked: the client's) with code 1000 and nothing else, then the connection closed
    assert websocket.transport.written[0] == 0x88 and len(websocket.transport.written) == 2 + 4 + 2
    assert websocket.transport.closed


def test_session_probe_reports_a_refused_websocket_and_deletes_its_session():
    client = FakeClient(connect_error=WebsocketOpenError('Bastion refused the tunnel websocket (HTTP 502).', 502))
    result = session_round_trip(client, 'target')
    assert not result.ok and result.stage == checks.WEBSOCKET and result.status == 502
    assert result.deleted and client.closed and client.live_sessions == []
    assert session_round_trip(FakeClient(mint_error=SessionRefusedError('no', 403)), 'target').stage == checks.MINT


def test_session_probe_failure_is_a_result_and_the_client_is_closed():
    client = FakeClient(mint_error=SessionUnavailableError('Bastion could not start the session (HTTP 500)', 500))
    result = session_round_trip(client, 'target')
    assert not result.ok and result.status == 500 and 'HTTP 500' in result.error and client.closed


def test_session_probe_reports_a_session_neither_delete_nor_close_could_remove():
    client = FakeClient(delete_ok=False, close_deletes=False)
    result = session_round_trip(client, 'target')
    assert result.ok and not result.deleted and client.closed


def test_session_probe_closes_the_client_when_interrupted():
    client = FakeClient(mint_error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        session_round_trip(client, 'target')
    assert client.closed


def test_refused_session_keeps_its_status():
    client = FakeClient(mint_error=SessionRefusedError('Bastion refused the tunnel session (HTTP 403)', 403))
    assert session_round_trip(client, 'target').status == 403


def test_tls_probe_reports_a_closed_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    result = tls_handshake(f'127.0.0.1:{port}', ConnectionSettings(verify=True, environ={}), timeout=2)
    assert not result.ok and 'cannot connect' in result.error and result.endpoint == f'127.0.0.1:{port}'


def test_tls_probe_reports_a_server_that_does_not_speak_tls():
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)

    def answer_plain_text():
        connection, _ = server.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b'HTTP/1.1 400 Bad Request\r\n\r\n')
    thread = threading.Thread(target=answer_plain_text, daemon=True)
    thread.start()
    try:
        result = tls_handshake(f'127.0.0.1:{server.getsockname()[1]}', ConnectionSettings(verify=True, environ={}),
                               timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert not result.ok and 'TLS' in result.error
