"""The data plane's HTTP client against a hostile (or broken) server: every answer that is not HTTP/1.1 as RFC 9112
allows it is refused with the typed error, within bounded memory, and a connection that carried anything odd
never goes back to the keep-alive pool."""

import asyncio

import pytest

from azext_bastion_native.dataplane.errors import SessionUnavailableError
from azext_bastion_native.dataplane.https import KeepAliveHttps
from azext_bastion_native.dataplane.protocol import HttpRequest

from .doubles import ScriptedServer

MIB = 1024 * 1024


def _send(server, https, method='DELETE', path='/api/tokens/x'):
    return https.send(HttpRequest(method, server.url + path))


def _refused(answer_bytes):
    """Send one request to a server answering ``answer_bytes``: the typed error, never an answer."""
    async def scenario():
        async with ScriptedServer(lambda _: answer_bytes) as server:
            https = KeepAliveHttps(None, read_timeout=10)
            try:
                with pytest.raises(SessionUnavailableError) as caught:
                    answer = await _send(server, https)
                    pytest.fail(f'accepted: HTTP {answer.status} {answer.body[:40]!r}')
                return caught.value
            finally:
                https.close()
    return asyncio.run(scenario())


CHUNKED_HEAD = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'


def test_an_endless_chunk_size_line_is_refused():
    # 2 MiB of leading zeros is still chunk size 1 to a parser without a cap on the line.
    _refused(CHUNKED_HEAD + b'0' * (2 * MIB) + b'1\r\nx\r\n0\r\n\r\n')


def test_a_chunk_extension_without_end_is_refused():
    _refused(CHUNKED_HEAD + b'1;ext=' + b'a' * (2 * MIB) + b'\r\nx\r\n0\r\n\r\n')


@pytest.mark.parametrize('trailers', [b'X-Trailer: ' + b'a' * (2 * MIB) + b'\r\n',
                                      b'X-Trailer: a\r\n' * (200 * 1024)])
def test_endless_trailers_are_refused(trailers):
    _refused(CHUNKED_HEAD + b'2\r\nok\r\n0\r\n' + trailers + b'\r\n')


def test_a_run_of_interim_answers_is_refused_without_recursion():
    _refused(b'HTTP/1.1 100 Continue\r\n\r\n' * 20000 + b'HTTP/1.1 204 No Content\r\n\r\n')


def test_a_few_interim_answers_are_skipped():
    async def scenario():
        answer = b'HTTP/1.1 100 Continue\r\n\r\n' * 3 + b'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno'
        async with ScriptedServer(lambda _: answer) as server:
            https = KeepAliveHttps(None)
            got = await _send(server, https)
            https.close()
        assert (got.status, got.body) == (404, b'no')
    asyncio.run(scenario())


@pytest.mark.parametrize('length, body', [(b'+2', b'ok'), (b'5_0', b'x' * 50), (b' 0x2', b'ok'), (b'2, 3', b'ok'),
                                          (b'-1', b'')])
def test_a_content_length_that_is_not_plain_digits_is_refused(length, body):
    _refused(b'HTTP/1.1 200 OK\r\nContent-Length: ' + length + b'\r\n\r\n' + body)


def test_a_transfer_coding_that_merely_contains_chunked_is_refused():
    _refused(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: notchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')


@pytest.mark.parametrize('status', [b'700', b'99', b'1000', b'600', b'2O0'])
def test_a_status_code_out_of_range_is_refused(status):
    _refused(b'HTTP/1.1 ' + status + b' Odd\r\nContent-Length: 0\r\n\r\n')


def test_a_body_larger_than_the_cap_is_refused():
    _refused(b'HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n' + b'x' * (5 * MIB))


@pytest.mark.parametrize('pause', [0.0, 0.2])
def test_bytes_after_a_body_keep_the_connection_out_of_the_pool(pause):
    """A second answer smuggled behind the first (in the same write, or a moment later while the connection is
    idle) must never be read as the answer to the next request."""
    forged = b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'

    def answer(number):
        if number == 1:
            return [b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', forged]
        return b'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal'

    async def scenario():
        async with ScriptedServer(answer, pause=pause) as server:
            https = KeepAliveHttps(None)
            try:
                first = await _send(server, https)
                await asyncio.sleep(pause + 0.2)            # the forged bytes have arrived
                second = await _send(server, https)
            finally:
                https.close()
            assert (first.body, second.body) == (b'ok', b'real')
            assert server.connections == 2
    asyncio.run(scenario())


def test_a_well_behaved_server_keeps_one_connection():
    async def scenario():
        async with ScriptedServer(lambda n: b'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n' + str(n).encode()) \
                as server:
            https = KeepAliveHttps(None)
            bodies = [(await _send(server, https)).body for _ in range(3)]
            https.close()
        assert bodies == [b'1', b'2', b'3'] and server.connections == 1
    asyncio.run(scenario())


def test_a_post_goes_only_on_a_recently_used_connection(monkeypatch):
    """A server may close an idle kept-alive connection just as a request goes out on it, and then nobody knows
    whether it read the request: a DELETE may go on any idle connection (sent again if so), a POST (a mint) only on
    one used moments ago."""
    from azext_bastion_native.dataplane import https as https_module
    monkeypatch.setattr(https_module, 'POST_REUSE_IDLE', 0.1)

    async def scenario():
        async with ScriptedServer(lambda _: b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') as server:
            https = KeepAliveHttps(None)
            await _send(server, https, 'POST', '/api/tokens')
            await _send(server, https, 'POST', '/api/tokens')        # at once: the same connection
            assert server.connections == 1
            await asyncio.sleep(0.2)
            await _send(server, https, 'DELETE')                     # idle a while: still fine for a DELETE
            assert server.connections == 1
            await asyncio.sleep(0.2)
            await _send(server, https, 'POST', '/api/tokens')        # idle a while: a fresh one for a POST
            assert server.connections == 2
            https.close()
    asyncio.run(scenario())
