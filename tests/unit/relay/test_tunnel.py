"""TunnelServer and the stdio proxy against a loopback websocket server and a fake data plane."""

import asyncio
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading

import pytest

from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.relay.stdio import run_stdio
from azext_bastion_native.relay.tunnel import StopReason, TunnelServer, run_tunnel
from tests.unit.relay.doubles import FakeDataPlane, WebsocketServer, echo_handler, echo_server_on_a_thread

TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)


async def _round_trip(port, payload):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(payload)
    await writer.drain()
    echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    writer.close()
    return echoed


async def _closed_promptly(reader, timeout=3):
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b''
    except ConnectionResetError:
        return True


def test_concurrent_connections_are_relayed_intact_and_every_session_deleted():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            client = FakeDataPlane(server.url)
            tunnel = TunnelServer(client, TARGET)
            address, port = await tunnel.start()
            assert address == '127.0.0.1' and port > 0
            serving = asyncio.create_task(tunnel.serve())
            payloads = [os.urandom(200_000 + n) for n in range(24)]
            echoed = await asyncio.gather(*(_round_trip(port, p) for p in payloads))
            assert [hashlib.sha256(e).digest() for e in echoed] == [hashlib.sha256(p).digest() for p in payloads]
            for _ in range(100):
                if not client.live:
                    break
                await asyncio.sleep(0.02)
            assert client.minted == 24 and not client.live     # one session per connection, all deleted
            tunnel.stop()
            assert await asyncio.wait_for(serving, 5) is StopReason.STOPPED
            assert client.closed
    asyncio.run(scenario())


def test_orphaned_sessions_are_cleaned_up_as_the_service_listens_not_at_its_first_connection():
    async def scenario():
        client = FakeDataPlane('ws://unused')
        tunnel = TunnelServer(client, TARGET)
        assert client.orphan_cleanups == 0
        await tunnel.start()
        assert client.orphan_cleanups == 1 and client.minted == 0
        tunnel.stop()
        await asyncio.wait_for(tunnel.serve(), 5)
    asyncio.run(scenario())


def test_a_service_that_cannot_listen_cleans_up_nothing():
    async def scenario():
        taken = socket.socket()
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        client = FakeDataPlane('ws://unused')
        try:
            with pytest.raises(OSError):
                await TunnelServer(client, TARGET, port=taken.getsockname()[1]).start()
        finally:
            taken.close()
        assert client.orphan_cleanups == 0
    asyncio.run(scenario())


def test_unix_socket_listener_relays_each_connection_and_removes_its_socket(tmp_path):
    path = str(tmp_path / 'tunnel')

    async def round_trip(payload):
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
        writer.close()
        return echoed

    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            client = FakeDataPlane(server.url)
            tunnel = TunnelServer(client, TARGET, unix_path=path)
            assert await tunnel.start() == (path, None)
            assert stat.S_ISSOCK(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
            serving = asyncio.create_task(tunnel.serve())
            payloads = [os.urandom(100_000 + n) for n in range(6)]
            assert await asyncio.gather(*(round_trip(p) for p in payloads)) == payloads
            for _ in range(100):
                if not client.live:
                    break
                await asyncio.sleep(0.02)
            assert client.minted == 6 and not client.live       # one session per connection, all deleted
            tunnel.stop()
            assert await asyncio.wait_for(serving, 5) is StopReason.STOPPED
            assert client.closed
            assert not os.path.exists(path)
    asyncio.run(scenario())


def test_a_refused_session_closes_that_connection_only():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            client = FakeDataPlane(server.url, refuse=True)
            tunnel = TunnelServer(client, TARGET)
            _, port = await tunnel.start()
            serving = asyncio.create_task(tunnel.serve())
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            assert await _closed_promptly(reader)
            writer.close()
            client.refuse = False
            assert await _round_trip(port, b'still serving') == b'still serving'
            tunnel.stop()
            await asyncio.wait_for(serving, 5)
    asyncio.run(scenario())


def test_stop_closes_live_connections_and_deletes_their_sessions():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            client = FakeDataPlane(server.url)
            tunnel = TunnelServer(client, TARGET, grace_period=3)
            _, port = await tunnel.start()
            serving = asyncio.create_task(tunnel.serve())
            connections = [await asyncio.open_connection('127.0.0.1', port) for _ in range(5)]
            for reader, writer in connections:
                writer.write(b'x')
                assert await asyncio.wait_for(reader.readexactly(1), 5) == b'x'
            assert len(client.live) == 5
            started = asyncio.get_running_loop().time()
            tunnel.stop(StopReason.INTERRUPTED)
            assert await asyncio.wait_for(serving, 5) is StopReason.INTERRUPTED
            assert asyncio.get_running_loop().time() - started < 3
            assert not client.live
            for reader, writer in connections:
                assert await _closed_promptly(reader)
                writer.close()
    asyncio.run(scenario())


def test_idle_timeout_waits_for_open_connections_to_end():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            tunnel = TunnelServer(FakeDataPlane(server.url), TARGET, idle_timeout=0.3)
            _, port = await tunnel.start()
            serving = asyncio.create_task(tunnel.serve())
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(b'ping')
            await reader.readexactly(4)
            await asyncio.sleep(0.6)
            assert not serving.done()                           # a connection is open: not idle
            writer.close()
            assert await asyncio.wait_for(serving, 3) is StopReason.IDLE
    asyncio.run(scenario())


def test_timeout_stops_listening_but_lets_a_live_connection_finish():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            tunnel = TunnelServer(FakeDataPlane(server.url), TARGET, timeout=0.3, grace_period=5)
            _, port = await tunnel.start()
            serving = asyncio.create_task(tunnel.serve())
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            await asyncio.sleep(0.5)                            # past the timeout
            try:
                await asyncio.open_connection('127.0.0.1', port)
                refused = False
            except OSError:
                refused = True
            assert refused                                      # the listener is closed
            writer.write(b'late but fine')                      # the live connection still works
            assert await asyncio.wait_for(reader.readexactly(13), 3) == b'late but fine'
            writer.close()
            assert await asyncio.wait_for(serving, 5) is StopReason.TIMEOUT
    asyncio.run(scenario())


def test_max_connections_refuses_the_extra_one():
    async def scenario():
        async with WebsocketServer(echo_handler) as server:
            tunnel = TunnelServer(FakeDataPlane(server.url), TARGET, max_connections=1)
            _, port = await tunnel.start()
            serving = asyncio.create_task(tunnel.serve())
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(b'1')
            await reader.readexactly(1)
            extra_reader, extra_writer = await asyncio.open_connection('127.0.0.1', port)
            assert await _closed_promptly(extra_reader)
            extra_writer.close()
            writer.close()
            tunnel.stop()
            await asyncio.wait_for(serving, 5)
    asyncio.run(scenario())


def test_run_tunnel_stops_cleanly_on_sigterm_with_its_exit_code():
    # The loopback websocket server runs on its own loop in a thread; run_tunnel owns the main thread.
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)

        def on_ready(address, port):
            with socket.create_connection((address, port)) as sock:
                sock.sendall(b'hi')
            os.kill(os.getpid(), signal.SIGTERM)

        reason = run_tunnel(TunnelServer(client, TARGET), on_ready=on_ready)
    assert reason is StopReason.TERMINATED and reason.exit_code == 143
    assert StopReason.INTERRUPTED.exit_code == 130 and StopReason.IDLE.exit_code == 0
    assert client.closed and not client.live


