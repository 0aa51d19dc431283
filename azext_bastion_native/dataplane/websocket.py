"""Open a Bastion tunnel websocket: websockets' sans-I/O ClientProtocol does the opening handshake over a TLS
connection of ours (tls.py) - a warm one (warm.py), a fresh one, or one through an HTTP(S) proxy's CONNECT tunnel
(websockets' own connect_http_proxy, then TLS to Bastion inside it, as websockets' client does it). The result is
the TCP transport with reading paused, its TLS session and the protocol, open: the relay takes them over and moves
bytes from the transport's callbacks, with no task, queue or future per message."""

import asyncio
import logging
import ssl
import threading
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple, Union

from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.http11 import Request
from websockets.uri import WebSocketURI, parse_uri

from .tls import HANDSHAKE_READ, TlsConnection, TlsSession, connect_tls, start_tls


@dataclass
class OpenedWebsocket:
    """An open websocket: the TCP ``transport`` (reading paused until the relay takes it over), its ``tls``
    session, the ``protocol`` (open), what arrived after the handshake answer in the same reads (``early``: the
    server's first frames, as bytes, not yet parsed), the largest message to accept (``max_size``) and the seconds
    a closing handshake may take before the connection is cut (``close_timeout``). ``lost`` is set when the
    connection ended before the relay took it over."""
    transport: asyncio.Transport
    tls: TlsSession
    protocol: ClientProtocol
    close_timeout: float = 5.0
    max_size: Optional[int] = None
    early: bytearray = field(default_factory=bytearray)
    lost: bool = False

    @property
    def ssl_object(self) -> Optional[ssl.SSLObject]:
        return self.tls.ssl_object


_per_thread = threading.local()


def _handshake_buffers() -> Tuple[memoryview, memoryview]:
    """The read and plaintext buffers of this thread's handshakes: one event loop per thread, and each read is used
    up in the callback that made it (a burst of 128 upgrades cost 0.02 MiB per connection more with buffers of
    their own)."""
    buffers = getattr(_per_thread, 'handshake_buffers', None)
    if buffers is None:
        buffers = _per_thread.handshake_buffers = (memoryview(bytearray(HANDSHAKE_READ)),
                                                   memoryview(bytearray(HANDSHAKE_READ)))
    return buffers


