"""The I/O-free HTTP/1.1 exchange used for mint and delete (h11 plus the data plane's bounds): request bytes,
answers fed in pieces, and when a connection may carry the next request."""

import json

import pytest

from azext_bastion_native.dataplane import protocol
from azext_bastion_native.dataplane.exchange import ClientConnection, HttpProtocolError
from azext_bastion_native.dataplane.protocol import HttpRequest, Session, Target

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


def _split(raw: bytes):
    head, _, body = raw.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    return lines[0], dict(line.split(': ', 1) for line in lines[1:]), body


def _sent(request, user_agent='bastion-native'):
    return _split(ClientConnection(user_agent).send(request))


def test_mint_request_is_a_form_post_with_host_length_and_user_agent():
    start, headers, body = _sent(protocol.mint_request('bst.example:8443', Target(VM_ID, 22), 'arm-token'),
                                 user_agent='AZURECLI/2.91.0 bastion-native/0.1.0')
    assert start == 'POST /api/tokens HTTP/1.1'
    assert headers['Host'] == 'bst.example:8443' and headers['User-Agent'] == 'AZURECLI/2.91.0 bastion-native/0.1.0'
    assert headers['Content-Type'] == 'application/x-www-form-urlencoded' and 'Connection' not in headers
    assert int(headers['Content-Length']) == len(body)
    assert b'protocol=tcptunnel' in body and b'aztoken=arm-token' in body and b'workloadHostPort=22' in body


def test_delete_request_carries_the_node_header_and_no_body():
    session = Session('bst:443', False, 'node 1', auth_token='a/b', websocket_token='w')
    start, headers, body = _sent(protocol.delete_request(session))
    assert start == 'DELETE /api/tokens/a%2Fb HTTP/1.1'
    assert headers['X-Node-Id'] == 'node 1' and 'Content-Length' not in headers and body == b''


def test_json_body_for_the_developer_connection_call():
    endpoint = protocol.Endpoint('dev:443', developer=True, bastion_resource_id='/bh')
    _, headers, body = _sent(protocol.developer_connection_request(endpoint, Target(VM_ID, 22), 't'))
    assert headers['Content-Type'] == 'application/json' and json.loads(body)['vmPort'] == '22'


def test_a_header_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        ClientConnection().send(HttpRequest('GET', 'https://h/x', headers={'X-Node-Id': 'n\r\nEvil: 1'}))


def _connection(method='POST'):
    connection = ClientConnection()
    connection.send(HttpRequest(method, 'https://h/api/tokens'))
    return connection


def test_content_length_answer_fed_byte_by_byte_leaves_the_connection_reusable():
    raw = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"nodeId":1}\n'
    connection = _connection()
    answers = [connection.receive(raw[i:i + 1]) for i in range(len(raw))]
    assert answers[:-1] == [None] * (len(raw) - 1)
    answer = answers[-1]
    assert answer.status == 200 and answer.body == b'{"nodeId":1}\n'
    assert answer.headers['content-type'] == 'application/json' and connection.reusable
    connection.send(HttpRequest('DELETE', 'https://h/api/tokens/x'))      # the next request on it
    assert connection.receive(b'HTTP/1.1 204 No Content\r\n\r\n').status == 204


def test_chunked_answer_with_extensions_and_trailers():
    raw = (b'HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nRetry-After: 2\r\n\r\n'
           b'5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n')
    connection = _connection()
    assert connection.receive(raw[:40]) is None
    assert connection.receive(raw[40:-2]) is None        # the final empty line has not arrived
    answer = connection.receive(raw[-2:])
    assert answer.status == 429 and answer.body == b'hello world' and answer.headers['retry-after'] == '2'


def test_connection_close_and_http10_are_not_reusable():
    closing = _connection('DELETE')
    assert closing.receive(b'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n').status == 204
    assert not closing.reusable
    with pytest.raises(HttpProtocolError):
        closing.send(HttpRequest('DELETE', 'https://h/api/tokens/y'))
    old = _connection()
    assert old.receive(b'HTTP/1.0 200 OK\r\n\r\npartial') is None
    assert old.receive(b'').body == b'partial' and not old.reusable


def test_a_truncated_answer_is_an_error():
    cut = _connection()
    cut.receive(b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    with pytest.raises(HttpProtocolError):
        cut.receive(b'')


def test_bytes_beyond_the_answer_make_the_connection_unusable():
    connection = _connection()
    answer = connection.receive(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n')
    assert answer.body == b'ok' and not connection.reusable


@pytest.mark.parametrize('raw', [b'SSH-2.0-OpenSSH\r\n\r\n', b'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
                                 b'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
                                 b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
                                 b'HTTP/1.1 101 Switching Protocols\r\n\r\n'])
def test_garbage_is_a_protocol_error(raw):
    with pytest.raises(HttpProtocolError):
        _connection().receive(raw)
