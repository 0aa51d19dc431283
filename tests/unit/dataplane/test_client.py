"""DataPlaneClient with a fake HTTP session: retries, typed errors, session bookkeeping, logs."""

import asyncio
import json
import logging

import pytest

from azext_bastion_native.dataplane.client import DataPlaneClient
from azext_bastion_native.dataplane.errors import SessionRefusedError, SessionUnavailableError
from azext_bastion_native.dataplane.protocol import Endpoint, RetryPolicy, Target
from azext_bastion_native.dataplane.redact import WebsocketLogger, install_log_redaction
from azext_bastion_native.dataplane.settings import ConnectionSettings

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


class FakeResponse:
    def __init__(self, status, body=b'', headers=None):
        self.status_code, self.content, self.headers = status, body, headers or {}


class FakeHttp:
    """Stands in for requests.Session: answers from a script, records every call."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []
        self.verify = None

    def mount(self, *_):
        pass

    def close(self):
        pass

    def request(self, method, url, headers=None, data=None, json=None, **_):  # pylint: disable=redefined-outer-name
        self.calls.append((method, url, headers, data, json))
        answer = self.script.pop(0) if self.script else FakeResponse(204)
        return answer(method, url) if callable(answer) else answer


def _minted(n=1):
    return FakeResponse(200, json.dumps({'authToken': f'auth-{n}', 'nodeId': f'node-{n}',
                                         'websocketToken': f'ws-{n}'}).encode())


def _client(script, endpoint=Endpoint('bst:443'), tokens=None, **kwargs):
    tokens = tokens if tokens is not None else []

    def get_arm_token():
        tokens.append(f'arm-token-{len(tokens)}')
        return tokens[-1]
    http = FakeHttp(script)
    settings = ConnectionSettings(verify=True, ca_bundle=None, environ={})
    client = DataPlaneClient(endpoint, get_arm_token, settings=settings, http_session=http, prewarm=False,
                             retry=kwargs.pop('retry', RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.2)))
    return client, http


def test_mint_asks_for_a_fresh_arm_token_per_session_and_records_it():
    async def scenario():
        tokens = []
        client, http = _client([_minted(1), _minted(2)], tokens=tokens)
        first = await client.mint(Target(VM_ID, 22))
        second = await client.mint(Target(VM_ID, 22))
        assert tokens == ['arm-token-0', 'arm-token-1']
        assert [call[3]['aztoken'] for call in http.calls] == tokens
        assert {s.auth_token for s in client.live_sessions} == {first.auth_token, second.auth_token}
        assert await client.delete(first)
        assert [s.auth_token for s in client.live_sessions] == ['auth-2']
        await client.aclose()
        assert client.live_sessions == []
        assert http.calls[-1][:2] == ('DELETE', 'https://bst:443/api/tokens/auth-2')
        assert http.calls[-1][2]['X-Node-Id'] == 'node-2'
    asyncio.run(scenario())


def test_429_is_retried_after_the_servers_retry_after_then_succeeds():
    async def scenario():
        client, http = _client([FakeResponse(429, b'{"message": "slow down"}', {'Retry-After': '0.15'}),
                                _minted()])
        loop = asyncio.get_running_loop()
        started = loop.time()
        session = await client.mint(Target(VM_ID, 22))
        assert session.auth_token == 'auth-1'
        assert loop.time() - started >= 0.15       # waited what the server asked (within the 0.2 cap)
        assert len(http.calls) == 2
        await client.aclose()
    asyncio.run(scenario())


def test_503_with_retry_after_is_retried_boundedly_then_the_error_is_typed():
    async def scenario():
        client, http = _client([FakeResponse(503, b'busy', {'Retry-After': '0'})] * 5)
        with pytest.raises(SessionUnavailableError, match='HTTP 503'):
            await client.mint(Target(VM_ID, 22))
        assert len(http.calls) == 3
        await client.aclose()
    asyncio.run(scenario())


@pytest.mark.parametrize('status, headers', [(500, {}), (502, {}), (504, {}), (408, {}), (503, {}),
                                             (502, {'Retry-After': '0'})])
def test_a_mint_that_may_have_been_processed_is_sent_once(status, headers):
    """A gateway's 502/504 (or a 500, or a 503 that names no time to come back) may follow a mint the backend
    completed: a second mint would leave the first session open with nobody holding its authToken."""
    async def scenario():
        client, http = _client([FakeResponse(status, b'bad gateway', headers), _minted()])
        with pytest.raises(SessionUnavailableError, match=f'HTTP {status}'):
            await client.mint(Target(VM_ID, 22))
        assert len(http.calls) == 1
        await client.aclose()
    asyncio.run(scenario())


def _raise(error):
    def fail(*_):
        raise error
    return fail


def test_a_read_failure_after_the_request_went_out_is_not_sent_again():
    import requests

    async def scenario():
        client, http = _client([_raise(requests.exceptions.ReadTimeout('read timed out')), _minted()])
        with pytest.raises(SessionUnavailableError):
            await client.mint(Target(VM_ID, 22))
        assert len(http.calls) == 1
        await client.aclose()
    asyncio.run(scenario())


def test_a_connection_that_never_opened_is_tried_again():
    import requests
    import urllib3

    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, '/api/tokens', urllib3.exceptions.NewConnectionError(None, 'Connection refused')))

    async def scenario():
        client, http = _client([_raise(refused), _raise(requests.exceptions.ConnectTimeout('slow')), _minted()])
        assert (await client.mint(Target(VM_ID, 22))).auth_token == 'auth-1'
        assert len(http.calls) == 3
        await client.aclose()
    asyncio.run(scenario())


def test_401_is_not_retried_and_its_message_has_no_token():
    async def scenario():
        tokens = []
        client, http = _client([lambda *_: FakeResponse(401, json.dumps(
            {'message': f'bad token {tokens[-1]}'}).encode())], tokens=tokens)
        with pytest.raises(SessionRefusedError) as caught:
            await client.mint(Target(VM_ID, 22))
        assert len(http.calls) == 1
        assert 'HTTP 401' in str(caught.value) and tokens[-1] not in str(caught.value)
        await client.aclose()
    asyncio.run(scenario())


def test_network_failure_text_never_quotes_the_url():
    import requests

    def refuse(method, url):
        raise requests.ConnectionError(f'failed to reach {url}')

    async def scenario():
        client, _ = _client([_minted(), refuse])
        session = await client.mint(Target(VM_ID, 22))
        assert await client.delete(session) is False        # never raises
        assert client.live_sessions == [session]             # still owed a delete
        await client.aclose()
    asyncio.run(scenario())


def test_developer_sku_resolves_the_host_then_mints_there():
    async def scenario():
        endpoint = Endpoint('dev:443', developer=True, bastion_resource_id='/bh')
        client, http = _client([FakeResponse(200, b'node-9:8443'), _minted()], endpoint=endpoint)
        session = await client.mint(Target(VM_ID, 2222))
        assert http.calls[0][1] == 'https://dev:443/api/connection' and http.calls[0][4]['vmPort'] == '2222'
        assert http.calls[1][1] == 'https://node-9:8443/api/tokens'
        assert session.endpoint_host == 'node-9:8443' and session.developer
        await client.aclose()
        assert http.calls[-1][1] == 'https://node-9:8443/api/tokens/auth-1'
    asyncio.run(scenario())


def test_disabled_verification_warns(caplog):
    with caplog.at_level(logging.WARNING):
        client = DataPlaneClient(Endpoint('h'), lambda: 't', settings=ConnectionSettings(verify=False, environ={}),
                                 http_session=FakeHttp([]))
    assert 'verification' in caplog.text
    asyncio.run(client.aclose())


def test_websocket_logger_drops_debug_and_redacts(caplog):
    wire = WebsocketLogger(logging.getLogger('test.wire'))
    with caplog.at_level(logging.DEBUG, logger='test.wire'):
        assert not wire.isEnabledFor(logging.DEBUG)     # websockets then skips per-frame and handshake logs
        wire.debug('> GET %s HTTP/1.1', '/webtunnelv2/SECRET-WS?X-Node-Id=n')
        wire.info('opening /webtunnelv2/SECRET-WS')
        try:
            raise OSError('cannot reach wss://h/webtunnelv2/SECRET-WS')
        except OSError:
            wire.error('failed', exc_info=True)
    assert 'SECRET-WS' not in caplog.text
    assert 'opening /webtunnelv2/<redacted>' in caplog.text and 'failed (OSError)' in caplog.text
    assert 'GET' not in caplog.text


def test_urllib3_request_lines_are_redacted(caplog):
    install_log_redaction()
    with caplog.at_level(logging.DEBUG, logger='urllib3.connectionpool'):
        logging.getLogger('urllib3.connectionpool').debug('%s://%s:%s "%s %s %s" %s %s', 'https', 'h', 443,
                                                          'DELETE', '/api/tokens/AUTH-SECRET', 'HTTP/1.1', 204, 0)
    assert 'AUTH-SECRET' not in caplog.text and '/api/tokens/<redacted>' in caplog.text


def test_a_token_at_hand_is_used_without_a_fetch_and_a_stale_one_is_fetched():
    class Tokens:
        """Quacks like tokens.CachedToken: peek() is what is at hand, calling fetches (blocking)."""
        def __init__(self):
            self.at_hand, self.fetches = 'cached-token', 0

        def peek(self):
            return self.at_hand

        def __call__(self):
            self.fetches += 1
            return 'fetched-token'

    async def scenario():
        tokens = Tokens()
        http = FakeHttp([_minted(1), _minted(2)])
        client = DataPlaneClient(Endpoint('bst:443'), tokens, settings=ConnectionSettings(environ={}),
                                 http_session=http, prewarm=False)
        await client.mint(Target(VM_ID, 22))
        tokens.at_hand = None                      # less than the margin left: must be fetched
        await client.mint(Target(VM_ID, 22))
        assert [call[3]['aztoken'] for call in http.calls] == ['cached-token', 'fetched-token']
        assert tokens.fetches == 1
        await client.aclose()
    asyncio.run(scenario())
