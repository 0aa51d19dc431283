"""The SOCKS5 server handshake (RFC 1928): method choice, CONNECT requests of every address type read at every cut
of the bytes, every reply code, and each way a handshake fails."""

import struct

import pytest

from azext_bastion_native.relay import socks
from azext_bastion_native.relay.socks import AddressType, Reply, ServerHandshake

GREETING = b'\x05\x01\x00'


def connect_request(address_type, address, port, command=socks.CONNECT):
    if address_type == AddressType.DOMAIN:
        address = bytes((len(address),)) + address
    return bytes((5, command, 0, address_type)) + address + struct.pack('!H', port)


REQUESTS = [
    (connect_request(AddressType.DOMAIN, b'web-1', 80), 'web-1', 80, AddressType.DOMAIN),
    (connect_request(AddressType.DOMAIN, b'db-1.data-rg', 5432), 'db-1.data-rg', 5432, AddressType.DOMAIN),
    (connect_request(AddressType.IPV4, bytes((10, 0, 0, 101)), 22), '10.0.0.101', 22, AddressType.IPV4),
    (connect_request(AddressType.IPV6, bytes(15) + b'\x01', 3389), '::1', 3389, AddressType.IPV6),
]


@pytest.mark.parametrize('request_bytes,host,port,address_type', REQUESTS)
def test_a_connect_request_is_read_at_every_cut(request_bytes, host, port, address_type):
    whole = GREETING + request_bytes + b'early'
    for cut in range(len(whole) + 1):
        for pieces in ([whole[:cut], whole[cut:]], [bytes((byte,)) for byte in whole[:cut]] + [whole[cut:]]):
            handshake = ServerHandshake()
            sent = b''
            for piece in pieces:
                assert not handshake.done or handshake.request is not None
                handshake.receive_data(piece)
                sent += handshake.data_to_send()
            assert sent == b'\x05\x00'              # no authentication chosen, nothing else said yet
            assert handshake.request == socks.ConnectRequest(host, port, address_type)
            assert handshake.rest == b'early'       # what came after the request is kept for the target
            assert handshake.failed is None


def test_nothing_is_decided_before_the_request_is_whole():
    whole = GREETING + REQUESTS[0][0]
    for cut in range(len(whole)):
        handshake = ServerHandshake()
        handshake.receive_data(whole[:cut])
        assert handshake.request is None and not handshake.done and handshake.failed is None


def test_data_after_the_request_but_before_the_reply_is_kept():
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + REQUESTS[0][0])
    handshake.receive_data(b'GET / HTTP/1.1\r\n')
    assert handshake.rest == b'GET / HTTP/1.1\r\n'


@pytest.mark.parametrize('code', list(Reply))
def test_every_reply_code_is_sent_as_rfc_1928_says(code):
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + REQUESTS[0][0])
    handshake.data_to_send()
    answer = handshake.reply(code)
    # VER REP RSV ATYP(IPv4) BND.ADDR(0.0.0.0) BND.PORT(0)
    assert answer == bytes((5, code, 0, 1, 0, 0, 0, 0, 0, 0))
    with pytest.raises(RuntimeError):
        handshake.reply(Reply.SUCCEEDED)        # answered once


def test_a_client_without_the_no_authentication_method_is_told_no_acceptable_method():
    handshake = ServerHandshake()
    handshake.receive_data(b'\x05\x02\x01\x02')     # GSSAPI, username/password
    assert handshake.data_to_send() == b'\x05\xff'
    assert handshake.done and handshake.request is None and 'authentication' in handshake.failed


def test_the_no_authentication_method_is_chosen_among_others():
    handshake = ServerHandshake()
    handshake.receive_data(b'\x05\x03\x02\x01\x00')
    assert handshake.data_to_send() == b'\x05\x00' and not handshake.done


@pytest.mark.parametrize('first', [b'\x04\x01', b'GE'])
def test_another_protocol_gets_no_socks5_answer(first):
    handshake = ServerHandshake()
    handshake.receive_data(first + b'\x00\x50')
    assert handshake.data_to_send() == b''
    assert handshake.done and 'not a SOCKS5 client' in handshake.failed


@pytest.mark.parametrize('command,name', [(2, 'BIND'), (3, 'UDP ASSOCIATE'), (9, 'command 9')])
def test_commands_other_than_connect_are_answered_command_not_supported(command, name):
    handshake = ServerHandshake()
    handshake.receive_data(GREETING)
    handshake.data_to_send()
    handshake.receive_data(connect_request(AddressType.IPV4, bytes(4), 80, command=command))
    assert handshake.data_to_send() == socks.encode_reply(Reply.COMMAND_NOT_SUPPORTED)
    assert handshake.request is None and name in handshake.failed


def test_an_unknown_address_type_is_answered_address_type_not_supported():
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + b'\x05\x01\x00\x07\x00\x00')
    assert handshake.data_to_send() == b'\x05\x00' + socks.encode_reply(Reply.ADDRESS_TYPE_NOT_SUPPORTED)
    assert handshake.request is None and handshake.failed


def test_a_request_of_another_version_is_answered_general_failure():
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + b'\x04\x01\x00\x01\x00\x00\x00\x00\x00\x50')
    assert handshake.data_to_send() == b'\x05\x00' + socks.encode_reply(Reply.GENERAL_FAILURE)
    assert handshake.failed


def test_a_name_that_is_not_ascii_is_answered_host_unreachable():
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + connect_request(AddressType.DOMAIN, 'wéb'.encode(), 80))
    assert handshake.data_to_send().endswith(socks.encode_reply(Reply.HOST_UNREACHABLE))
    assert handshake.request is None


def test_eof_before_the_request_fails_the_handshake_without_an_answer():
    handshake = ServerHandshake()
    handshake.receive_data(GREETING + REQUESTS[0][0][:3])
    handshake.data_to_send()
    handshake.receive_eof()
    assert handshake.done and handshake.request is None and 'closed' in handshake.failed
    assert handshake.data_to_send() == b''


def test_the_request_label_brackets_ipv6():
    assert socks.ConnectRequest('::1', 22, AddressType.IPV6).label == '[::1]:22'
    assert socks.ConnectRequest('web-1', 80, AddressType.DOMAIN).label == 'web-1:80'


def test_a_refusal_carries_its_reply_code():
    refused = socks.SocksRefused(Reply.HOST_UNREACHABLE, "no VM named 'x'")
    assert refused.reply is Reply.HOST_UNREACHABLE and str(refused) == "no VM named 'x'"
