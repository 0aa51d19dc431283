"""The relay service: listen locally (TCP ports or Unix sockets, one listener per kind of connection: a forward to one
target, SOCKS5 in socks_listener.py), relay each connection through a Bastion session of its own, stop cleanly (limits,
timeouts, signals, every session deleted). TunnelServer is the service with one forward."""

import asyncio
import contextlib
import ctypes
import enum
import functools
import logging
import os
import signal
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Set, Tuple

from ..dataplane.protocol import Target
from . import event_loop
from .connection import relay_connection
from .pump import LocalEnd, ReadBuffer

logger = logging.getLogger(__name__)

UNIX_SOCKET_MODE = 0o600        # only our user may connect (the directory around it should be private too)
# Connections the kernel may queue before we accept them: in a burst, a full queue drops the client's handshake ACK
# and later resets a connection the client thinks open.
BACKLOG = 1024
TRIM_DELAY = 1.0                # seconds after a connection ends before freed memory goes back to the system

Bound = Tuple[str, Optional[int]]       # where a listener listens: (address, port), or (unix socket path, None)


class StopReason(enum.Enum):
    STOPPED = 'stopped'             # stop() called
    INTERRUPTED = 'interrupted'     # SIGINT / Ctrl+C
    TERMINATED = 'terminated'       # SIGTERM
    HUNG_UP = 'hung up'             # SIGHUP: the terminal closed
    TIMEOUT = 'timeout'             # --timeout elapsed
    IDLE = 'idle'                   # --idle-timeout elapsed with no connection open

    @property
    def exit_code(self) -> int:
        """Shell conventions: 128 + signal number after a signal, 0 for a planned end."""
        return {StopReason.INTERRUPTED: 130, StopReason.TERMINATED: 143, StopReason.HUNG_UP: 129}.get(self, 0)


class Listener:  # pylint: disable=too-few-public-methods
    """A listener kind: where it listens (``bind_address:port``, 0 picking a free port, or the Unix socket
    ``unix_path``) and what a connection accepted there gets. This one, the TCP forward, relays every connection to
    ``target``; ``name`` (e.g. the VM and port) goes into each connection's log lines."""

    def __init__(self, target: Optional[Target] = None, bind_address: str = '127.0.0.1', port: int = 0,
                 unix_path: Optional[str] = None, name: Optional[str] = None):
        self.target = target
        self.bind_address = bind_address
        self.port = port
        self.unix_path = unix_path
        self.name = name

    async def serve_connection(self, client: Any, local: LocalEnd, label: str) -> None:
        """Relay one accepted connection, start to end (the service cancels this on a stop)."""
        if self.target is None:
            raise ValueError('a forward listener needs a target')
        await relay_connection(client, self.target, local, label)


