"""The I/O-free HTTP/1.1 core used for mint and delete: request bytes and incremental response parsing."""

import json

import pytest

from azext_bastion_native.dataplane import protocol
from azext_bastion_native.dataplane.http11 import HttpProtocolError, ResponseParser, encode_request
from azext_bastion_native.dataplane.protocol import Session, Target

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


def _split(raw: bytes):
    head, _, body = raw.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    return lines[0], dict(line.split(': ', 1) for line in lines[1:]), body


def test_mint_request_is_a_form_post_with_host_length_and_keep_alive():
    raw = encode_request(protocol.mint_request('bst.example:8443', Target(VM_ID, 22), 'arm-token'))
    start, headers, body = _split(raw)
    assert start == 'POST /api/tokens HTTP/1.1'
    assert headers['Host'] == 'bst.example:8443' and headers['Connection'] == 'keep-alive'
    assert headers['Content-Type'] == 'application/x-www-form-urlencoded'
    assert int(headers['Content-Length']) == len(body)
    assert b'protocol=tcptunnel' in body and b'aztoken=arm-token' in body and b'workloadHostPort=22' in body


def test_delete_request_carries_the_node_header_and_no_body():
    session = Session('bst:443', False, 'node 1', auth_token='a/b', websocket_token='w')
    start, headers, body = _split(encode_request(protocol.delete_request(session)))
    assert start == 'DELETE /api/tokens/a%2Fb HTTP/1.1'
    assert headers['X-Node-Id'] == 'node 1' and 'Content-Length' not in headers and body == b''


def test_json_body_for_the_developer_connection_call():
    endpoint = protocol.Endpoint('dev:443', developer=True, bastion_resource_id='/bh')
    _, headers, body = _split(encode_request(protocol.developer_connection_request(endpoint, Target(VM_ID, 22), 't')))
    assert headers['Content-Type'] == 'application/json' and json.loads(body)['vmPort'] == 22


def test_a_header_with_a_line_break_is_refused():
    request = protocol.HttpRequest('GET', 'https://h/x', headers={'X-Node-Id': 'n\r\nEvil: 1'})
    with pytest.raises(ValueError):
        encode_request(request)


def test_content_length_response_fed_byte_by_byte():
    raw = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"nodeId":1}\n'
    parser = ResponseParser('POST')
    answers = [parser.feed(raw[i:i + 1]) for i in range(len(raw))]
    assert answers[:-1] == [None] * (len(raw) - 1)
    answer = answers[-1]
    assert answer.status == 200 and answer.body == b'{"nodeId":1}\n'
    assert answer.headers['content-type'] == 'application/json' and parser.keep_alive


def test_chunked_response_with_extensions_and_trailers():
    raw = (b'HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nRetry-After: 2\r\n\r\n'
           b'5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n')
    parser = ResponseParser()
    assert parser.feed(raw[:40]) is None
    assert parser.feed(raw[40:-3]) is None        # the final empty line has not arrived
    answer = parser.feed(raw[-3:])
    assert answer.status == 429 and answer.body == b'hello world' and answer.headers['retry-after'] == '2'


def test_bodiless_statuses_and_connection_close():
    parser = ResponseParser('DELETE')
    answer = parser.feed(b'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n')
    assert answer.status == 204 and answer.body == b'' and not parser.keep_alive


def test_interim_100_continue_is_skipped():
    parser = ResponseParser()
    answer = parser.feed(b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno')
    assert answer.status == 404 and answer.body == b'no'


def test_body_until_close_ends_at_eof_and_truncation_is_an_error():
    parser = ResponseParser()
    assert parser.feed(b'HTTP/1.0 200 OK\r\n\r\npartial') is None
    assert parser.feed_eof().body == b'partial' and not parser.keep_alive
    cut = ResponseParser()
    cut.feed(b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    with pytest.raises(HttpProtocolError):
        cut.feed_eof()


@pytest.mark.parametrize('raw', [b'SSH-2.0-OpenSSH\r\n\r\n', b'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
                                 b'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
                                 b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'])
def test_garbage_is_a_protocol_error(raw):
    with pytest.raises(HttpProtocolError):
        ResponseParser().feed(raw)
