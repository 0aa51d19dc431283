"""The relay's TLS session (dataplane/tls.py) against an in-memory TLS server: records out, records in."""

import os
import ssl

import pytest

from azext_bastion_native.dataplane.tls import FEED_SIZE, RECORD_SIZE, TlsSession, full_records


class Captured:
    """A write transport that keeps what was written, and how many writes it took."""

    def __init__(self):
        self.data = b''
        self.writes = 0

    def write(self, data):
        self.data += data
        self.writes += 1

    def writelines(self, pieces):
        self.write(b''.join(pieces))


@pytest.fixture(name='pair')
def a_client_and_an_in_memory_server(tmp_path):
    from bastion_emulator.certs import load_or_create
    keys = load_or_create(tmp_path)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = keys.server_ssl_context().wrap_bio(incoming, outgoing, server_side=True)
    client = TlsSession(ssl.create_default_context(cafile=str(keys.ca_pem)), 'localhost')
    for _ in range(10):
        done = client.handshake()
        incoming.write(client.output())
        try:
            server.do_handshake()
        except ssl.SSLWantReadError:
            pass
        client.feed(outgoing.read())
        if done:
            break
    return client, server, incoming, outgoing


def application_records(ciphertext):
    """The lengths of the TLS application-data records in ``ciphertext`` (RFC 8446 section 5.1)."""
    lengths, position = [], 0
    while position < len(ciphertext):
        kind, length = ciphertext[position], int.from_bytes(ciphertext[position + 3:position + 5], 'big')
        if kind == 23:
            lengths.append(length)
        position += 5 + length
    return lengths


def server_reads(server, incoming, ciphertext):
    incoming.write(ciphertext)
    plaintext = b''
    while True:
        try:
            plaintext += server.read(1 << 20)
        except ssl.SSLWantReadError:
            return plaintext


def test_full_records_join_a_short_chunk_to_the_next_and_copy_nothing_else():
    header, payload = b'h' * 8, os.urandom(4 * RECORD_SIZE - 8)
    pieces = list(full_records([header, payload]))
    assert [len(piece) for piece in pieces] == [RECORD_SIZE] * 4
    assert b''.join(pieces) == header + payload
    assert all(isinstance(piece, memoryview) for piece in pieces[1:])      # views of the payload, not copies
    odd = list(full_records([b'a', b'b' * (RECORD_SIZE + 5), b'', b'c' * 3]))
    assert [len(piece) for piece in odd] == [RECORD_SIZE, 9]
    assert b''.join(odd) == b'a' + b'b' * (RECORD_SIZE + 5) + b'ccc'


def test_a_frame_goes_out_as_full_records_in_one_write(pair):
    client, server, incoming, _ = pair
    transport = Captured()
    header, payload = b'h' * 8, os.urandom(4 * RECORD_SIZE - 8)
    client.send(transport, [header, payload])
    assert transport.writes == 1
    assert len(application_records(transport.data)) == 4        # not a record of its own for the 8-byte header
    assert server_reads(server, incoming, transport.data) == header + payload


def test_what_arrives_comes_out_a_record_at_a_time_in_bytes_of_its_own_until_close_notify(pair):
    client, server, _, outgoing = pair
    sent = os.urandom(5 * RECORD_SIZE + 123)
    server.write(sent)
    ciphertext = outgoing.read()
    pieces = []
    client.decrypt(memoryview(ciphertext)[:-7], pieces.append)      # a record cut short waits for its end
    client.decrypt(memoryview(ciphertext)[-7:], pieces.append)
    assert b''.join(pieces) == sent and all(type(piece) is bytes and len(piece) <= RECORD_SIZE for piece in pieces)
    assert not client.closed
    try:
        server.unwrap()
    except ssl.SSLWantReadError:
        pass
    client.decrypt(outgoing.read(), pieces.append)
    assert client.closed and b''.join(pieces) == sent


def test_a_large_read_is_fed_to_the_session_a_bounded_piece_at_a_time(pair):
    # The session's buffer keeps the size of the most ever fed at once for the connection's life: a quarter-MiB
    # socket read must not make it a quarter MiB per connection.
    client, server, _, outgoing = pair
    sent = os.urandom(16 * RECORD_SIZE + 321)
    server.write(sent)
    ciphertext = outgoing.read()
    assert len(ciphertext) > 2 * FEED_SIZE
    pieces, most_held = [], []

    def deliver(plaintext):
        pieces.append(plaintext)
        most_held.append(client._incoming.pending)      # pylint: disable=protected-access

    client.decrypt(memoryview(ciphertext), deliver)
    assert b''.join(pieces) == sent
    assert max(most_held) <= FEED_SIZE