class RelayService:  # pylint: disable=too-many-instance-attributes
    """One session lifecycle under every listener kind: listen on each of ``listeners`` and serve each accepted
    connection through a Bastion session of its own, minted by ``client`` (one DataPlaneClient for the run), which
    is asked to delete the sessions of runs that are gone (start_orphan_cleanup) as soon as every listener listens.

    ``max_connections``: connections beyond it (over all listeners) are refused (closed at once, one log line).
    ``timeout``: after that many seconds stop listening; live connections get ``grace_period`` seconds
    to finish, then they are closed. ``idle_timeout``: stop once no connection has been open for that
    many seconds. Any stop deletes every live session (bounded by ``grace_period``)."""

    def __init__(self, client: Any, listeners: Sequence[Listener], max_connections: Optional[int] = None,
                 timeout: Optional[float] = None, idle_timeout: Optional[float] = None,
                 grace_period: float = 10.0):
        self.client = client
        self.listeners = list(listeners)
        self.max_connections = max_connections
        self.limit_reason: Optional[str] = None     # why max_connections, said on a refusal (default: the option)
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.grace_period = grace_period
        self.failed_listener: Optional[Listener] = None     # the one that could not listen, after start() raised
        self._read_buffer = ReadBuffer()
        self._servers: List[asyncio.AbstractServer] = []
        self._handlers: Set['asyncio.Task[None]'] = set()
        self._accepted = 0
        self._stop_reason: Optional[StopReason] = None
        self._wake = asyncio.Event()
        self._trim: Optional[asyncio.TimerHandle] = None
        self._last_active = 0.0

    @property
    def active_connections(self) -> int:
        return len(self._handlers)

    async def start_listeners(self) -> List[Bound]:
        """Listen on every listener, or on none: when one cannot (``failed_listener``), the others close and its
        OSError is raised. Returns (address, port) actually bound per listener, (unix_path, None) on a Unix socket."""
        bound = []
        for listener in self.listeners:
            try:
                bound.append(await self._listen(listener))
            except OSError:
                self.failed_listener = listener
                for server in self._servers:
                    server.close()
                for started in self.listeners[:len(bound)]:
                    _remove_unix_socket(started)
                self._servers = []
                raise
        self._last_active = time.monotonic()
        # A service may wait long for its first connection: the sessions a killed run left open are deleted now.
        self.client.start_orphan_cleanup()
        return bound

    async def _listen(self, listener: Listener) -> Bound:
        loop = asyncio.get_running_loop()

        def local_end() -> LocalEnd:
            return LocalEnd(functools.partial(self._on_connection, listener), self._read_buffer)
        if listener.unix_path is not None:
            server = await loop.create_unix_server(local_end, path=listener.unix_path, backlog=BACKLOG)
            self._servers.append(server)
            os.chmod(listener.unix_path, UNIX_SOCKET_MODE)
            return listener.unix_path, None
        server = await loop.create_server(local_end, listener.bind_address, listener.port, reuse_address=True,
                                          backlog=BACKLOG)
        self._servers.append(server)
        address, port = server.sockets[0].getsockname()[:2]
        listener.port = port
        return address, port

    def stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        """Ask serve() to stop (safe from a signal handler running on the loop)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake.set()

    async def serve(self) -> StopReason:
        """Serve until stopped, timed out or idle; then shut down cleanly. Returns the StopReason."""
        if not self._servers:
            await self.start_listeners()
        started = time.monotonic()
        reason = None
        while reason is None:
            reason = self._stop_reason or self._due(started, time.monotonic())
            if reason is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._next_check(started, time.monotonic()))
                except asyncio.TimeoutError:
                    pass
        await self._shut_down(reason)
        return reason

    def _due(self, started: float, now: float) -> Optional[StopReason]:
        if self.timeout is not None and now - started >= self.timeout:
            return StopReason.TIMEOUT
        if self.idle_timeout is not None and not self._handlers and now - self._last_active >= self.idle_timeout:
            return StopReason.IDLE
        return None

    def _next_check(self, started: float, now: float) -> float:
        waits = [3600.0]
        if self.timeout is not None:
            waits.append(started + self.timeout - now)
        if self.idle_timeout is not None and not self._handlers:
            waits.append(self._last_active + self.idle_timeout - now)
        return max(0.01, min(waits))

    async def _shut_down(self, reason: StopReason) -> None:
        for server in self._servers:
            server.close()
        for listener in self.listeners:
            _remove_unix_socket(listener)
        handlers = set(self._handlers)
        logger.debug('tunnel stopping (%s) with %d open connection(s)', reason.value, len(handlers))
        if handlers and reason is StopReason.TIMEOUT:
            # Planned end: let the live connections finish, within the grace period.
            _, handlers = await asyncio.wait(handlers, timeout=self.grace_period)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=self.grace_period)
        await self.client.aclose(timeout=self.grace_period)

    def _on_connection(self, listener: Listener, local: LocalEnd) -> None:
        self._accepted += 1
        if listener.unix_path is not None:
            label = f'connection {self._accepted} on {listener.unix_path}'     # Unix peers have no address
        else:
            peer = (local.in_transport and local.in_transport.get_extra_info('peername')) or ('?', 0)
            label = f'connection {self._accepted} from {peer[0]}:{peer[1]}'
        if listener.name:
            label += f' to {listener.name}'
        if self._stop_reason is not None or (
                self.max_connections is not None and len(self._handlers) >= self.max_connections):
            logger.warning('%s: refused (%s)', label, 'tunnel is stopping' if self._stop_reason
                           else self.limit_reason or f'--max-connections {self.max_connections} reached')
            local.abort()
            return
        task = asyncio.ensure_future(self._serve_connection(listener, local, label))
        self._handlers.add(task)

    async def _serve_connection(self, listener: Listener, local: LocalEnd, label: str) -> None:
        try:
            await listener.serve_connection(self.client, local, label)
        except asyncio.CancelledError:
            pass                # a stop: the relay closed both sides and deleted its session
        except Exception:  # pylint: disable=broad-except
            logger.exception('%s: unexpected error', label)
            local.abort()
        finally:
            self._handlers.discard(asyncio.current_task())
            self._last_active = time.monotonic()
            self._wake.set()
            if self._trim is None:
                self._trim = asyncio.get_running_loop().call_later(TRIM_DELAY, self._release_memory)

    def _release_memory(self) -> None:
        self._trim = None
        release_freed_memory()


class TunnelServer(RelayService):
    """The service with one TCP forward: listen on ``bind_address:port`` (0 picks a free port), or on the Unix
    socket ``unix_path`` when given, and relay each connection to ``target``."""

    def __init__(self, client: Any, target: Target, bind_address: str = '127.0.0.1', port: int = 0,
                 max_connections: Optional[int] = None, timeout: Optional[float] = None,
                 idle_timeout: Optional[float] = None, grace_period: float = 10.0,
                 unix_path: Optional[str] = None):
        self.forward = Listener(target, bind_address, port, unix_path)
        super().__init__(client, [self.forward], max_connections=max_connections, timeout=timeout,
                         idle_timeout=idle_timeout, grace_period=grace_period)
        self.target = target
        self.bind_address = bind_address
        self.unix_path = unix_path

    @property
    def port(self) -> int:
        return self.forward.port

    async def start(self) -> Bound:
        """Start listening; returns (address, port) actually bound, or (unix_path, None) on a Unix socket."""
        return (await self.start_listeners())[0]


def _remove_unix_socket(listener: Listener) -> None:
    """Python < 3.13 leaves the socket file behind when the server closes."""
    if listener.unix_path is not None:
        try:
            os.unlink(listener.unix_path)
        except FileNotFoundError:
            pass


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):     # not glibc (macOS, musl, Windows): nothing to do
        return None


def release_freed_memory() -> bool:
    """Hand memory that was freed back to the system. glibc keeps freed heap pages for reuse, so without this
    the RSS of a burst of connections stays at its peak long after the burst. Returns True when done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@contextlib.contextmanager
