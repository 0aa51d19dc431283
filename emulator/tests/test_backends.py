"""The loopback backends as the tests (a thread each) and the benchmark (its own process, counting into shared
memory) use them: what each server sends, counts and records, and when it closes."""
import asyncio
import socket
import time

from bastion_emulator.testing.backends import (
    ConnectionRecord, serve_echo, serve_sink_source, source_bytes, start_echo_server, start_sink_source)

MIB = 1 << 20


def _read_to_eof(sock: socket.socket) -> bytes:
    received = bytearray()
    while data := sock.recv(MIB):
        received += data
    return bytes(received)


def _records(server, count=1):
    """The server's records once ``count`` connections have ended on its side (it ends them on its own thread)."""
    deadline = time.monotonic() + 10
    while len(server.connections) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.connections


def test_echo_answers_every_byte_then_half_closes_on_the_clients_eof():
    with start_echo_server() as server:
        with socket.create_connection(server.address) as sock:
            sock.sendall(source_bytes(3 * MIB))
            sock.shutdown(socket.SHUT_WR)
            assert _read_to_eof(sock) == source_bytes(3 * MIB)


def test_source_sends_its_bytes_half_closes_and_still_counts_until_the_clients_eof():
    size = 2 * MIB + 123
    with start_sink_source(send_bytes=size) as server:
        with socket.create_connection(server.address) as sock:
            assert _read_to_eof(sock) == source_bytes(size)
            sock.sendall(b'after the eof')      # the other direction is still open
            sock.shutdown(socket.SHUT_WR)
            assert _records(server) == [ConnectionRecord(received=len(b'after the eof'), sent=size)]


def test_close_after_send_closes_once_everything_is_sent():
    with start_sink_source(send_bytes=MIB + 1, close_after_send=True) as server:
        with socket.create_connection(server.address) as sock:
            assert _read_to_eof(sock) == source_bytes(MIB + 1)


def test_a_pure_sink_waits_for_the_client_to_end():
    with start_sink_source() as server:
        with socket.create_connection(server.address) as sock:
            sock.sendall(bytes(5 * MIB))
            sock.settimeout(0.5)
            try:
                early = sock.recv(1)
            except socket.timeout:
                early = None
            assert early is None                # nothing sent, not closed while the client still sends
            sock.settimeout(10)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b''
            assert _records(server) == [ConnectionRecord(received=5 * MIB, sent=0)]


def test_the_benchmarks_use_counts_every_read_and_asks_the_size_as_each_connection_opens():
    async def run():
        counted = []
        sizes = iter([MIB, 3])
        sink = await serve_sink_source(on_received=counted.append)
        source = await serve_sink_source(lambda: next(sizes))
        echo = await serve_echo()
        try:
            _, writer = await asyncio.open_connection(*sink.sockets[0].getsockname()[:2])
            writer.write(bytes(3 * MIB))
            writer.write_eof()
            await writer.drain()
            while sum(counted) < 3 * MIB:
                await asyncio.sleep(0.01)
            writer.close()
            got = []
            for _ in range(2):
                reader, writer = await asyncio.open_connection(*source.sockets[0].getsockname()[:2])
                got.append(await reader.read())
                writer.close()
            reader, writer = await asyncio.open_connection(*echo.sockets[0].getsockname()[:2])
            writer.write(b'x')
            answer = await reader.readexactly(1)
            writer.close()
            return sum(counted), got, answer
        finally:
            for server in (sink, source, echo):
                server.close()

    counted, got, answer = asyncio.run(run())
    assert counted == 3 * MIB
    assert got == [source_bytes(MIB), source_bytes(3)]
    assert answer == b'x'
