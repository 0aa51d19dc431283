"""The websocket upgrade (dataplane/websocket.py): websockets parses the answer's head, and what follows it in the
same reads is kept whole, unparsed, for the relay's frame reader - wherever the reads cut the answer."""

import asyncio

import pytest
from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

from azext_bastion_native.dataplane.tls import TlsSession


class RecordingTransport:
    def __init__(self):
        self.written = b''
        self.paused = self.aborted = False

    def set_protocol(self, protocol):
        self.protocol = protocol

    def writelines(self, pieces):
        self.written += b''.join(pieces)

    def pause_reading(self):
        self.paused = True

    def abort(self):
        self.aborted = True


def upgrade_answer(request_bytes, status=b'101 Switching Protocols'):
    key = next(line.split(b':', 1)[1].strip().decode() for line in request_bytes.split(b'\r\n')
               if line.lower().startswith(b'sec-websocket-key:'))
    return (b'HTTP/1.1 ' + status + b'\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            b'Sec-WebSocket-Accept: ' + accept_key(key).encode() + b'\r\n\r\n')


def start_handshake():
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    from azext_bastion_native.dataplane.websocket import _Handshake
    transport = RecordingTransport()
    connection = type('Connection', (), {'transport': transport, 'tls': TlsSession(None, 'bst.example')})()
    protocol = ClientProtocol(parse_uri('ws://bst.example/webtunnelv2/t'))
    handshake = _Handshake(protocol, protocol.connect(), connection, close_timeout=1, max_size=None)
    return handshake, transport


FRAMES = Frame(Opcode.BINARY, b'first').serialize(mask=False) + Frame(Opcode.PING, b'p').serialize(mask=False)


def test_the_frames_after_the_head_are_kept_whole_wherever_the_reads_cut():
    async def scenario():
        results = []
        for cut in range(1, 180):              # the answer's head is about 130 bytes, the frames 10
            handshake, transport = start_handshake()
            stream = upgrade_answer(transport.written) + FRAMES
            handshake.data_received(stream[:cut])
            handshake.data_received(stream[cut:])
            opened = await asyncio.wait_for(handshake.opened, 1)
            results.append((bytes(opened.early), transport.paused, opened.protocol.events_received()))
        return results
    for early, paused, events in asyncio.run(scenario()):
        assert early == FRAMES and paused and events == []     # websockets saw none of the frames


def test_an_error_answer_with_a_body_still_fails_the_upgrade():
    from websockets.exceptions import InvalidStatus

    async def scenario():
        handshake, _ = start_handshake()
        handshake.data_received(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\n')
        handshake.data_received(b'denied')
        return await asyncio.wait_for(handshake.opened, 1)
    with pytest.raises(InvalidStatus) as raised:
        asyncio.run(scenario())
    assert raised.value.response.status_code == 403 and raised.value.response.body == b'denied'


def test_what_a_server_sends_with_its_answer_is_kept_up_to_one_small_read():
    """A server that sends at once after its answer (the emulator's download source; in a burst of hundreds of
    connections) leaves at most one handshake read per connection waiting for the relay, not a transport's read."""
    from azext_bastion_native.dataplane.tls import HANDSHAKE_READ
    from azext_bastion_native.dataplane.websocket import open_websocket

    frames = b''.join(Frame(Opcode.BINARY, bytes(60000)).serialize(mask=False) for _ in range(8))

    async def answer_and_send_at_once(reader, writer):
        head = await reader.readuntil(b'\r\n\r\n')
        writer.write(upgrade_answer(head) + frames)
        await writer.drain()
        await reader.read()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(answer_and_send_at_once, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        opened = await open_websocket(f'ws://127.0.0.1:{port}/', ssl_context=None)
        await asyncio.sleep(0.1)                # reading is paused: nothing more arrives in ``early``
        early = bytes(opened.early)
        opened.transport.abort()
        server.close()
        return early
    early = asyncio.run(scenario())
    assert 0 < len(early) <= HANDSHAKE_READ and frames.startswith(early)
