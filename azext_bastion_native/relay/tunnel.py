"""The relay service: listen locally (TCP ports or Unix sockets, one listener per kind of connection: a forward to one
target, SOCKS5 in socks_listener.py, the connection agent's socket), accept within limits and through a shortage of
descriptors, relay each connection through a Bastion session of its own, stop cleanly (limits, timeouts, idleness,
signals, every session deleted). TunnelServer is the service with one forward."""

import asyncio
import contextlib
import ctypes
import enum
import errno
import functools
import logging
import os
import signal
import socket
import stat
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

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
SPARE_HANDLERS = 16             # connections handled beyond max_connections: being refused, or only asking something
ACCEPT_BACKOFF = (0.05, 2.0)    # seconds to wait after a failed accept: first, at most (doubling)
ACCEPT_ERRORS = {errno.EMFILE: 'EMFILE', errno.ENFILE: 'ENFILE', errno.ECONNABORTED: 'ECONNABORTED',
                 errno.ENOBUFS: 'ENOBUFS', errno.ENOMEM: 'ENOMEM'}

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


class Listener:
    """A listener kind: where it listens (``bind_address:port``, 0 picking a free port, or the Unix socket
    ``unix_path``; open_sockets and closed) and what a connection accepted there gets (serve_socket). This one, the
    TCP forward, relays every connection to ``target``; ``name`` (e.g. the VM and port) goes into each connection's
    log lines."""

    def __init__(self, target: Optional[Target] = None, bind_address: str = '127.0.0.1', port: int = 0,
                 unix_path: Optional[str] = None, name: Optional[str] = None):
        self.target = target
        self.bind_address = bind_address
        self.port = port
        self.unix_path = unix_path
        self.name = name

    async def open_sockets(self) -> List[socket.socket]:
        """Its listening sockets (non-blocking): the Unix socket, or one per address ``bind_address`` resolves to."""
        if self.unix_path is not None:
            return [unix_listening_socket(self.unix_path)]
        return await tcp_listening_sockets(self.bind_address, self.port)

    def closed(self) -> None:
        """Its sockets are closed: the Unix socket's file goes too (closing a socket leaves it behind)."""
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    async def serve_socket(self, service: 'RelayService', conn: socket.socket, label: str) -> bool:
        """Serve one accepted socket, start to end (the service cancels this on a stop, and closes ``conn`` after
        unless it was handed to ``service.local_end``). True when it was a connection, whose end restarts the idle
        clock; False for one that only asked something. This kind relays each one (serve_connection)."""
        local = await service.local_end(conn)
        try:
            await self.serve_connection(service.client, local, label)
        except Exception:
            local.abort()
            raise
        return True

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
    ``max_handlers``: connections handled at once, refused ones included; the rest wait in the kernel's backlog
    (default: ``max_connections`` + SPARE_HANDLERS, no cap without it). An accept that fails (out of descriptors,
    a connection aborted) is logged once per spell and tried again after a pause, never the end of accepting.
    ``timeout``: after that many seconds stop listening; live connections get ``grace_period`` seconds
    to finish, then they are closed. ``idle_timeout``: stop once no connection has been open for that
    many seconds (and nothing else keeps it, see busy). Any stop deletes every live session (bounded by
    ``grace_period``). A kind of service adds its own work through busy, on_listening, say_stopping and close."""

    def __init__(self, client: Any, listeners: Sequence[Listener], max_connections: Optional[int] = None,
                 timeout: Optional[float] = None, idle_timeout: Optional[float] = None,
                 grace_period: float = 10.0, max_handlers: Optional[int] = None):
        self.client = client
        self.listeners = list(listeners)
        self.max_connections = max_connections
        self.max_handlers = max_handlers if max_handlers is not None or max_connections is None else (
            max_connections + SPARE_HANDLERS)
        self.limit_reason: Optional[str] = None     # why max_connections, said on a refusal (default: the option)
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.grace_period = grace_period
        self.failed_listener: Optional[Listener] = None     # the one that could not listen, after start() raised
        self._read_buffer = ReadBuffer()
        self._sockets: List[Tuple[Listener, socket.socket]] = []
        self._accepting: List['asyncio.Task[None]'] = []
        self._room: Optional[asyncio.Semaphore] = None      # handler slots (max_handlers), taken before each accept
        # Connections being handled -> their socket until a transport takes it (None then).
        self._handlers: Dict['asyncio.Task[bool]', Optional[socket.socket]] = {}
        self._accepted = 0
        self._stop_reason: Optional[StopReason] = None
        self._wake = asyncio.Event()
        self._trim: Optional[asyncio.TimerHandle] = None
        self._last_active = 0.0

    @property
    def active_connections(self) -> int:
        return len(self._handlers)

    # -- what a kind of service adds -----------------------------------------------------------------------------
    def busy(self) -> bool:
        """Whether something besides its connections keeps the service from being idle (nothing here)."""
        return False

    def on_listening(self) -> None:
        """Every listener listens. A service may wait long for its first connection: the sessions a killed run
        left open are deleted now."""
        self.client.start_orphan_cleanup()

    def say_stopping(self, reason: StopReason) -> None:
        logger.debug('tunnel stopping (%s) with %d open connection(s)', reason.value, len(self._handlers))

    async def close(self) -> None:
        """The last step of a stop, its connections ended: the client deletes whatever session is left."""
        await self.client.aclose(timeout=self.grace_period)

    def look_again(self) -> None:
        """What busy() says has changed: the service looks at its idle time again."""
        self._wake.set()

    # -- listening and accepting ---------------------------------------------------------------------------------
    async def start_listeners(self) -> List[Bound]:
        """Listen on every listener, or on none: when one cannot (``failed_listener``), the others close and its
        OSError is raised. Returns (address, port) actually bound per listener, (unix_path, None) on a Unix socket."""
        bound: List[Bound] = []
        for listener in self.listeners:
            try:
                sockets = await listener.open_sockets()
            except OSError:
                self.failed_listener = listener
                for _, sock in self._sockets:
                    sock.close()
                for started in self.listeners[:len(bound)]:
                    started.closed()
                self._sockets = []
                raise
            self._sockets.extend((listener, sock) for sock in sockets)
            bound.append(_bound(listener, sockets[0]))
        self._room = asyncio.Semaphore(self.max_handlers) if self.max_handlers is not None else None
        self._accepting = [asyncio.ensure_future(self._accept(listener, sock)) for listener, sock in self._sockets]
        self._last_active = time.monotonic()
        self.on_listening()
        return bound

    async def _accept(self, listener: Listener, sock: socket.socket) -> None:
        """Accept on ``sock`` for as long as the service runs, a handler slot taken before each accept."""
        loop = asyncio.get_running_loop()
        backoff = 0.0
        while True:
            if self._room is not None:
                await self._room.acquire()
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as err:
                self._release_room()
                # One warning per spell of failures (then debug lines), so a long one does not flood the log.
                logger.log(logging.DEBUG if backoff else logging.WARNING,
                           'cannot accept a connection (%s: %s); trying again in %.2fs, then backing off',
                           ACCEPT_ERRORS.get(err.errno or 0) or err.errno, err.strerror, ACCEPT_BACKOFF[0])
                backoff = min(ACCEPT_BACKOFF[1], backoff * 2 or ACCEPT_BACKOFF[0])
                await asyncio.sleep(backoff)
                continue
            if backoff:
                logger.warning('accepting connections again')
                backoff = 0.0
            conn.setblocking(False)
            self._on_connection(listener, conn, peer)

    def _release_room(self) -> None:
        if self._room is not None:
            self._room.release()

    async def local_end(self, conn: socket.socket) -> LocalEnd:
        """An accepted socket as the relay's local end; from then on its transport closes it."""
        task = asyncio.current_task()
        if task is not None and task in self._handlers:
            self._handlers[task] = None
        try:
            _, local = await asyncio.get_running_loop().connect_accepted_socket(
                lambda: LocalEnd(read_buffer=self._read_buffer), conn)
        except OSError:
            conn.close()
            raise
        return local

    def stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        """Ask serve() to stop (safe from a signal handler running on the loop)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake.set()

    async def serve(self) -> StopReason:
        """Serve until stopped, timed out or idle; then shut down cleanly. Returns the StopReason."""
        if not self._sockets:
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

    def _idle(self) -> bool:
        return self.idle_timeout is not None and not self._handlers and not self.busy()

    def _due(self, started: float, now: float) -> Optional[StopReason]:
        if self.timeout is not None and now - started >= self.timeout:
            return StopReason.TIMEOUT
        if self._idle() and now - self._last_active >= (self.idle_timeout or 0):
            return StopReason.IDLE
        return None

    def _next_check(self, started: float, now: float) -> float:
        waits = [3600.0]
        if self.timeout is not None:
            waits.append(started + self.timeout - now)
        if self._idle():
            waits.append(self._last_active + (self.idle_timeout or 0) - now)
        return max(0.01, min(waits))

    async def _shut_down(self, reason: StopReason) -> None:
        for accepting in self._accepting:
            accepting.cancel()
        if self._accepting:
            await asyncio.wait(self._accepting)     # none waits on a socket any more: they may close
        for _, sock in self._sockets:
            sock.close()
        for listener in self.listeners:
            listener.closed()
        handlers = set(self._handlers)
        self.say_stopping(reason)
        if handlers and reason is StopReason.TIMEOUT:
            # Planned end: let the live connections finish, within the grace period.
            _, handlers = await asyncio.wait(handlers, timeout=self.grace_period)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=self.grace_period)
        await self.close()

    def _on_connection(self, listener: Listener, conn: socket.socket, peer: Any) -> None:
        """A connection accepted (a handler slot taken for it): refused at once, or served by a task of its own."""
        self._accepted += 1
        if listener.unix_path is not None or not isinstance(peer, tuple):
            label = f'connection {self._accepted} on {listener.unix_path}'     # Unix peers have no address
        else:
            label = f'connection {self._accepted} from {peer[0]}:{peer[1]}'
        if listener.name:
            label += f' to {listener.name}'
        if self._stop_reason is not None or (
                self.max_connections is not None and len(self._handlers) >= self.max_connections):
            logger.warning('%s: refused (%s)', label, 'tunnel is stopping' if self._stop_reason
                           else self.limit_reason or f'--max-connections {self.max_connections} reached')
            conn.close()        # at once, before reading anything: the client sees its end, nothing relayed
            self._release_room()
            return
        task = asyncio.ensure_future(self._serve_connection(listener, conn, label))
        self._handlers[task] = conn
        task.add_done_callback(self._handler_done)

    async def _serve_connection(self, listener: Listener, conn: socket.socket, label: str) -> bool:
        """Whether it counts as a connection for the idle clock (see Listener.serve_socket)."""
        try:
            return await listener.serve_socket(self, conn, label)
        except asyncio.CancelledError:
            pass                # a stop: the relay closed both sides and deleted its session
        except OSError as err:
            logger.debug('%s: %s', label, err)      # the client went away
        except Exception:  # pylint: disable=broad-except
            logger.exception('%s: unexpected error', label)
        return True

    def _handler_done(self, task: 'asyncio.Task[bool]') -> None:
        # Done here, not in the handler: a task cancelled before it ran never runs its finally.
        conn = self._handlers.pop(task, None)
        if conn is not None:
            conn.close()            # not handed to a transport: closing it is ours
        self._release_room()
        if task.cancelled() or task.result():
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


def unix_listening_socket(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` (a stale socket there is replaced), mode 0600 before anyone can connect."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    return bind_unix_socket(path)


def bind_unix_socket(address: str) -> socket.socket:
    """A listening Unix socket bound at ``address`` (nothing may be there), mode 0600 before it listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
        os.chmod(address, UNIX_SOCKET_MODE)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def tcp_listening_sockets(host: str, port: int) -> List[socket.socket]:
    """Listening TCP sockets on each address ``host`` resolves to (socket.gaierror when it resolves to none), as
    asyncio's create_server binds them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_UNSPEC,
                                                         type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: List[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == 'posix':      # elsewhere SO_REUSEADDR would let another program take the port from us
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(listener: Listener, sock: socket.socket) -> Bound:
    if listener.unix_path is not None:
        return listener.unix_path, None
    address, port = sock.getsockname()[:2]
    listener.port = port
    return address, port


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
