"""The data plane's connection set-up over loopback: kept-alive HTTPS for mint/delete, websockets over warm TLS
connections, TLS session resumption, and a cancelled mint still deleted. A small aiohttp app plays Bastion."""

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl

import pytest
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from azext_bastion_native.dataplane.client import DataPlaneClient
from azext_bastion_native.dataplane.errors import DataPlaneError, NotSentError, SessionUnavailableError
from azext_bastion_native.dataplane.https import KeepAliveHttps
from azext_bastion_native.dataplane.protocol import Endpoint, HttpRequest, RetryPolicy, Target
from azext_bastion_native.dataplane.settings import ConnectionSettings
from azext_bastion_native.relay.pump import Relay
from tests.unit.relay.doubles import local_pair

from .doubles import ScriptedServer

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert.pem path, key.pem path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'bastion-test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp('tls')
    (folder / 'cert.pem').write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / 'key.pem').write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder / 'cert.pem'), str(folder / 'key.pem')


class FakeBastion:
    """POST /api/tokens, DELETE /api/tokens/{t}, and an echoing /webtunnelv2/{t}; records what it saw."""

    def __init__(self, mint_delay=0.0):
        self.mint_delay = mint_delay
        self.minted, self.deleted, self.http_connections, self.websockets = [], [], set(), 0
        self.port = None
        self._runner = None

    async def start(self, certificate):
        app = web.Application()
        app.router.add_post('/api/tokens', self._mint)
        app.router.add_delete('/api/tokens/{token}', self._delete)
        app.router.add_get('/webtunnelv2/{token}', self._websocket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        site = web.TCPSite(self._runner, '127.0.0.1', 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]    # pylint: disable=protected-access
        return self

    async def stop(self):
        await self._runner.cleanup()

    async def _mint(self, request):
        self.http_connections.add(id(request.transport))
        form = await request.post()
        assert form['aztoken'] == 'arm-token' and form['protocol'] == 'tcptunnel'
        await asyncio.sleep(self.mint_delay)
        number = len(self.minted) + 1
        self.minted.append(f'auth-{number}')
        return web.json_response({'authToken': f'auth-{number}', 'nodeId': 'node', 'websocketToken': f'ws-{number}'})

    async def _delete(self, request):
        self.http_connections.add(id(request.transport))
        self.deleted.append(request.match_info['token'])
        return web.Response(status=204)

    async def _websocket(self, request):
        self.websockets += 1
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        async for message in websocket:
            if message.type == WSMsgType.BINARY:
                await websocket.send_bytes(message.data)
        return websocket


def _client(bastion, certificate):
    return DataPlaneClient(Endpoint(f'127.0.0.1:{bastion.port}'), lambda: 'arm-token',
                           settings=ConnectionSettings(verify=True, ca_bundle=certificate[0], environ={}))


def test_sessions_share_one_https_connection_and_websockets_resume_tls(certificate):
    async def scenario():
        bastion = await FakeBastion().start(certificate)
        client = _client(bastion, certificate)
        try:
            reused = []
            for payload in (b'first', b'second'):
                session = await client.mint(Target(VM_ID, 22))
                websocket = await client.connect(session)
                reused.append(websocket.ssl_object.session_reused)
                local, user = await local_pair()
                relaying = asyncio.create_task(Relay(local, websocket).run())
                await asyncio.get_running_loop().sock_sendall(user, payload)
                assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(user, 100), 5) == payload
                user.shutdown(socket.SHUT_WR)
                assert (await asyncio.wait_for(relaying, 5)).ending == 'local side closed'
                user.close()
                assert await client.delete(session)
            assert bastion.minted == bastion.deleted == ['auth-1', 'auth-2']
            assert len(bastion.http_connections) == 1          # both mints and both deletes: one connection
            assert reused == [False, True]                     # the second websocket skipped the full handshake
            assert client.live_sessions == []
        finally:
            await client.aclose()
            await bastion.stop()
    asyncio.run(scenario())


def test_a_mint_whose_caller_was_cancelled_is_still_deleted_on_close(certificate):
    async def scenario():
        bastion = await FakeBastion(mint_delay=0.3).start(certificate)
        client = _client(bastion, certificate)
        try:
            waiting = asyncio.create_task(client.mint(Target(VM_ID, 22)))
            while not bastion.http_connections:                # the request has reached Bastion
                await asyncio.sleep(0.01)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await client.aclose()
            assert bastion.minted == ['auth-1'] and bastion.deleted == ['auth-1']
            assert bastion.websockets == 0
        finally:
            await bastion.stop()
    asyncio.run(scenario())


async def _plain_http_server(answer_then_close):
    """A plain HTTP server answering 204 to each request; with ``answer_then_close`` it drops the connection after
    each answer without saying so (as a server whose keep-alive timer ran out)."""
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while await reader.readuntil(b'\r\n\r\n'):
            writer.write(b'HTTP/1.1 204 No Content\r\n\r\n')
            await writer.drain()
            if answer_then_close:
                writer.close()
                return
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    return server, connections


