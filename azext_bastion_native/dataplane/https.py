# --------------------------------------------------------------------------------------------
# The data plane's HTTPS calls on the event loop: kept-alive TLS connections per host, reused for every
# mint and delete (no thread hop, no new handshake per session). http11.py does the HTTP; this moves bytes.
# Used for direct connections; through a proxy the client keeps using requests (which speaks CONNECT).
# --------------------------------------------------------------------------------------------
"""A small asyncio HTTPS/1.1 client with keep-alive, for the data plane's mint and delete calls."""

import asyncio
import collections
import logging
import ssl
from typing import Optional
from urllib.parse import urlsplit

from .errors import SessionUnavailableError
from .http11 import HttpProtocolError, ResponseParser, encode_request
from .protocol import HttpAnswer, HttpRequest
from .redact import redact_text

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024


class KeepAliveHttps:
    """``await send(request)`` -> HttpAnswer. At most ``max_connections`` calls at once (the rest wait), at most
    that many idle connections kept per host. Network and protocol failures raise SessionUnavailableError naming
    the host and the failure's kind only (never the URL: a DELETE's path holds the auth token)."""

    def __init__(self, ssl_context: Optional[ssl.SSLContext], connect_timeout: float = 10.0,
                 read_timeout: float = 30.0, max_connections: int = 8):
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle = collections.defaultdict(list)      # netloc -> [(reader, writer)]

    async def send(self, request: HttpRequest) -> HttpAnswer:
        netloc = urlsplit(request.url).netloc
        payload = encode_request(request)
        async with self._slots:
            while True:
                stream, reused = self._take_idle(netloc), True
                if stream is None:
                    stream, reused = await self._open(netloc), False
                try:
                    answer, keep_alive = await asyncio.wait_for(self._exchange(stream, payload, request.method),
                                                                self._read_timeout)
                except _StaleConnection:
                    stream[1].transport.abort()
                    if reused:
                        continue            # the server closed an idle connection before reading: try afresh
                    raise SessionUnavailableError(f'{netloc} closed the connection without answering.') from None
                except (OSError, asyncio.TimeoutError, HttpProtocolError, ssl.SSLError) as err:
                    stream[1].transport.abort()
                    raise SessionUnavailableError(f'Could not reach the Bastion data plane at {netloc} '
                                                  f'({type(err).__name__}).') from None
                except BaseException:
                    stream[1].transport.abort()     # cancelled mid-exchange: the connection is unusable
                    raise
                # One line per call, as urllib3 logs them, the token in a DELETE's path redacted.
                logger.debug('%s %s HTTP/1.1 -> %d (%s connection)', request.method,
                             redact_text(urlsplit(request.url).path), answer.status, 'reused' if reused else 'new')
                if keep_alive and len(self._idle[netloc]) < self._max_connections:
                    self._idle[netloc].append(stream)
                else:
                    stream[1].close()
                return answer

    def close(self):
        for streams in self._idle.values():
            for _, writer in streams:
                writer.close()
        self._idle.clear()

    def _take_idle(self, netloc):
        streams = self._idle.get(netloc)
        while streams:
            reader, writer = streams.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.transport.abort()
        return None

    async def _open(self, netloc):
        host, _, port = netloc.rpartition(':') if ':' in netloc else (netloc, '', '443')
        try:
            return await asyncio.wait_for(asyncio.open_connection(
                host, int(port or 443), ssl=self._ssl, server_hostname=host if self._ssl else None,
                limit=READ_SIZE), self._connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ValueError) as err:
            raise SessionUnavailableError(f'Could not reach the Bastion data plane at {netloc} '
                                          f'({type(err).__name__}).') from None

    @staticmethod
    async def _exchange(stream, payload, method):
        reader, writer = stream
        try:
            writer.write(payload)
            await writer.drain()
            data = await reader.read(READ_SIZE)
        except OSError:
            data = b''
        if not data:                # nothing at all came back: the connection was dead before our request
            raise _StaleConnection()
        parser = ResponseParser(method)
        while True:
            if not data:
                return parser.feed_eof(), False
            answer = parser.feed(data)
            if answer is not None:
                return answer, parser.keep_alive
            data = await reader.read(READ_SIZE)


class _StaleConnection(Exception):
    """EOF before any byte of the answer."""