def stopped_by_signals(stop: Callable[[StopReason], None]) -> Iterator[None]:
    """While the block runs on the running loop: SIGINT, SIGTERM and SIGHUP call ``stop(reason)`` instead of killing
    the process, so that every session is deleted on the way out. Where a loop cannot take signal handlers (Windows,
    not the main thread) nothing is installed: Ctrl+C arrives as KeyboardInterrupt instead."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum, reason in ((signal.SIGINT, StopReason.INTERRUPTED), (signal.SIGTERM, StopReason.TERMINATED),
                           (getattr(signal, 'SIGHUP', None), StopReason.HUNG_UP)):
        if signum is None:
            continue        # Windows has no SIGHUP
        try:
            loop.add_signal_handler(signum, stop, reason)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def run_service(service: RelayService, on_ready: Optional[Callable[[List[Bound]], None]] = None) -> StopReason:
    """Run ``service`` on a fresh event loop until it stops; SIGINT/SIGTERM/SIGHUP stop it cleanly.

    ``on_ready(bound)`` is called once every listener listens, with what each bound. Returns the StopReason."""

    async def main() -> StopReason:
        with stopped_by_signals(service.stop):
            bound = await service.start_listeners()
            if on_ready is not None:
                on_ready(bound)
            return await service.serve()

    return event_loop.run(main())


def run_tunnel(server: TunnelServer,
               on_ready: Optional[Callable[[str, Optional[int]], None]] = None) -> StopReason:
    """run_service for a TunnelServer: ``on_ready(address, port)`` once it listens."""
    return run_service(server, None if on_ready is None else lambda bound: on_ready(*bound[0]))