def test_an_idle_connection_the_server_dropped_is_replaced_transparently():
    async def scenario():
        server, connections = await _plain_http_server(answer_then_close=True)
        port = server.sockets[0].getsockname()[1]
        https = KeepAliveHttps(None)
        try:
            for _ in range(3):
                answer = await https.send(HttpRequest('DELETE', f'http://127.0.0.1:{port}/api/tokens/x'))
                assert answer.status == 204
                await asyncio.sleep(0.05)                     # let the server's close arrive
            assert len(connections) == 3
        finally:
            https.close()
            server.close()
    asyncio.run(scenario())


def test_network_failures_name_the_host_never_the_path():
    async def scenario():
        server, _ = await _plain_http_server(answer_then_close=False)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(SessionUnavailableError) as caught:
            await KeepAliveHttps(None).send(HttpRequest('DELETE', f'http://127.0.0.1:{port}/api/tokens/AUTH-SECRET'))
        assert f'127.0.0.1:{port}' in str(caught.value) and 'AUTH-SECRET' not in str(caught.value)
    asyncio.run(scenario())


def test_settings_context_verifies_and_resumes(certificate):
    context = ConnectionSettings(verify=True, ca_bundle=certificate[0], environ={}).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.remember(object()) is False                 # nothing to keep from a non-TLS object


MINTED = json.dumps({'authToken': 'auth-1', 'nodeId': 'node', 'websocketToken': 'ws-1'}).encode()
MINT_ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' % (
    len(MINTED), MINTED)


def _server_context(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _mint_against(certificate, answer, mints=1):
    """Mint ``mints`` times against a scripted HTTPS Bastion: (sessions minted or the error, the mint requests
    that reached the server)."""
    async def scenario():
        async with ScriptedServer(answer, ssl_context=_server_context(certificate)) as server:
            client = DataPlaneClient(Endpoint(server.netloc), lambda: 'arm-token', prewarm=False,
                                     settings=ConnectionSettings(verify=True, ca_bundle=certificate[0], environ={}),
                                     retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
            results = []
            for _ in range(mints):
                try:
                    results.append(await client.mint(Target(VM_ID, 22)))
                except DataPlaneError as err:
                    results.append(err)
            await client.aclose()
            return results, [path for path in server.paths if path.startswith('POST')]
    return asyncio.run(scenario())


@pytest.mark.parametrize('first_answer', [
    None,                                                                   # read the request, then hung up
    b'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n',
    b'HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n',
    b'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n',
    b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n',       # no Retry-After
    b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"authToken": "au',       # cut short
    b'HTTP/1.1 200 OK\r\nContent-Length: 5_0\r\n\r\n' + b'x' * 50,           # not HTTP
])
def test_a_mint_that_bastion_may_have_processed_reaches_it_once(certificate, first_answer):
    """The first session could never be deleted (its authToken was in the answer that got lost): no second mint."""
    def answer(number):
        if number == 1:
            return [first_answer, None] if first_answer else None
        return MINT_ANSWER
    (result,), mints = _mint_against(certificate, answer)
    assert isinstance(result, SessionUnavailableError)
    assert mints == ['POST /api/tokens']


def test_a_mint_on_a_kept_alive_connection_that_closes_unanswered_is_not_sent_again(certificate):
    """The server took the first mint on a kept-alive connection, then hung up on the second: it may have read it."""
    (first, second), mints = _mint_against(certificate, lambda n: MINT_ANSWER if n == 1 else None, mints=2)
    assert first.auth_token == 'auth-1' and isinstance(second, SessionUnavailableError)
    assert mints == ['POST /api/tokens'] * 2


@pytest.mark.parametrize('refusal', [b'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\n',
                                     b'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n'])
def test_a_mint_turned_away_with_retry_after_is_sent_again(certificate, refusal):
    first = refusal + b'Content-Length: 0\r\n\r\n'
    (result,), mints = _mint_against(certificate, lambda n: first if n == 1 else MINT_ANSWER)
    assert result.auth_token == 'auth-1' and mints == ['POST /api/tokens'] * 2


def test_a_mint_that_found_no_listener_is_sent_again():
    """Connection refused: nothing was sent, so trying again cannot create a second session."""
    async def scenario():
        client = DataPlaneClient(Endpoint('127.0.0.1:1'), lambda: 'arm-token', prewarm=False,
                                 settings=ConnectionSettings(verify=True, environ={}),
                                 retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
        attempts = []
        original = client._https.send      # pylint: disable=protected-access

        async def counting(request):
            attempts.append(request.method)
            return await original(request)
        client._https.send = counting      # pylint: disable=protected-access
        with pytest.raises(NotSentError):
            await client.mint(Target(VM_ID, 22))
        await client.aclose()
        return attempts
    assert asyncio.run(scenario()) == ['POST'] * 3