class _Handshake(asyncio.BufferedProtocol):
    """The transport's protocol from the upgrade request until the relay takes over. websockets parses the answer's
    head; when it opened the websocket, what follows the head is kept, unparsed, for the relay's own frame reader
    (relay/frames.py), so that websockets' parser and that reader never each hold part of one frame. Reads are
    HANDSHAKE_READ bytes: what comes with the answer is at most that (a server that sends at once, in a burst of
    hundreds of connections, would otherwise leave up to a transport's read, a quarter MiB, in each)."""

    def __init__(self, protocol: ClientProtocol, request: Request, connection: TlsConnection, close_timeout: float,
                 max_size: Optional[int]):
        self.protocol = protocol
        self.opened: 'asyncio.Future[OpenedWebsocket]' = asyncio.get_running_loop().create_future()
        self.websocket = OpenedWebsocket(connection.transport, connection.tls, protocol, close_timeout, max_size)
        self._read, self._buffer = _handshake_buffers()
        self._head_end = b''        # the last bytes of the head so far, to find its end across pieces
        self._in_head = True
        connection.transport.set_protocol(self)
        protocol.send_request(request)
        connection.tls.send(connection.transport, protocol.data_to_send())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read[:nbytes])

    def data_received(self, data: Union[bytes, memoryview]) -> None:
        try:
            self.websocket.tls.receive(data, self._buffer, self._plaintext_received)
        except ssl.SSLError as err:
            self._fail(err)
            return
        if self.websocket.tls.closed:
            self.eof_received()
        else:
            self._progress()

    def _frames(self) -> bool:
        """The websocket is open: what arrives now is the relay's, EOF included (after the frames before it)."""
        return not self._in_head and self.protocol.state is State.OPEN

    def _plaintext_received(self, data: memoryview) -> None:
        if not self._in_head:
            if self._frames():
                self.websocket.early += data
            else:
                self.protocol.receive_data(bytes(data))     # an error answer's body
            return
        window = self._head_end + bytes(data)
        end = window.find(b'\r\n\r\n')
        if end < 0:
            self._head_end = window[-3:]
            self.protocol.receive_data(bytes(data))
            return
        head_size = end + 4 - len(self._head_end)       # bytes of ``data`` that end the head
        self._in_head = False
        self.protocol.receive_data(bytes(data[:head_size]))
        if head_size < len(data):
            self._plaintext_received(data[head_size:])

    def eof_received(self) -> None:
        if not self._frames():      # else the relay reads the early frames first, then sees the connection lost
            self.protocol.receive_eof()
        self._progress()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.websocket.lost = True
        if not self.opened.done():
            if not self._frames():
                self.protocol.receive_eof()
            self._progress()
            self._fail(ConnectionResetError('the connection closed during the websocket upgrade'))

    def _fail(self, err: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(err)
        self.websocket.transport.abort()

    def _progress(self) -> None:
        self.protocol.events_received()     # the answer is read from the protocol itself; frames are in ``early``
        if self.opened.done():
            return
        if self.protocol.handshake_exc is not None:
            self._fail(self.protocol.handshake_exc)
        elif self.protocol.state is State.OPEN:
            self.websocket.transport.pause_reading()
            self.opened.set_result(self.websocket)
        elif self.protocol.state is not State.CONNECTING:
            self._fail(ConnectionResetError('the server closed the websocket during the upgrade'))


async def open_websocket(url: str, *, ssl_context: Optional[ssl.SSLContext], warm: Optional[TlsConnection] = None,
                         proxy: Optional[str] = None, proxy_ssl: Optional[ssl.SSLContext] = None,
                         headers: Optional[Mapping[str, str]] = None, max_size: Optional[int] = 4 * 1024 * 1024,
                         open_timeout: float = 15.0, close_timeout: float = 5.0,
                         logger: Union[logging.Logger, 'logging.LoggerAdapter[logging.Logger]', None] = None,
                         ) -> OpenedWebsocket:
    """Open the websocket at ``url`` (binary frames, no extensions) over ``warm`` (an idle TLS connection to its
    host) when given, else through ``proxy`` (http:// or https://; ``proxy_ssl`` for the latter) or directly.

    Raises websockets' InvalidStatus / InvalidHandshake / InvalidProxy errors, ssl.SSLError, OSError or
    asyncio.TimeoutError."""
    ws_uri = parse_uri(url)
    protocol = ClientProtocol(ws_uri, max_size=max_size, logger=logger)
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    tls = ssl_context if ws_uri.secure else None
    return await asyncio.wait_for(_open(protocol, request, close_timeout, max_size, ws_uri, tls, warm, proxy,
                                        proxy_ssl), open_timeout)


async def _open(protocol: ClientProtocol, request: Request, close_timeout: float, max_size: Optional[int],
                ws_uri: WebSocketURI, tls: Optional[ssl.SSLContext], warm: Optional[TlsConnection],
                proxy: Optional[str], proxy_ssl: Optional[ssl.SSLContext]
                ) -> OpenedWebsocket:  # pylint: disable=too-many-arguments
    if warm is not None and warm.usable(float('inf')):
        connection = warm
    elif proxy:
        from websockets.asyncio.client import connect_http_proxy
        from websockets.proxy import parse_proxy
        parsed = parse_proxy(proxy)
        tunnel = await connect_http_proxy(parsed, ws_uri, user_agent_header=None,
                                          **({'ssl': proxy_ssl or True} if parsed.scheme == 'https' else {}))
        connection = await start_tls(tunnel, tls, ws_uri.host)
    else:
        connection = await connect_tls(ws_uri.host, ws_uri.port, tls)
    try:
        return await _Handshake(protocol, request, connection, close_timeout, max_size).opened
    except BaseException:
        connection.transport.abort()
        raise
