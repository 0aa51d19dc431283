"""Open a Bastion tunnel websocket: websockets' sans-I/O ClientProtocol does the opening handshake over a TLS
connection of ours (tls.py) - a warm one (warm.py), a fresh one, or one through an HTTP(S) proxy's CONNECT tunnel
(websockets' own connect_http_proxy, then TLS to Bastion inside it, as websockets' client does it). The result is
the TCP transport with reading paused, its TLS session and the protocol, open: the relay takes them over and moves
bytes from the transport's callbacks, with no task, queue or future per message."""

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Union

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.http11 import Request
from websockets.uri import WebSocketURI, parse_uri

from .tls import HANDSHAKE_READ, TlsConnection, TlsSession, connect_tls, start_tls


@dataclass
class OpenedWebsocket:
    """An open websocket: the TCP ``transport`` (reading paused until the relay takes it over), its ``tls``
    session, the ``protocol`` (open, or already closing when the server closed at once), the ``frames`` that
    arrived with the handshake answer, and the seconds a closing handshake may take before the connection is cut
    (``close_timeout``). ``lost`` is set when the connection ended before the relay took it over."""
    transport: asyncio.Transport
    tls: TlsSession
    protocol: ClientProtocol
    close_timeout: float = 5.0
    frames: List[Frame] = field(default_factory=list)
    lost: bool = False

    @property
    def ssl_object(self) -> Optional[ssl.SSLObject]:
        return self.tls.ssl_object


class _Handshake(asyncio.Protocol):
    """The transport's protocol from the upgrade request until the relay takes over."""

    def __init__(self, protocol: ClientProtocol, request: Request, connection: TlsConnection, close_timeout: float):
        self.protocol = protocol
        self.opened: 'asyncio.Future[OpenedWebsocket]' = asyncio.get_running_loop().create_future()
        self.websocket = OpenedWebsocket(connection.transport, connection.tls, protocol, close_timeout)
        self._buffer = memoryview(bytearray(HANDSHAKE_READ))
        connection.transport.set_protocol(self)
        protocol.send_request(request)
        connection.tls.send(connection.transport, protocol.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            self.websocket.tls.receive(data, self._buffer, self.protocol.receive_data)
        except ssl.SSLError as err:
            self._fail(err)
            return
        if self.websocket.tls.closed:
            self.protocol.receive_eof()
        self._progress()

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._progress()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.websocket.lost = True
        if not self.opened.done():
            self.protocol.receive_eof()
            self._progress()
            self._fail(ConnectionResetError('the connection closed during the websocket upgrade'))

    def _fail(self, err: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(err)
        self.websocket.transport.abort()

    def _progress(self) -> None:
        events = self.protocol.events_received()
        frames = [event for event in events if isinstance(event, Frame)]
        if self.opened.done():      # frames after the answer, before the transport paused (same read)
            self.websocket.frames.extend(frames)
            return
        if self.protocol.handshake_exc is not None:
            self._fail(self.protocol.handshake_exc)
        elif self.protocol.state is not State.CONNECTING:     # OPEN, or already closing: the relay sees to it
            self.websocket.transport.pause_reading()
            self.websocket.frames.extend(frames)
            self.opened.set_result(self.websocket)


async def open_websocket(url: str, *, ssl_context: Optional[ssl.SSLContext], warm: Optional[TlsConnection] = None,
                         proxy: Optional[str] = None, proxy_ssl: Optional[ssl.SSLContext] = None,
                         headers: Optional[Mapping[str, str]] = None, max_size: Optional[int] = 4 * 1024 * 1024,
                         open_timeout: float = 15.0, close_timeout: float = 5.0,
                         logger: Union[logging.Logger, logging.LoggerAdapter, None] = None) -> OpenedWebsocket:
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
    return await asyncio.wait_for(_open(protocol, request, close_timeout, ws_uri, tls, warm, proxy, proxy_ssl),
                                  open_timeout)


async def _open(protocol: ClientProtocol, request: Request, close_timeout: float, ws_uri: WebSocketURI,
                tls: Optional[ssl.SSLContext], warm: Optional[TlsConnection], proxy: Optional[str],
                proxy_ssl: Optional[ssl.SSLContext]) -> OpenedWebsocket:  # pylint: disable=too-many-arguments
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
        return await _Handshake(protocol, request, connection, close_timeout).opened
    except BaseException:
        connection.transport.abort()
        raise
