"""The connection agent's server: a private Unix socket that answers one JSON line per connection (proxy_helper's
wire) and relays each "connect" through a Bastion session of its own, minted for it and deleted when it ends.

It imports nothing from azure.cli: what a request needs (data-plane client, Target) comes from a ``hosts`` object
(agent/hosts.py builds it on azure-cli's sign-in): ``await hosts.get(request) -> (client, target)``,
``hosts.clients()``, ``hosts.refresh_tokens()``, ``await hosts.delete_orphans()`` (at start: the sessions of runs
that are gone) and ``await hosts.aclose()`` (deletes whatever session is left).
One agent per user and az configuration: an exclusive lock on ``paths.lock`` for its whole life."""

import asyncio
import collections
import contextlib
import errno
import fcntl
import logging
import os
import resource
import socket
import time
from typing import Any, Dict, Optional, Set

from ..bastion_facts import MAX_PORT, is_port
from ..dataplane import DataPlaneError
from ..relay import event_loop
from ..relay.connection import Opening, relay_connection
from ..relay.pump import LocalEnd, ReadBuffer
from ..relay.tunnel import BACKLOG, UNIX_SOCKET_MODE, release_freed_memory, stopped_by_signals
from .forwards import BackgroundForwards, forward_problem
from .proxy_helper import (MAX_LINE, PROTOCOL_VERSION, AgentPaths, AgentUnavailable, connect_agent, encode,
                           peer_credentials, split_line)

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 15 * 60.0    # seconds without a live connection before the agent exits
REQUEST_TIMEOUT = 10.0              # seconds for a client to send its request line
GRACE_PERIOD = 10.0                 # on exit: seconds for relays to close and sessions to be deleted
TOKEN_REFRESH_INTERVAL = 60.0       # seconds between looks at the ARM tokens (refreshed ahead of expiry)
LOCK_WAIT = 30.0                    # seconds to wait for an agent that is shutting down to let go of the lock
DESCRIPTORS_RESERVED = 48           # for everything but connections: log, locks, loop, ARM and data-plane HTTPS
DESCRIPTORS_PER_CONNECTION = 3      # a relayed connection: its Unix socket, its websocket, the next warm TLS
CONTROL_HANDLERS = 16               # connections being read or answered beyond the relaying ones
ACCEPT_BACKOFF = (0.05, 2.0)        # seconds to wait after a failed accept: first, at most (doubling)
ACCEPT_ERRORS = {errno.EMFILE: 'EMFILE', errno.ENFILE: 'ENFILE', errno.ECONNABORTED: 'ECONNABORTED',
                 errno.ENOBUFS: 'ENOBUFS', errno.ENOMEM: 'ENOMEM'}


class AlreadyRunning(Exception):
    """Another agent holds the lock and answers on the socket."""


@contextlib.contextmanager
def agent_lock(paths: AgentPaths, wait: float = LOCK_WAIT):
    """The one-agent lock: taken at once, or after an agent that no longer answers (shutting down) lets go."""
    descriptor = paths.open(paths.lock, os.O_WRONLY | os.O_CREAT)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if _answers(paths):
                    raise AlreadyRunning(paths.socket) from None
                if time.monotonic() > deadline:
                    raise AlreadyRunning(paths.socket) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(descriptor)


