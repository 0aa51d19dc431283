"""The byte pump against a loopback websocket server: integrity, EOF each way, drops, backpressure."""

import asyncio
import hashlib
import os

import pytest
from websockets.exceptions import ConnectionClosed

from azext_bastion_native.relay.pump import Relay
from tests.unit.relay.doubles import FakeDataPlane, WebsocketServer, echo_handler, local_pair


async def _recv_exactly(loop, sock, size, timeout=10):
    chunks, got = [], 0
    while got < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b''.join(chunks)


async def relay_ends(server):
    """What a relay to ``server`` needs: the local end, the user's socket, the open websocket."""
    local, user = await local_pair()
    return local, user, await FakeDataPlane(server.url).connect('s')


def test_bytes_cross_intact_both_ways_and_local_eof_closes_normally():
    closes = []

    async def echo_then_note_close(websocket):
        await echo_handler(websocket)
        closes.append(websocket.close_code)

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(echo_then_note_close) as server:
            client = FakeDataPlane(server.url)
            local, user = await local_pair()
            websocket = await client.connect('s')
            pump = asyncio.create_task(Relay(local, websocket).run())
            payload = os.urandom(3 * 1024 * 1024 + 17)
            sending = asyncio.create_task(loop.sock_sendall(user, payload))
            echoed = await _recv_exactly(loop, user, len(payload))
            await sending
            assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(payload).hexdigest()
            user.shutdown(1)                                   # local EOF
            result = await asyncio.wait_for(pump, 5)
            assert await asyncio.wait_for(loop.sock_recv(user, 10), 5) == b''   # and the local side is closed
            user.close()
        assert result.bytes_up == result.bytes_down == len(payload)
        assert result.local_eof and result.ending == 'local side closed'
        assert closes == [1000]                                # a normal close told the server
    asyncio.run(scenario())


def test_data_in_flight_after_local_eof_is_still_delivered():
    burst = os.urandom(2 * 1024 * 1024)

    async def burst_on_request(websocket):
        await websocket.recv()
        try:
            await websocket.send(burst)                        # written before the close echo goes out
            await websocket.wait_closed()
        except ConnectionClosed:
            pass

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(burst_on_request) as server:
            local, user, websocket = await relay_ends(server)
            pump = asyncio.create_task(Relay(local, websocket).run())
            await loop.sock_sendall(user, b'go')
            head = await _recv_exactly(loop, user, 1)          # the burst has started to arrive...
            user.shutdown(1)                                   # ... and now the local side sends EOF
            received = head + await _recv_exactly(loop, user, len(burst))
            result = await asyncio.wait_for(pump, 5)
            user.close()
        assert received == burst
        assert result.bytes_down == len(burst)
    asyncio.run(scenario())


def test_target_close_ends_the_local_connection_cleanly():
    async def say_bye(websocket):
        await websocket.send(b'bye')
        await websocket.close()

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(say_bye) as server:
            local, user, websocket = await relay_ends(server)
            result = await asyncio.wait_for(Relay(local, websocket).run(), 5)
            assert await _recv_exactly(loop, user, 100) == b'bye'   # then EOF, not a reset
            user.close()
        assert result.ending == 'target closed' and not result.local_eof
    asyncio.run(scenario())


def test_a_dropped_websocket_resets_the_local_connection_promptly():
    async def drop_after_first_message(websocket):
        await websocket.recv()
        websocket.transport.abort()                            # no close frame: the network died

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(drop_after_first_message) as server:
            local, user, websocket = await relay_ends(server)
            pump = asyncio.create_task(Relay(local, websocket).run())
            await loop.sock_sendall(user, b'hello')
            result = await asyncio.wait_for(pump, 3)
            try:
                tail = await asyncio.wait_for(loop.sock_recv(user, 10), 3)
            except ConnectionResetError:
                tail = 'reset'
            user.close()
        assert tail in ('reset', b'')
        assert result.ending.startswith('websocket dropped')
    asyncio.run(scenario())


def test_a_slow_local_reader_bounds_what_the_server_can_push():
    sent = [0]
    chunk = os.urandom(64 * 1024)

    async def flood(websocket):
        try:
            for _ in range(3200):                              # 200 MiB if nothing pushed back
                await websocket.send(chunk)
                sent[0] += len(chunk)
        except ConnectionClosed:
            pass

    async def scenario():
        async with WebsocketServer(flood) as server:
            local, user, websocket = await relay_ends(server)
            pump = asyncio.create_task(Relay(local, websocket).run())
            await asyncio.sleep(1.0)
            early = sent[0]
            await asyncio.sleep(0.5)
            late = sent[0]
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            user.close()
        # The user never reads: the flood stalls once socket buffers and websockets' queue are full.
        assert late == early
        assert late < 48 * 1024 * 1024
    asyncio.run(scenario())


async def never_read(websocket):
    await websocket.wait_closed()


