"""The byte pump against a loopback websocket server: integrity, EOF each way, drops, backpressure."""

import asyncio
import hashlib
import os

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
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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


def test_a_slow_target_bounds_what_the_local_side_can_push():
    async def never_read(websocket):
        await websocket.wait_closed()

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(never_read) as server:
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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
            local, user = await local_pair()
            websocket = await FakeDataPlane(server.url).connect('s')
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

    from azext_bastion_native.relay.pump import SMALL_FRAME, binary_frame
    for length in (0, 1, 125, 126, SMALL_FRAME - 1, SMALL_FRAME, 65535, 65536, 70000):
        data = os.urandom(length)
        pieces = binary_frame(data)
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
        assert len(pieces) == (1 if length < SMALL_FRAME else 2)