def test_stdio_proxy_relays_pipes_and_ends_on_stdin_eof():
    box = {}
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)

        def relay():
            box['ok'] = run_stdio(client, TARGET, stdin_read, stdout_write)
        proxy = threading.Thread(target=relay)
        proxy.start()
        payload = os.urandom(300_000)
        writer = threading.Thread(target=lambda: os.write(stdin_write, payload) and None)
        writer.start()
        received = b''
        while len(received) < len(payload):
            chunk = os.read(stdout_read, 1 << 20)
            assert chunk
            received += chunk
        writer.join()
        os.close(stdin_write)                                   # ssh is done: EOF on our stdin
        proxy.join(10)
    assert not proxy.is_alive() and box['ok'] is True
    assert received == payload
    assert not client.live and client.closed
    for fd in (stdin_read, stdout_read, stdout_write):
        os.close(fd)


FORWARD_UNDER_LOW_LIMIT = '''
import asyncio, resource, sys
from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.relay import event_loop
from azext_bastion_native.relay.tunnel import TunnelServer, run_tunnel
from tests.unit.relay.doubles import FakeDataPlane

class SlowToRefuse(FakeDataPlane):
    async def mint(self, target):       # each connection holds its descriptor a while, then Bastion refuses it
        await asyncio.sleep(0.5)
        return await super().mint(target)

if sys.argv[1] == 'asyncio':
    event_loop.new_event_loop = asyncio.new_event_loop

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
client = SlowToRefuse('ws://unused', refuse=True)
target = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)
print(run_tunnel(TunnelServer(client, target), on_ready=lambda _, port: print(port, flush=True)).value, flush=True)
'''


def _ended(sock):
    try:
        return sock.recv(100) == b''
    except ConnectionResetError:
        return True


def test_a_forward_out_of_descriptors_backs_off_and_keeps_accepting(event_loop_kind):
    """A real RLIMIT_NOFILE of 64 and 150 connections at once on a TCP forward: its accepts fail with EMFILE, are
    logged once and tried again, and it accepts again once the crowd is gone (the agent's socket is served alike)."""
    with subprocess.Popen([sys.executable, '-c', FORWARD_UNDER_LOW_LIMIT, event_loop_kind], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=os.getcwd()) as forward:
        port = int(forward.stdout.readline())
        crowd = [socket.create_connection(('127.0.0.1', port)) for _ in range(150)]
        threading.Event().wait(1.0)         # the forward meets its open-file limit meanwhile
        for sock in crowd:
            sock.close()
        with socket.create_connection(('127.0.0.1', port), timeout=30) as late:
            assert _ended(late)             # accepted, and closed as Bastion refused its session
        forward.send_signal(signal.SIGTERM)
        out, err = forward.communicate(timeout=30)
    assert out.strip() == 'terminated' and 'Traceback' not in err, err[-2000:]
    assert 'cannot accept a connection (EMFILE: Too many open files)' in err, err[-2000:]
    assert 'accepting connections again' in err, err[-2000:]