def test_a_slow_target_bounds_what_the_local_side_can_push():
    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(never_read) as server:
            local, user, websocket = await relay_ends(server)
            server_side = next(iter(server._server.connections))  # pylint: disable=protected-access
            server_side.transport.pause_reading()
            pump = asyncio.create_task(Relay(local, websocket).run())
            pushed, block = 0, os.urandom(256 * 1024)
            deadline = loop.time() + 1.5
            while loop.time() < deadline:
                try:
                    pushed += user.send(block)
                except BlockingIOError:
                    await asyncio.sleep(0.05)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            user.close()
        assert pushed < 48 * 1024 * 1024       # 1.5 s of loopback would be gigabytes without pushback
    asyncio.run(scenario())


def test_a_finished_relay_frees_both_sides_without_the_garbage_collector():
    """Reference cycles would keep a connection's buffers (its TLS session's, websockets' parser's) until the
    collector's next full pass: after a burst of connections, RSS stayed at its peak."""
    import gc
    import weakref

    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            local, user, websocket = await relay_ends(server)
            relay = Relay(local, websocket)
            pump = asyncio.create_task(relay.run())
            await asyncio.get_running_loop().sock_sendall(user, b'ping')
            assert await _recv_exactly(asyncio.get_running_loop(), user, 4) == b'ping'
            user.shutdown(1)
            await asyncio.wait_for(pump, 5)
            user.close()
            del pump, websocket, local
            return weakref.ref(relay)

    gc.disable()
    try:
        gone = asyncio.run(scenario())
        assert gone() is None
    finally:
        gc.enable()


