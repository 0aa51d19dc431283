"""The connection agent's server: a private Unix socket that answers one JSON line per connection (proxy_helper's
wire) and relays each "connect" through a Bastion session of its own, minted for it and deleted when it ends. The
socket is a listener kind of the relay service (relay/tunnel.py), which accepts, keeps the limits, stops when idle or
signalled and shuts down; what is the agent's own is here: its lock, its socket's safety, its request line, its
status and the chores of its hosts.

It imports nothing from azure.cli: what a request needs (data-plane client, Target) comes from a ``hosts`` object
(agent/hosts.py builds it on azure-cli's sign-in): ``await hosts.get(request) -> (client, target)``,
``hosts.clients()``, ``hosts.refresh_tokens()``, ``await hosts.delete_orphans()`` (at start: the sessions of runs
that are gone) and ``await hosts.aclose()`` (deletes whatever session is left).
One agent per user and az configuration: an exclusive lock on ``paths.lock`` for its whole life."""

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import resource
import socket
import time
from typing import Any, Dict, List, Optional

from ..bastion_facts import MAX_PORT, is_port
from ..dataplane import DataPlaneError
from ..relay.connection import Opening, relay_connection
from ..relay.pump import LocalEnd
from ..relay.tunnel import (SPARE_HANDLERS, Listener, RelayService, StopReason, bind_unix_socket,
                            run_service)
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
    return max(4, (descriptors - DESCRIPTORS_RESERVED - SPARE_HANDLERS) // DESCRIPTORS_PER_CONNECTION)


class ConnectionAgent(Listener):  # pylint: disable=too-many-instance-attributes
    """The agent's socket as a listener kind: each connection is one request line, answered (status, stop,
    forward, stop_forward) or relayed (connect). relay_service() is the service that serves it until stopped (stop
    request, SIGTERM, SIGHUP, SIGINT) or idle for ``idle_timeout`` seconds with no live connection and no background
    forward; then every relay closes and every session is deleted (bounded by ``grace_period``)."""

    def __init__(self, paths: AgentPaths, hosts: Any, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 grace_period: float = GRACE_PERIOD, max_connections: Optional[int] = None):
        super().__init__(unix_path=paths.socket)
        self.paths = paths
        self.hosts = hosts
        self.idle_timeout = idle_timeout
        self.grace_period = grace_period
        self.max_connections = max_connections      # None: from the open-file limit when serving starts
        self.started = time.time()
        self.served = 0
        self.failed = 0
        self.live: Dict[asyncio.Task, str] = {}         # relaying connections -> target label
        self.service: Optional[RelayService] = None
        self._listener: Optional[socket.socket] = None
        self._chores: List[asyncio.Task] = []            # token refresh, orphan deletion
        self.forwards = BackgroundForwards(on_change=self._look_again)      # `forward --background`'s listeners

    # -- life ----------------------------------------------------------------------------------------------
    def relay_service(self) -> RelayService:
        """The service to serve this agent with (listen() first): at most max_connections relaying at once, and
        SPARE_HANDLERS connections more being read or answered; the rest wait in the socket's backlog."""
        if self.max_connections is None:
            self.max_connections = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self.service = _AgentService(self, self.max_connections + SPARE_HANDLERS)
        return self.service

    def _look_again(self) -> None:
        if self.service is not None:
            self.service.look_again()

    def listen(self) -> None:
        """Bind the socket (a stale one left by a crashed agent is replaced: we hold the lock), 0600."""
        with contextlib.suppress(FileNotFoundError):
            self.paths.unlink(self.paths.socket)
        old_umask = os.umask(0o177)     # 0600 from the moment the file exists (no thread runs yet to feel the umask)
        try:
            self._listener = bind_unix_socket(self.paths.address(self.paths.socket))
        finally:
            os.umask(old_umask)

    async def open_sockets(self) -> List[socket.socket]:
        if self._listener is None:
            self.listen()
        assert self._listener is not None, 'listen() binds the socket'
        return [self._listener]

    def closed(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.paths.unlink(self.paths.socket)

    def start_chores(self) -> None:
        """Once it listens: delete the sessions of runs that are gone, keep the ARM tokens fresh."""
        self._chores = [asyncio.ensure_future(self._delete_orphans()), asyncio.ensure_future(self._refresh_tokens())]

    async def aclose(self) -> None:
        """The last step of a stop, the connections ended: every background forward stops, the hosts close (every
        session deleted)."""
        for chore in self._chores:
            chore.cancel()
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
    async def serve_socket(self, service: RelayService, conn: socket.socket, label: str) -> bool:
        """Read the request, answer it or relay it (the service closes ``conn`` after, unless the relay took it).
        Only a connect counts as a connection for the idle clock; a question does not."""
        try:
            request = await self._request(conn)
            if request is None:
                return False
            if request['op'] != 'connect' or self._full():
                await asyncio.get_running_loop().sock_sendall(conn, encode(await self._answer(request)))
                if request['op'] == 'stop':
                    service.stop()
                return False
        except OSError:
            return False                    # the helper went away
        await self._connect(service, conn, request)
        return True

    async def _request(self, conn: socket.socket) -> Optional[dict]:
        """The request line on ``conn`` when it is one this agent serves, from a process of its own user; else
        None, with the refusal answered."""
        peer = peer_credentials(conn)
        if peer is not None and peer[1] != os.getuid():
            logger.warning('refused a connection from uid %d (pid %d): this agent serves uid %d only',
                           peer[1], peer[0], os.getuid())
            refusal = 'this agent serves its own user only'
        else:
            try:
                request = await asyncio.wait_for(_read_line(conn), REQUEST_TIMEOUT)
            except (ValueError, UnicodeError, asyncio.TimeoutError):
                request, refusal = None, 'not a request this agent reads'
            else:
                if request is None:
                    return None             # closed before it asked
                refusal = request_problem(request)
                if not refusal:
                    return request
        await asyncio.get_running_loop().sock_sendall(conn, encode({'ok': False, 'error': refusal}))
        return None

    def _full(self) -> bool:
        return self.max_connections is not None and len(self.live) >= self.max_connections

    async def _answer(self, request: dict) -> dict:
        """The answer to a request this agent serves that it does not relay."""
        operation = request['op']
        if operation == 'status':
            return {'ok': True, 'status': self.status()}
        if operation == 'forward':
            return await self._forward(request)
        if operation == 'stop_forward':
            return await self._stop_forward(request['forward'])
        if operation == 'stop':
            return {'ok': True, 'pid': os.getpid()}     # the service stops once this is said
        return {'ok': False, 'error': (
            f'the agent relays at most {self.max_connections} connections at once (its open-file limit); '
            'close one, or start the agent where `ulimit -n` is higher')}

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

    async def _connect(self, service: RelayService, conn: socket.socket, request: dict) -> None:
        """Mint, open the websocket, say ok (or the one-line reason), relay, delete the session."""
        label = target_label(request)
        task = asyncio.current_task()
        assert task is not None, 'a connection is served by a task'
        self.live[task] = label
        try:
            try:
                local = await service.local_end(conn)
            except OSError:
                return                      # the helper went away
            try:
                client, target = await self.hosts.get(request)
            except Exception as err:  # pylint: disable=broad-except
                _AgentOpening(self).failed(local, err)
                logger.warning('%s: %s', label, describe_failure(err))
                return
            await relay_connection(client, target, local, label, opening=_AgentOpening(self))
        finally:
            del self.live[task]

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


async def _read_line(conn: socket.socket) -> Optional[dict]:
    """The request line (ValueError when more follows it); None when the client closed before a whole line."""
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


class _AgentService(RelayService):
    """The relay service over the agent's socket: its background forwards keep it from being idle, its chores start
    once it listens, and its end stops the forwards and closes the hosts."""

    def __init__(self, agent: ConnectionAgent, max_handlers: int):
        super().__init__(agent.hosts, [agent], idle_timeout=agent.idle_timeout, grace_period=agent.grace_period,
                         max_handlers=max_handlers)
        self.agent = agent

    def busy(self) -> bool:
        return self.agent.forwards.running

    def on_listening(self) -> None:
        self.agent.start_chores()

    def say_stopping(self, reason: StopReason) -> None:
        logger.info('agent stopping (%s) with %d live connection(s)', reason.value, len(self.agent.live))

    async def close(self) -> None:
        await self.agent.aclose()


def run_agent(agent: ConnectionAgent) -> str:
    """Take the lock, listen, serve until stopped: the agent's whole life on a fresh event loop; why it stopped."""
    for note in agent.paths.notes:
        logger.debug('%s', note)
    raise_descriptor_limit()
    with agent_lock(agent.paths):
        agent.listen()
        return run_service(agent.relay_service()).value
