"""A small asyncio HTTPS/1.1 client with keep-alive for the data plane's mint and delete calls: kept-alive TLS
connections per host, reused for every call (no thread hop, no new handshake per session). exchange.py (h11) does
the HTTP; this moves bytes. Used for direct connections; through a proxy the client uses requests (which speaks
CONNECT)."""

import asyncio
import collections
import logging
import ssl
import time
from typing import DefaultDict, List, Optional
from urllib.parse import urlsplit

from .errors import AnswerLostError, NotSentError
from .exchange import ClientConnection, HttpProtocolError
from .protocol import HttpAnswer, HttpRequest
from .redact import redact_text

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
IDEMPOTENT_METHODS = frozenset({'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'})
# A server may close a kept-alive connection just as a request goes out on it, and then nobody can tell whether
# it read the request. Sent again that is harmless for an idempotent call; for a POST (a mint) it is not, so a
# POST only goes on a connection that was idle for less than this (servers keep idle connections far longer).
POST_REUSE_IDLE = 4.0


class _Wire(asyncio.Protocol):  # pylint: disable=too-many-instance-attributes
    """One connection's bytes, plus its HTTP state. Nothing may arrive between exchanges: bytes after an answer or
    the server's close spoil the connection (it is dropped, never reused)."""

    def __init__(self, user_agent: str):
        self.http = ClientConnection(user_agent)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.busy = False
        self.spoiled = False
        self.idle_since = time.monotonic()
        self._buffer = bytearray()
        self._eof = False
        self._paused = False
        self._waiter: 'Optional[asyncio.Future[None]]' = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # create_connection: a Transport

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.spoiled = True
            self.transport.abort()
            return
        self._buffer += data
        if len(self._buffer) >= READ_SIZE and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self.spoiled = True
        self._wake()
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._eof = True
        self.spoiled = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """What has arrived (waiting for something), or b'' once the server has closed its side."""
        while not self._buffer and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and not self._eof:
            self._paused = False
            self.transport.resume_reading()
        return data

    def usable(self, max_idle: Optional[float]) -> bool:
        if self.spoiled or self._buffer or self.transport is None or self.transport.is_closing():
            return False
        return max_idle is None or time.monotonic() - self.idle_since < max_idle


class _NothingCameBack(Exception):
    """The server closed the connection without a byte of answer."""


class KeepAliveHttps:
    """``await send(request)`` -> HttpAnswer. At most ``max_connections`` calls at once (the rest wait), at most
    that many idle connections kept per host. Failures raise NotSentError (no connection: nothing was sent) or
    AnswerLostError (sent, no complete answer), naming the host and the failure's kind only (never the URL: a
    DELETE's path holds the auth token). Only an idempotent request is sent again, and only when a reused
    connection turned out closed before any answer."""

    def __init__(self, ssl_context: Optional[ssl.SSLContext], connect_timeout: float = 10.0,
                 read_timeout: float = 30.0, max_connections: int = 8, user_agent: str = 'bastion-native'):
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._user_agent = user_agent
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: DefaultDict[str, List[_Wire]] = collections.defaultdict(list)

    async def send(self, request: HttpRequest) -> HttpAnswer:
        netloc = urlsplit(request.url).netloc
        idempotent = request.method in IDEMPOTENT_METHODS
        async with self._slots:
            while True:
                wire = self._take_idle(netloc, None if idempotent else POST_REUSE_IDLE)
                reused = wire is not None
                if wire is None:
                    wire = await self._open(netloc)
                try:
                    answer = await asyncio.wait_for(self._exchange(wire, request), self._read_timeout)
                except _NothingCameBack:
                    wire.transport.abort()
                    if reused and idempotent:
                        continue            # the server had closed the idle connection: the same call, afresh
                    raise AnswerLostError(f'{netloc} closed the connection without answering.') from None
                except (OSError, asyncio.TimeoutError, HttpProtocolError, ssl.SSLError) as err:
                    wire.transport.abort()
                    raise AnswerLostError(f'No complete answer from the Bastion data plane at {netloc} '
                                          f'({type(err).__name__}).') from None
                except BaseException:
                    wire.transport.abort()     # cancelled mid-exchange (or a request we cannot send): unusable
                    raise
                # One line per call, as urllib3 logs them, the token in a DELETE's path redacted.
                logger.debug('%s %s HTTP/1.1 -> %d (%s connection)', request.method,
                             redact_text(urlsplit(request.url).path), answer.status, 'reused' if reused else 'new')
                self._release(netloc, wire)
                return answer

    def close(self) -> None:
        for wires in self._idle.values():
            for wire in wires:
                wire.transport.close()
        self._idle.clear()

    def _take_idle(self, netloc: str, max_idle: Optional[float]) -> Optional[_Wire]:
        wires = self._idle.get(netloc)
        while wires:
            wire = wires.pop()
            if wire.usable(max_idle):
                return wire
            wire.transport.abort()
        return None

    def _release(self, netloc: str, wire: _Wire) -> None:
        wire.busy = False
        wire.idle_since = time.monotonic()
        if wire.http.reusable and wire.usable(None) and len(self._idle[netloc]) < self._max_connections:
            self._idle[netloc].append(wire)
        else:
            wire.transport.close()

    async def _open(self, netloc: str) -> _Wire:
        host, _, port = netloc.rpartition(':') if ':' in netloc else (netloc, '', '443')
        loop = asyncio.get_running_loop()
        try:
            _, wire = await asyncio.wait_for(loop.create_connection(
                lambda: _Wire(self._user_agent), host, int(port or 443), ssl=self._ssl,
                server_hostname=host if self._ssl else None), self._connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ValueError) as err:
            raise NotSentError(f'Could not reach the Bastion data plane at {netloc} '
                               f'({type(err).__name__}).') from None
        return wire

    @staticmethod
    async def _exchange(wire: _Wire, request: HttpRequest) -> HttpAnswer:
        payload = wire.http.send(request)
        wire.busy = True
        wire.transport.write(payload)
        while True:
            data = await wire.read()
            if not data and not wire.http.started:
                raise _NothingCameBack()
            answer = wire.http.receive(data)
            if answer is not None:
                return answer
