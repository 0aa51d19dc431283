"""relay/stdio.py: the ProxyCommand relay over stdin/stdout: what it refuses, how --timeout and --idle-timeout end it,
a signal's exit code, and that the session is deleted and the descriptors given back blocking however it ends. (Bytes
crossing the pipes: tests/unit/relay/test_tunnel.py.)"""

import asyncio
import itertools
import logging
import os
import signal
import threading
from types import SimpleNamespace

import pytest

from azext_bastion_native.dataplane.protocol import Target
from azext_bastion_native.relay import stdio
from azext_bastion_native.relay.stdio import StdioNotSupportedError, StdioStopped, open_stdio, run_stdio
from tests.unit.relay.doubles import FakeDataPlane, echo_server_on_a_thread

TARGET = Target('/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm', 22)


@pytest.fixture
def pipes():
    """(stdin's read end, its write end, stdout's read end, its write end), closed after the test."""
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    yield stdin_read, stdin_write, stdout_read, stdout_write
    for fd in (stdin_read, stdin_write, stdout_read, stdout_write):
        os.close(fd)


def test_a_regular_file_is_refused_as_stdin(tmp_path, pipes):
    path = tmp_path / 'input'
    path.write_bytes(b'')
    with open(path, 'rb') as regular:
        with pytest.raises(StdioNotSupportedError, match='pipes, sockets or a terminal'):
            asyncio.run(open_stdio(regular.fileno(), pipes[3]))


def test_no_session_returns_false_closes_the_client_and_leaves_the_pipes_blocking(pipes):
    stdin_read, _, _, stdout_write = pipes
    client = FakeDataPlane('ws://unused/', refuse=True)
    assert run_stdio(client, TARGET, stdin_read, stdout_write) is False
    assert client.closed
    assert os.get_blocking(stdin_read) and os.get_blocking(stdout_write)


def test_timeout_ends_a_live_relay_and_deletes_its_session(pipes, caplog):
    caplog.set_level(logging.INFO, 'azext_bastion_native.relay.stdio')
    stdin_read, _, _, stdout_write = pipes
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)
        assert run_stdio(client, TARGET, stdin_read, stdout_write, timeout=0.2) is True
    assert client.minted == 1 and not client.live and client.closed
    assert 'proxy (stdio): --timeout elapsed; the session has been deleted.' in caplog.messages
    assert os.get_blocking(stdin_read) and os.get_blocking(stdout_write)


def test_sigterm_raises_stdio_stopped_with_143_after_deleting_the_session(pipes):
    stdin_read, _, _, stdout_write = pipes
    with echo_server_on_a_thread() as url:
        client = FakeDataPlane(url)

        def terminate_once_minted():
            while not client.minted:
                threading.Event().wait(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=terminate_once_minted, daemon=True).start()
        with pytest.raises(StdioStopped) as stopped:
            run_stdio(client, TARGET, stdin_read, stdout_write)
    assert stopped.value.exit_code == 143
    assert not client.live and client.closed


class _Counting:
    """A relay whose byte count grows each time it is read: never idle."""

    def __init__(self):
        self._count = itertools.count()

    @property
    def result(self):
        return SimpleNamespace(bytes_up=next(self._count), bytes_down=0)


def test_idle_timeout_fires_when_nothing_moves_and_not_while_bytes_move():
    assert asyncio.run(stdio._time_limits(SimpleNamespace(relay=None), None, 0.01)) == '--idle-timeout'
    assert asyncio.run(stdio._time_limits(SimpleNamespace(relay=_Counting()), 0.1, 0.02)) == '--timeout'


def test_without_either_limit_the_time_never_runs_out():
    async def scenario():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stdio._time_limits(SimpleNamespace(relay=None), None, None), 0.05)
    asyncio.run(scenario())