def _answers(paths: AgentPaths) -> bool:
    try:
        connect_agent(paths, timeout=1.0).close()
        return True
    except (OSError, AgentUnavailable):
        return False


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (a shell's `ulimit -n` default is often 1024 of a far
    higher hard limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limit(descriptors: int) -> int:
    """How many connections may relay at once within ``descriptors`` open files (at least a few)."""
    return max(4, (descriptors - DESCRIPTORS_RESERVED - CONTROL_HANDLERS) // DESCRIPTORS_PER_CONNECTION)


class ConnectionAgent:  # pylint: disable=too-many-instance-attributes
    """Serve ``paths.socket`` until stopped (stop request, SIGTERM, SIGHUP, SIGINT) or idle for ``idle_timeout``
    seconds with no live connection; then close every relay and delete every session (bounded)."""

    def __init__(self, paths: AgentPaths, hosts: Any, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 grace_period: float = GRACE_PERIOD, max_connections: Optional[int] = None):
        self.paths = paths
        self.hosts = hosts
        self.idle_timeout = idle_timeout
        self.grace_period = grace_period
        self.max_connections = max_connections      # None: from the open-file limit when serving starts
        self.started = time.time()
        self.served = 0
        self.failed = 0
        self.live: Dict[asyncio.Task, str] = {}         # relaying connections -> target label
        self._handlers: Set[asyncio.Task] = set()       # every accepted connection being handled
        self._read_buffer = ReadBuffer()
        self._listener: Optional[socket.socket] = None
        self._stop_reason: Optional[str] = None
        self._wake: Optional[asyncio.Event] = None
        self._room: Optional[asyncio.Semaphore] = None   # handler slots, taken before each accept
        self._last_active = time.monotonic()
        self.forwards = BackgroundForwards(on_change=self._wake_up)     # `forward --background`'s listeners

    # -- life ----------------------------------------------------------------------------------------------
    def stop(self, reason: str = 'stopped') -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def listen(self) -> None:
        """Bind the socket (a stale one left by a crashed agent is replaced: we hold the lock), 0600."""
        with contextlib.suppress(FileNotFoundError):
            self.paths.unlink(self.paths.socket)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = self.paths.address(self.paths.socket)
        old_umask = os.umask(0o177)
        try:
            listener.bind(address)
        finally:
            os.umask(old_umask)
        os.chmod(address, UNIX_SOCKET_MODE)
        listener.listen(BACKLOG)
        listener.setblocking(False)
        self._listener = listener

    async def serve(self) -> str:
        """Accept until a stop; returns why it stopped. listen() first."""
        self._wake = asyncio.Event()
        with stopped_by_signals(lambda reason: self.stop(reason.value)):
            accepting = asyncio.ensure_future(self._accept_loop())
            refreshing = asyncio.ensure_future(self._refresh_tokens())
            cleaning = asyncio.ensure_future(self._delete_orphans())
            try:
                while self._stop_reason is None:
                    self._wake.clear()
                    timeout = self._idle_check()
                    if self._stop_reason is not None:
                        break
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
            finally:
                for task in (accepting, refreshing, cleaning):
                    task.cancel()
                await self._shut_down()
        return self._stop_reason or 'stopped'

    def _idle_check(self) -> float:
        """Stop when idle too long; else the seconds until the next look."""
        if self.live or self._handlers or self.forwards.running:
            return 3600.0
        idle_for = time.monotonic() - self._last_active
        if idle_for >= self.idle_timeout:
            self.stop('idle')
        return max(0.05, self.idle_timeout - idle_for)

    async def _shut_down(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.paths.unlink(self.paths.socket)
        handlers = set(self._handlers)
        logger.info('agent stopping (%s) with %d live connection(s)', self._stop_reason, len(self.live))
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=self.grace_period)
        await self.forwards.stop_all(self.grace_period)
        await self.hosts.aclose(timeout=self.grace_period)

    async def _delete_orphans(self) -> None:
        delete_orphans = getattr(self.hosts, 'delete_orphans', None)
        if delete_orphans is not None:
            try:
                await delete_orphans()
            except Exception as err:  # pylint: disable=broad-except
                logger.warning('could not delete the sessions left by runs that are gone: %s', describe_failure(err))

    async def _refresh_tokens(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TOKEN_REFRESH_INTERVAL)
            try:
                await loop.run_in_executor(None, self.hosts.refresh_tokens)
            except Exception as err:  # pylint: disable=broad-except
                logger.warning('could not refresh the ARM token: %s', type(err).__name__)

    # -- connections ---------------------------------------------------------------------------------------
    async def _accept_loop(self) -> None:
        """Accept for as long as the agent runs: at most max_connections + CONTROL_HANDLERS handled at once (the
        rest wait in the backlog); a failed accept (out of descriptors, a connection aborted) is logged and tried
        again after a pause, never the end of accepting."""
        loop = asyncio.get_running_loop()
        if self.max_connections is None:
            self.max_connections = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        room = self._room = asyncio.Semaphore(self.max_connections + CONTROL_HANDLERS)
        backoff = 0.0
        listener = self._listener
        assert listener is not None, 'accepting before listening'
        while True:
            await room.acquire()
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as err:
                room.release()
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
            task = asyncio.ensure_future(self._handle(conn))
            self._handlers.add(task)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task) -> None:
        self._handlers.discard(task)
        if self._room is not None:
            self._room.release()
        if self.live.pop(task, None) is not None:   # only connections count: status/stop questions keep no one alive
            self._last_active = time.monotonic()
        if self._wake is not None:
            self._wake.set()

    async def _read_request(self, conn: socket.socket) -> Optional[dict]:
        loop = asyncio.get_running_loop()
        data = b''
        while True:
            request, rest = split_line(data)
            if request is not None:
                if rest:
                    raise ValueError('bytes after the request line')
                return request
            chunk = await loop.sock_recv(conn, MAX_LINE)
            if not chunk:
                return None
            data += chunk

    async def _handle(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        handed_over = False
        try:
            peer = peer_credentials(conn)
            if peer is not None and peer[1] != os.getuid():
                logger.warning('refused a connection from uid %d (pid %d): this agent serves uid %d only',
                               peer[1], peer[0], os.getuid())
                await loop.sock_sendall(conn, encode({'ok': False, 'error': 'this agent serves its own user only'}))
                return
            try:
                request = await asyncio.wait_for(self._read_request(conn), REQUEST_TIMEOUT)
            except (ValueError, UnicodeError, asyncio.TimeoutError):
                await loop.sock_sendall(conn, encode({'ok': False, 'error': 'not a request this agent reads'}))
                return
            if request is None:
                return
            problem = request_problem(request)
            if problem:
                await loop.sock_sendall(conn, encode({'ok': False, 'error': problem}))
                return
            operation = request['op']
            if operation == 'status':
                await loop.sock_sendall(conn, encode({'ok': True, 'status': self.status()}))
            elif operation == 'stop':
                await loop.sock_sendall(conn, encode({'ok': True, 'pid': os.getpid()}))
                self.stop('stopped')
            elif operation == 'forward':
                await loop.sock_sendall(conn, encode(await self._forward(request)))
            elif operation == 'stop_forward':
                await loop.sock_sendall(conn, encode(await self._stop_forward(request['forward'])))
            elif self.max_connections is not None and len(self.live) >= self.max_connections:
                await loop.sock_sendall(conn, encode({'ok': False, 'error': (
                    f'the agent relays at most {self.max_connections} connections at once (its open-file limit); '
                    'close one, or start the agent where `ulimit -n` is higher')}))
            else:
                handed_over = True
                await self._connect(conn, request)
        except OSError:
            pass                            # the helper went away
        finally:
            if not handed_over:
                conn.close()

    async def _forward(self, request: dict) -> dict:
        """`forward --background`: plan, listen (hosts.forward) and serve it; the answer is its ready line."""
        try:
            service, ready = await self.hosts.forward(request)
        except Exception as err:  # pylint: disable=broad-except
            logger.warning('forward refused: %s', escaped(describe_failure(err), 600))
            return {'ok': False, 'error': describe_failure(err)}
        return {'ok': True, 'pid': os.getpid(), **self.forwards.start(service, ready)}

    async def _stop_forward(self, number: int) -> dict:
        """`agent stop --forward ID`: that forward stops (its sessions deleted) and the agent goes on; the answer is
        its ready line and whether it ended within the grace period."""
        stopped = await self.forwards.stop_one(number, self.grace_period)
        if stopped is None:
            return {'ok': False, 'unknown': True, 'error': f'no background forward has id {number}'}
        ready, ended = stopped
        return {'ok': True, 'pid': os.getpid(), **ready, 'stopped': ended}

    async def _connect(self, conn: socket.socket, request: dict) -> None:
        """Mint, open the websocket, say ok (or the one-line reason), relay, delete the session."""
        loop = asyncio.get_running_loop()
        label = target_label(request)
        task = asyncio.current_task()
        assert task is not None, 'a connection is served by a task'
        self.live[task] = label
        try:
            _, local = await loop.connect_accepted_socket(lambda: LocalEnd(read_buffer=self._read_buffer), conn)
        except OSError:
            conn.close()
            return
        try:
            client, target = await self.hosts.get(request)
        except Exception as err:  # pylint: disable=broad-except
            _AgentOpening(self).failed(local, err)
            logger.warning('%s: %s', label, describe_failure(err))
            return
        try:
            await relay_connection(client, target, local, label, opening=_AgentOpening(self))
        finally:
            asyncio.get_running_loop().call_later(1.0, release_freed_memory)

    def status(self) -> dict:
        per_target = collections.Counter(self.live.values())
        return {
            'pid': os.getpid(),
            'socket': self.paths.socket,
            'log': self.paths.log,
            'startedAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.started)),
            'uptimeSeconds': round(time.time() - self.started, 1),
            'idleTimeoutSeconds': self.idle_timeout,
            'liveConnections': sum(per_target.values()),
            'connectionsPerTarget': dict(sorted(per_target.items())),
            'sessionsOpen': sum(len(client.live_sessions) for client in self.hosts.clients()),
            'maxConnections': self.max_connections,
            'connectionsServed': self.served,
            'connectionsFailed': self.failed,
            'forwards': self.forwards.status(),
        }


class _AgentOpening(Opening):
    """The helper's answer line once the session is open ({"ok": true}, then the relay), or why not."""

    def __init__(self, agent: ConnectionAgent):
        self.agent = agent

    def opened(self, local: LocalEnd) -> None:
        self.agent.served += 1
        local.write(encode({'ok': True}))

    def failed(self, local: LocalEnd, error: BaseException) -> None:
        self.agent.failed += 1
        local.write(encode({'ok': False, 'error': describe_failure(error)}))
        local.close()


STRING_FIELDS = (('resource_group', 90), ('name', 80), ('target', 1024))     # connect: field, longest


def request_problem(request: dict) -> str:
    """Why ``request`` is not one this agent serves, in words for the user; empty when it is."""
    if request.get('v') != PROTOCOL_VERSION:
        return (f"this agent speaks version {PROTOCOL_VERSION}; stop it with `az network bastion agent stop` and "
                "connect again")
    operation = request.get('op')
    if operation not in ('status', 'stop', 'stop_forward', 'connect', 'forward'):
        return f"'op' must be status, stop, stop_forward, connect or forward, not {_shown(operation)}"
    if operation == 'forward':
        return forward_problem(request, _is_text, _shown)
    number = request.get('forward')
    if operation == 'stop_forward' and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
        return f"'forward' must be a forward's id (a whole number from 1), not {_shown(number)}"
    return _connect_problem(request) if operation == 'connect' else ''


def _connect_problem(request: dict) -> str:
    for field, longest in STRING_FIELDS:
        value = request.get(field)
        if not _is_text(value, longest):
            return f"'{field}' must be text of 1 to {longest} printable characters, not {_shown(value)}"
    port, subscription = request.get('port'), request.get('subscription')
    problems = (
        (not request['target'].startswith('/'), "'target' must be a resource id (/subscriptions/...)"),
        (not isinstance(port, int) or isinstance(port, bool) or not is_port(port),
         f"'port' must be a whole number from 1 to {MAX_PORT}, not {_shown(port)}"),
        (subscription is not None and not _is_text(subscription, 128),
         f"'subscription' must be absent or a subscription id, not {_shown(subscription)}"))
    return next((message for wrong, message in problems if wrong), '')


def _is_text(value: Any, longest: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest and value.isprintable()


def _shown(value: Any) -> str:
    """A value from a request as the user can read it in one line: its JSON type, and itself when short text."""
    if isinstance(value, str):
        return escaped(repr(value), 40) if len(value) <= 40 else f'text of {len(value)} characters'
    kinds = {type(None): 'null', bool: 'true/false', int: 'a number', float: 'a number', list: 'a list',
             dict: 'an object'}
    return kinds.get(type(value), type(value).__name__)


def escaped(text: str, longest: int = 120) -> str:
    """``text`` for a log line: control and other unprintable characters as escapes, cut at ``longest``."""
    text = ''.join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= longest else text[:longest - 3] + '...'


def target_label(request: dict) -> str:
    target = str(request.get('target') or '?')
    return escaped(f"{target.rstrip('/').rsplit('/', 1)[-1]}:{request.get('port')}")


def describe_failure(err: BaseException) -> str:
    """One line for the ssh user: a data-plane refusal's own (redacted) words, or a CLI error's message with its
    recommendation; never a traceback."""
    if isinstance(err, DataPlaneError):
        return str(err)
    message = str(err) or type(err).__name__
    recommendations = getattr(err, 'recommendations', None) or []
    recommendation = getattr(err, 'recommendation', None)
    extra = ' '.join(str(item) for item in ([recommendation] if recommendation else recommendations))
    return ' '.join(f'{message} {extra}'.split())


def run_agent(agent: ConnectionAgent) -> str:
    """Take the lock, listen, serve until stopped: the agent's whole life on a fresh event loop."""
    for note in agent.paths.notes:
        logger.debug('%s', note)
    raise_descriptor_limit()
    with agent_lock(agent.paths):
        agent.listen()
        return event_loop.run(agent.serve())
