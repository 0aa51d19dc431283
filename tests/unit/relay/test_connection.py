"""relay/connection.py: one local connection through one session: how a session that cannot be opened is answered
and logged, and that the session minted is deleted however the relay ends (refused, timed out, cancelled, done)."""

import asyncio
import logging

import pytest

from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.relay.connection import Opening, relay_connection
from tests.unit.relay.doubles import FakeDataPlane, WebsocketServer, echo_handler, local_pair

TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)
LOGGER = 'azext_bastion_native.relay.connection'


class Recording(Opening):
    def __init__(self):
        self.calls = []

    def opened(self, local):
        self.calls.append('opened')

    def failed(self, local, error):
        self.calls.append(('failed', type(error).__name__))
        super().failed(local, error)


class NeverConnects(FakeDataPlane):
    """Mints, then the websocket never opens."""

    async def connect(self, session):
        await asyncio.get_running_loop().create_future()


async def _reset_or_closed(loop, user):
    try:
        return await asyncio.wait_for(loop.sock_recv(user, 10), 5) == b''
    except ConnectionResetError:
        return True


def test_a_refused_session_answers_the_local_side_and_logs_one_line_at_the_level_asked(caplog):
    caplog.set_level(logging.DEBUG, LOGGER)

    async def scenario():
        local, user = await local_pair()
        opening = Recording()
        client = FakeDataPlane('ws://127.0.0.1:9/', refuse=True)
        result = await relay_connection(client, TARGET, local, 'forward 5000', problem_level=logging.ERROR,
                                        opening=opening)
        assert result is None and opening.calls == [('failed', 'SessionRefusedError')]
        assert await _reset_or_closed(asyncio.get_running_loop(), user)    # FORWARD's answer: the connection reset
        user.close()
    asyncio.run(scenario())
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelno, r.getMessage()) for r in problems] == [
        (logging.ERROR, 'forward 5000: Bastion refused the tunnel session (HTTP 401): not allowed')]


def test_a_websocket_that_does_not_open_in_time_is_given_up_and_its_session_deleted(caplog):
    async def scenario():
        local, user = await local_pair()
        client, opening = NeverConnects('ws://unused/'), Recording()
        result = await relay_connection(client, TARGET, local, 'forward 5000', opening=opening, open_timeout=0.05)
        assert result is None and opening.calls == [('failed', 'TimeoutError')]
        assert client.minted == 1 and client.live == set()
        user.close()
    asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        'forward 5000: no session within 0.05 seconds']


def test_cancelled_while_opening_resets_the_local_side_deletes_the_session_and_stays_cancelled():
    async def scenario():
        local, user = await local_pair()
        client, opening = NeverConnects('ws://unused/'), Recording()
        task = asyncio.ensure_future(relay_connection(client, TARGET, local, 'forward 5000', opening=opening))
        while not client.minted:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert opening.calls == [] and client.live == set()
        assert await _reset_or_closed(asyncio.get_running_loop(), user)
        user.close()
    asyncio.run(scenario())


def test_a_relayed_connection_is_announced_and_its_session_deleted_with_one_closing_line(caplog):
    caplog.set_level(logging.INFO, LOGGER)

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(echo_handler) as server:
            local, user = await local_pair()
            client, opening = FakeDataPlane(server.url), Recording()
            task = asyncio.ensure_future(relay_connection(client, TARGET, local, 'forward 5000', opening=opening))
            await loop.sock_sendall(user, b'ping')
            assert await asyncio.wait_for(loop.sock_recv(user, 10), 5) == b'ping'
            user.shutdown(1)
            result = await asyncio.wait_for(task, 5)
            user.close()
        assert opening.calls == ['opened'] and client.live == set()
        assert (result.bytes_up, result.bytes_down, result.bastion_ended) == (4, 4, '')
    asyncio.run(scenario())
    [closing] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert closing.startswith('forward 5000: closed after ') and '4 bytes up, 4 bytes down' in closing
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_bastion_ending_the_session_is_said_at_the_problem_level(caplog):
    async def close_with_policy(websocket):
        await websocket.recv()
        await websocket.close(1008, 'session disconnected by an administrator')

    async def scenario():
        loop = asyncio.get_running_loop()
        async with WebsocketServer(close_with_policy) as server:
            local, user = await local_pair()
            client = FakeDataPlane(server.url)
            task = asyncio.ensure_future(relay_connection(client, TARGET, local, 'proxy (stdio)',
                                                          problem_level=logging.ERROR))
            await loop.sock_sendall(user, b'x')
            result = await asyncio.wait_for(task, 5)
            user.close()
        assert result.bastion_ended == 'code 1008, session disconnected by an administrator'
        assert client.live == set()
    asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        'proxy (stdio): Bastion ended the session (code 1008, session disconnected by an administrator).']