def test_nothing_is_read_from_the_local_side_before_the_websocket_is_open():
    """Bytes the client sends during set-up wait in the kernel's socket buffer, not in ours (uvloop reads once)."""
    from azext_bastion_native.relay.pump import EARLY_READ

    async def scenario():
        local, user = await local_pair()
        user.setblocking(True)
        user.sendall(os.urandom(1024 * 1024 // 8))
        await asyncio.sleep(0.3)
        kept = sum(len(data) for data in local._early)  # pylint: disable=protected-access
        local.abort()
        user.close()
        return kept
    assert asyncio.run(scenario()) <= EARLY_READ


def test_binary_frames_are_what_websockets_parses_at_every_length_boundary():
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    from azext_bastion_native.relay.frames import MaskKeys, binary_frame
    keys = MaskKeys()
    for length in (0, 1, 125, 126, 16383, 16384, 65535, 65536, 70000):
        data = os.urandom(length)
        pieces = binary_frame(data, keys.take())
        reader = StreamReader()
        reader.feed_data(b''.join(pieces))
        parser = Frame.parse(reader.read_exact, mask=True)     # as a server reads a client's frame
        try:
            next(parser)
            raise AssertionError(f'{length}: incomplete frame')
        except StopIteration as parsed:
            frame = parsed.value
        assert frame.opcode is Opcode.BINARY and frame.fin and frame.data == data
        assert pieces[0][1] & 0x80                              # masked, as a client must
        assert len(pieces[1]) == length                         # the payload in one piece of its own


def test_fragmented_messages_and_pings_from_the_server_cross_intact_and_pings_are_answered():
    parts = [os.urandom(size) for size in (1, 70000, 0, 16384, 5)]
    pongs = []

    async def fragments_between_pings(websocket):
        await websocket.recv()
        pongs.append(await asyncio.wait_for(await websocket.ping(b'p1'), 5))     # answered mid-stream
        await websocket.send(parts)                            # one message in five frames
        waiter = await websocket.ping(b'p2')
        await websocket.send(b'tail')
        pongs.append(await asyncio.wait_for(waiter, 5))
        await websocket.close()

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(fragments_between_pings) as server:
            local, user, websocket = await relay_ends(server)
            pump = asyncio.create_task(Relay(local, websocket).run())
            await loop.sock_sendall(user, b'go')
            received = await _recv_exactly(loop, user, 1 << 30)
            result = await asyncio.wait_for(pump, 5)
            user.close()
        assert received == b''.join(parts) + b'tail'
        assert len(pongs) == 2 and result.ending == 'target closed'
    asyncio.run(scenario())


def test_a_message_over_the_size_limit_fails_the_websocket_with_1009_and_resets_the_local_side():
    from azext_bastion_native.dataplane.websocket import open_websocket
    closes = []

    async def too_big(websocket):
        await websocket.send(b'small')
        await websocket.send(b'x' * 2048)
        try:
            await websocket.wait_closed()
        finally:
            closes.append(websocket.close_code)

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(too_big) as server:
            local, user = await local_pair()
            websocket = await open_websocket(server.url, ssl_context=None, close_timeout=2, max_size=1024)
            result = await asyncio.wait_for(Relay(local, websocket).run(), 5)
            try:
                received = await _recv_exactly(loop, user, 1 << 20)
            except ConnectionResetError:
                received = 'reset'
            user.close()
        assert received in ('reset', b'small')                 # never the oversized message
        assert closes == [1009] and result.ending == 'websocket dropped (code 1009)'
    asyncio.run(scenario())


def test_frames_that_come_with_the_handshake_answer_are_relayed_first():
    """A server may send its first frames, and even its close, in the same read as the 101 answer."""
    from websockets.frames import Close, Frame, Opcode
    from websockets.utils import accept_key

    from azext_bastion_native.dataplane.websocket import open_websocket

    async def answer_with_frames(reader, writer):
        head = await reader.readuntil(b'\r\n\r\n')
        key = next(line.split(b':', 1)[1].strip().decode() for line in head.split(b'\r\n')
                   if line.lower().startswith(b'sec-websocket-key:'))
        writer.write(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                     b'Sec-WebSocket-Accept: ' + accept_key(key).encode() + b'\r\n\r\n'
                     + Frame(Opcode.BINARY, b'first').serialize(mask=False)
                     + Frame(Opcode.BINARY, b' second').serialize(mask=False)
                     + Frame(Opcode.CLOSE, Close(1000, '').serialize()).serialize(mask=False))
        await writer.drain()
        await reader.read()                                    # the client's close frame, then its EOF
        writer.close()

    async def scenario():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(answer_with_frames, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        local, user = await local_pair()
        websocket = await open_websocket(f'ws://127.0.0.1:{port}/', ssl_context=None, close_timeout=2)
        await asyncio.sleep(0.1)                               # all of it has arrived before the relay starts
        result = await asyncio.wait_for(Relay(local, websocket).run(), 5)
        received = await _recv_exactly(loop, user, 100)        # then EOF: a whole stream, not a reset
        user.close()
        server.close()
        return received, result
    received, result = asyncio.run(scenario())
    assert received == b'first second' and result.ending == 'target closed'


def test_a_quarter_mib_websocket_read_goes_to_the_local_side_in_one_write():
    """Fewer, larger local writes: the local reader (ssh, scp, a database client) wakes once per websocket read."""
    from websockets.frames import Frame, Opcode

    from azext_bastion_native.dataplane.tls import RECORD_SIZE

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(never_read) as server:
            local, user, websocket = await relay_ends(server)
            relay = Relay(local, websocket)
            pump = asyncio.create_task(relay.run())
            await asyncio.sleep(0.05)
            writes = []
            writelines = local.writelines
            local.writelines = lambda pieces: (writes.append(len(pieces)), writelines(pieces))
            payloads = [os.urandom(RECORD_SIZE * 3 + index) for index in range(5)]
            read = b''.join(Frame(Opcode.BINARY, payload).serialize(mask=False) for payload in payloads)
            buffer = relay.get_buffer(-1)
            assert len(read) > 4 * RECORD_SIZE and len(buffer) >= len(read)
            buffer[:len(read)] = read
            relay.buffer_updated(len(read))                    # as the transport does after one recv_into
            received = await _recv_exactly(loop, user, sum(map(len, payloads)))
            assert relay.reads.relays == 1
            user.shutdown(1)
            await asyncio.wait_for(pump, 5)
            assert relay.reads.relays == 0
            user.close()
        return writes, received, payloads
    writes, received, payloads = asyncio.run(scenario())
    assert received == b''.join(payloads)
    assert len(writes) == 1


def test_websocket_reads_are_a_quarter_mib_only_while_few_connections_relay():
    """Behind its local reader, a connection holds a read in its local transport: a burst of hundreds of
    downloads reads 64 KiB at a time (the benchmark's download bursts: 0.17-0.21 MiB per connection otherwise)."""
    from azext_bastion_native.relay.pump import LARGE_READS_UP_TO, READ_SIZE, WEBSOCKET_READ_SIZE, ReadBuffer

    reads = ReadBuffer()
    for _ in range(LARGE_READS_UP_TO):
        reads.relay_started()
    assert len(reads.for_websocket()) == WEBSOCKET_READ_SIZE > READ_SIZE
    reads.relay_started()
    assert len(reads.for_websocket()) == READ_SIZE
    reads.relay_ended()
    assert len(reads.for_websocket()) == WEBSOCKET_READ_SIZE


def test_a_relay_that_fails_to_start_is_not_counted_as_relaying():
    """Else every such failure would keep a tunnel's websocket reads at 64 KiB for good."""

    async def scenario():
        async with WebsocketServer(never_read) as server:
            local, user, websocket = await relay_ends(server)
            relay = Relay(local, websocket)

            def attach_fails(_relay):
                raise RuntimeError('attach failed')
            local.attach = attach_fails
            with pytest.raises(RuntimeError):
                await relay.run()
            websocket.transport.abort()
            user.close()
            return relay.reads.relays
    assert asyncio.run(scenario()) == 0
