"""dataplane/warm.py: connections opened ahead of the websocket, taken oldest first and each once; a spoiled, failed,
too old or unwanted one is never handed over, and never more than the bound are opened ahead."""

import asyncio
import logging

from azext_bastion_native.dataplane import warm as warm_module
from azext_bastion_native.dataplane.warm import WarmConnections


class HoldingServer:
    """A loopback TCP server that keeps each connection open until the client closes it; counts both and notes
    each client's address (``peers``)."""

    def __init__(self):
        self.accepted = 0
        self.ended = 0
        self.peers = []
        self._server = None

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._hold, '127.0.0.1', 0)
        return self

    async def __aexit__(self, *_):
        self._server.close()

    @property
    def host(self):
        return f'127.0.0.1:{self._server.sockets[0].getsockname()[1]}'

    async def _hold(self, reader, writer):
        self.accepted += 1
        self.peers.append(writer.get_extra_info('peername'))
        try:
            await reader.read()
        except ConnectionResetError:
            pass
        self.ended += 1
        writer.close()

    async def settled(self, accepted, ended=0):
        async def counted():
            while self.accepted < accepted or self.ended < ended:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(counted(), 5)


def test_a_warm_connection_the_server_closed_is_not_used():
    async def scenario():
        async def close_at_once(_reader, writer):
            writer.close()
        server = await asyncio.start_server(close_at_once, '127.0.0.1', 0)
        host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        warm = WarmConnections(None)
        warm.open(host)
        await asyncio.sleep(0.1)
        assert await warm.take(host) is None                  # spoiled: the websocket opens afresh instead
        warm.open(host)
        assert await warm.take('other:443') is None           # nothing warm for another host
        warm.close()
        server.close()
    asyncio.run(scenario())


def test_connections_are_taken_oldest_first_and_each_once():
    async def scenario():
        async with HoldingServer() as server:
            warm = WarmConnections(None)
            warm.open(server.host)
            warm.open(server.host)
            first, second = await warm.take(server.host), await warm.take(server.host)
            assert first is not None and second is not None and first is not second
            assert first.opened <= second.opened
            assert await warm.take(server.host) is None
            first.transport.close()
            second.transport.close()
            await server.settled(2, 2)
    asyncio.run(scenario())


def test_never_more_than_the_bound_are_opened_ahead(monkeypatch):
    monkeypatch.setattr(warm_module, 'MAX_WARM_PER_HOST', 2)

    async def scenario():
        async with HoldingServer() as server:
            warm = WarmConnections(None)
            for _ in range(3):
                warm.open(server.host)
            taken = [await warm.take(server.host) for _ in range(3)]
            assert taken[2] is None and None not in taken[:2]
            assert server.accepted == 2
            warm.open(server.host)                        # room again once taken
            assert await warm.take(server.host) is not None
            warm.close()
            for connection in taken[:2]:
                connection.transport.close()
    asyncio.run(scenario())


def test_a_connection_that_failed_is_not_an_error_the_websocket_opens_afresh(caplog):
    caplog.set_level(logging.DEBUG, 'azext_bastion_native.dataplane.warm')

    async def scenario():
        async with HoldingServer() as server:
            host = server.host
        await asyncio.sleep(0)                            # the port now refuses
        warm = WarmConnections(None)
        warm.open(host)
        assert await warm.take(host) is None
    asyncio.run(scenario())
    assert any('failed (ConnectionRefusedError); opening a fresh one' in message for message in caplog.messages)


def test_a_connection_kept_too_long_is_closed_not_used(monkeypatch):
    monkeypatch.setattr(warm_module, 'MAX_IDLE', -1.0)

    async def scenario():
        async with HoldingServer() as server:
            warm = WarmConnections(None)
            warm.open(server.host)
            assert await warm.take(server.host) is None
            await server.settled(1, 1)                    # and the server saw it closed
    asyncio.run(scenario())


def test_cancel_one_drops_the_newest_and_close_drops_the_rest():
    async def scenario():
        async with HoldingServer() as server:
            warm = WarmConnections(None)
            warm.open(server.host)
            await server.settled(1)
            warm.open(server.host)
            warm.cancel_one(server.host)                  # its mint failed: no websocket will want it
            warm.cancel_one('other:443')                  # nothing there: nothing happens
            kept = await warm.take(server.host)
            assert kept.transport.get_extra_info('sockname') == server.peers[0]     # the oldest stayed
            assert await warm.take(server.host) is None
            kept.transport.close()
            warm.open(server.host)
            warm.open(server.host)
            await server.settled(3)
            await asyncio.sleep(0.05)                     # both handshakes done: close aborts ready connections
            warm.close()
            assert await warm.take(server.host) is None
            await server.settled(server.accepted, server.accepted)
    asyncio.run(scenario())
