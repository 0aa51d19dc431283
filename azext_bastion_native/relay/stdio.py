"""Relay stdin/stdout through one Bastion session, for ssh's ProxyCommand. stdout carries the relayed bytes and
nothing else (diagnostics go to logging, i.e. stderr)."""

import asyncio
import logging
import os
import stat
import sys
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

from ..dataplane.protocol import Target
from . import event_loop
from .connection import relay_connection
from .pump import LocalEnd
from .tunnel import StopReason, stopped_by_signals

logger = logging.getLogger(__name__)


class StdioNotSupportedError(RuntimeError):
    """stdin/stdout are not pipes, sockets or terminals (e.g. a regular file)."""


class StdioStopped(Exception):
    """A signal (SIGINT, SIGTERM, SIGHUP) ended the relay, its session deleted: ``exit_code`` is 128 + its number,
    as shells report it."""

    def __init__(self, reason: StopReason):
        super().__init__(reason.value)
        self.exit_code = reason.exit_code


async def open_stdio(stdin_fd: int, stdout_fd: int) -> LocalEnd:
    """A LocalEnd over the two file descriptors (pipes, sockets or terminals)."""
    loop = asyncio.get_running_loop()
    for fd in (stdin_fd, stdout_fd):
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise StdioNotSupportedError('stdin and stdout must be pipes, sockets or a terminal '
                                         '(as ssh ProxyCommand provides).')
    local = LocalEnd(pipes=True)
    # Duplicates: the descriptors belong to the process, and a transport closes its own (uvloop's always do).
    # Output first: the local end must be able to answer as soon as input arrives.
    local.out_transport, _ = await loop.connect_write_pipe(local.write_pipe_protocol,
                                                           os.fdopen(os.dup(stdout_fd), 'wb', buffering=0))
    await loop.connect_read_pipe(lambda: local, os.fdopen(os.dup(stdin_fd), 'rb', buffering=0))
    return local


@contextmanager
def _blocking_restored(*fds: int) -> Iterator[None]:
    """asyncio makes the descriptors non-blocking; the parent shares them, so put them back after."""
    saved = [(fd, os.get_blocking(fd)) for fd in fds]
    try:
        yield
    finally:
        for fd, blocking in saved:
            try:
                os.set_blocking(fd, blocking)
            except OSError:
                pass


def _relayed(local: LocalEnd) -> int:
    relay = local.relay
    return -1 if relay is None else relay.result.bytes_up + relay.result.bytes_down


async def _time_limits(local: LocalEnd, timeout: Optional[float], idle_timeout: Optional[float]) -> str:
    """The option's name once ``timeout`` seconds have passed, or ``idle_timeout`` seconds with no byte relayed
    either way (checked as each such period ends, so a quiet spell is at least that long); never without either."""
    loop = asyncio.get_running_loop()
    started = last_change = loop.time()
    last_total = _relayed(local)
    while True:
        now = loop.time()
        total = _relayed(local)
        if total != last_total:
            last_total, last_change = total, now
        waits: List[float] = []
        if timeout is not None:
            waits.append(started + timeout - now)
        if idle_timeout is not None:
            waits.append(last_change + idle_timeout - now)
        if not waits:
            await loop.create_future()          # no limit: wait to be cancelled
        if timeout is not None and now - started >= timeout:
            return '--timeout'
        if idle_timeout is not None and now - last_change >= idle_timeout:
            return '--idle-timeout'
        await asyncio.sleep(min(waits))


async def _relay_stdio(client: Any, target: Target, stdin_fd: int, stdout_fd: int, timeout: Optional[float],
                       idle_timeout: Optional[float]) -> bool:
    local = await open_stdio(stdin_fd, stdout_fd)
    relaying = asyncio.ensure_future(
        relay_connection(client, target, local, 'proxy (stdio)', problem_level=logging.ERROR))
    limits = asyncio.ensure_future(_time_limits(local, timeout, idle_timeout))
    try:
        await asyncio.wait((relaying, limits), return_when=asyncio.FIRST_COMPLETED)
    finally:
        limits.cancel()
        if not relaying.done():
            relaying.cancel()       # the time ran out (or a signal): the relay deletes its session
            await asyncio.wait((relaying,))
    if relaying.cancelled():
        logger.info('proxy (stdio): %s elapsed; the session has been deleted.', limits.result())
        return True
    return relaying.result() is not None


def run_stdio(client: Any, target: Target, stdin_fd: Optional[int] = None, stdout_fd: Optional[int] = None,
              timeout: Optional[float] = None, idle_timeout: Optional[float] = None) -> bool:
    """Relay stdin/stdout to ``target`` until either side closes, ``timeout`` seconds have passed or ``idle_timeout``
    seconds went by with nothing relayed; the session is deleted on the way out.

    Returns True when a session was opened and relayed (or the time ran out), False when none could be opened;
    raises StdioStopped after a signal."""
    stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    stdout_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd

    async def main() -> bool:
        task = asyncio.current_task()
        stopped_by: List[StopReason] = []

        def stop(reason: StopReason) -> None:
            stopped_by.append(reason)
            if task is not None:
                task.cancel()
        try:
            with stopped_by_signals(stop):
                return await _relay_stdio(client, target, stdin_fd, stdout_fd, timeout, idle_timeout)
        except asyncio.CancelledError:
            if stopped_by:
                raise StdioStopped(stopped_by[0]) from None
            return True
        finally:
            await client.aclose()

    with _blocking_restored(stdin_fd, stdout_fd):
        return event_loop.run(main())
