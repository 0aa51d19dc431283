"""The SOCKS5 listener kind on the relay service, against a loopback websocket server and a fake data plane: names
resolved through the caller's resolver and relayed, every refusal answered with its reply code and no hang, a
listener that cannot listen leaving none listening, forwards and SOCKS5 under one lifecycle."""

import asyncio
import contextlib
import hashlib
import os
import socket
import struct

import pytest

from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.relay.socks import Reply, SocksRefused
from azext_bastion_native.relay.socks_listener import SocksListener
from azext_bastion_native.relay.tunnel import Listener, RelayService, StopReason
from tests.unit.relay.doubles import FakeDataPlane, WebsocketServer, echo_handler

VMS = {'web-1': Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/web-1', 80),
       'web-2': Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/web-2', 80)}


class RecordingDataPlane(FakeDataPlane):
    def __init__(self, url, refuse=False):
        super().__init__(url, refuse=refuse)
        self.targets = []

    async def mint(self, target):
        self.targets.append(target)
        return await super().mint(target)


async def resolve(request):
    if request.host == 'slow':
        await asyncio.sleep(60)
    if request.host == 'stopped-by-table':
        raise SocksRefused(Reply.NOT_ALLOWED, 'IP connect reaches ports 22 and 3389 only')
    if request.host == 'broken':
        raise RuntimeError('ARM went away')
    if request.host not in VMS:
        raise SocksRefused(Reply.HOST_UNREACHABLE, f"no VM named '{request.host}'")
    return Target(VMS[request.host].resource_id, request.port)


async def socks_connect(port, host, target_port, early=b''):
    """A SOCKS5 client: (reply code, reader, writer); the request sent in pieces, as slow clients do."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'\x05\x01')
    await writer.drain()
    writer.write(b'\x00')
    assert await asyncio.wait_for(reader.readexactly(2), 10) == b'\x05\x00'
    name = host.encode()
    writer.write(b'\x05\x01\x00\x03' + bytes((len(name),)) + name + struct.pack('!H', target_port) + early)
    answer = await asyncio.wait_for(reader.readexactly(10), 10)
    assert answer[:1] == b'\x05' and answer[2:] == b'\x00\x01' + bytes(6)
    return answer[1], reader, writer


@contextlib.asynccontextmanager
async def serving(*listeners, refuse=False, **limits):
    """The service over ``listeners`` on a loopback echo websocket, serving: yields (client, [port per listener]);
    stopped on the way out, every session deleted."""
    async with WebsocketServer(echo_handler) as server:
        client = RecordingDataPlane(server.url, refuse=refuse)
        service = RelayService(client, listeners, **limits)
        bound = await service.start_listeners()
        task = asyncio.create_task(service.serve())
        yield client, [port for _, port in bound]
        service.stop()
        assert await asyncio.wait_for(task, 5) is StopReason.STOPPED
        assert client.closed and not client.live


async def closed_by_server(reader):
    try:
        return await asyncio.wait_for(reader.read(), 5) == b''
    except ConnectionResetError:
        return True


def test_names_are_resolved_relayed_intact_and_each_session_deleted():
    async def scenario():
        async with serving(SocksListener(resolve)) as (client, [port]):
            async def through(host, payload):
                code, reader, writer = await socks_connect(port, host, 8080, early=payload[:5])
                assert code == Reply.SUCCEEDED
                writer.write(payload[5:])
                echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
                writer.close()
                return echoed
            payloads = [os.urandom(100_000 + n) for n in range(8)]
            echoed = await asyncio.gather(*(through(f'web-{1 + n % 2}', p) for n, p in enumerate(payloads)))
            assert [hashlib.sha256(e).digest() for e in echoed] == [hashlib.sha256(p).digest() for p in payloads]
            assert sorted(t.resource_id.rsplit('/', 1)[1] for t in client.targets) == ['web-1'] * 4 + ['web-2'] * 4
            assert {t.port for t in client.targets} == {8080}
    asyncio.run(scenario())


@pytest.mark.parametrize('host,code', [('nowhere', Reply.HOST_UNREACHABLE), ('stopped-by-table', Reply.NOT_ALLOWED),
                                       ('broken', Reply.GENERAL_FAILURE), ('slow', Reply.TTL_EXPIRED)])
def test_a_name_that_cannot_be_reached_gets_its_reply_code_and_no_session(host, code):
    async def scenario():
        async with serving(SocksListener(resolve, connect_timeout=0.5)) as (client, [port]):
            answered, reader, writer = await socks_connect(port, host, 80)
            assert answered == code
            assert await closed_by_server(reader)
            writer.close()
            assert not client.targets
    asyncio.run(scenario())


def test_a_session_bastion_refuses_is_answered_connection_refused():
    async def scenario():
        async with serving(SocksListener(resolve), refuse=True) as (_, [port]):
            answered, reader, writer = await socks_connect(port, 'web-1', 22)
            assert answered == Reply.CONNECTION_REFUSED
            assert await closed_by_server(reader)
            writer.close()
    asyncio.run(scenario())


def test_a_client_that_says_nothing_is_cut_and_one_without_no_authentication_is_told_so():
    async def scenario():
        async with serving(SocksListener(resolve, handshake_timeout=0.3)) as (_, [port]):
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            assert await closed_by_server(reader)
            writer.close()
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(b'\x05\x01\x02')          # username/password only
            assert await asyncio.wait_for(reader.read(), 5) == b'\x05\xff'
            writer.close()
    asyncio.run(scenario())


def test_forwards_and_socks_share_one_lifecycle_and_one_limit():
    async def scenario():
        forward = Listener(VMS['web-2'], name='web-2:80')
        async with serving(forward, SocksListener(resolve), max_connections=1) as (client, [forward_port, socks_port]):
            reader, writer = await asyncio.open_connection('127.0.0.1', forward_port)
            writer.write(b'x')
            assert await asyncio.wait_for(reader.readexactly(1), 5) == b'x'
            extra_reader, extra_writer = await asyncio.open_connection('127.0.0.1', socks_port)
            assert await closed_by_server(extra_reader)     # the limit counts the forward's connection
            extra_writer.close()
            assert client.targets == [VMS['web-2']]
            writer.close()
    asyncio.run(scenario())


def test_when_one_listener_cannot_listen_none_does():
    async def scenario():
        taken = socket.socket()
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        first, second = Listener(VMS['web-1']), SocksListener(resolve, port=busy_port)
        service = RelayService(FakeDataPlane('ws://unused'), [first, second])
        with pytest.raises(OSError):
            await service.start_listeners()
        assert service.failed_listener is second
        with pytest.raises(OSError):        # the first one's port was let go
            await asyncio.open_connection('127.0.0.1', first.port)
        taken.close()
    asyncio.run(scenario())
