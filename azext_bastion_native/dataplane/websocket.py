# --------------------------------------------------------------------------------------------
# The tunnel websocket's opening handshake, driven by websockets' sans-I/O ClientProtocol over a plain asyncio
# transport: a warm TLS connection (warm.py), a fresh one, or one through an HTTP(S) proxy's CONNECT tunnel
# (websockets' own connect_http_proxy, then TLS to Bastion on top, as websockets' client does it). The result
# is the transport with reading paused and the protocol in the OPEN state: the relay takes both over and moves
# bytes from the transports' callbacks, with no task, queue or future per message.
# --------------------------------------------------------------------------------------------
"""Open a Bastion tunnel websocket as a transport plus websockets' sans-I/O ClientProtocol."""

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Union

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri


@dataclass
class OpenedWebsocket:
    """An open websocket: ``transport`` (reading paused until the relay takes it over), its ``protocol``
    (state OPEN), the ``frames`` that arrived with the handshake answer, and the seconds a closing handshake
    may take before the connection is cut (``close_timeout``). ``lost`` is set when the connection ended
    before the relay took it over."""
    transport: asyncio.Transport
    protocol: ClientProtocol
    close_timeout: float = 5.0
    frames: List[Frame] = field(default_factory=list)
    lost: bool = False


class _Handshake(asyncio.Protocol):
    """The transport's protocol from the upgrade request until the relay takes over."""

    def __init__(self, protocol: ClientProtocol, request, close_timeout: float):
        self.protocol = protocol
        self.request = request
        self.opened: 'asyncio.Future[OpenedWebsocket]' = asyncio.get_running_loop().create_future()
        self.close_timeout = close_timeout
        self.websocket: Optional[OpenedWebsocket] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.websocket = OpenedWebsocket(transport, self.protocol, self.close_timeout)
        self.protocol.send_request(self.request)
        transport.writelines(self.protocol.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._progress()

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._progress()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.websocket is not None:
            self.websocket.lost = True
        if not self.opened.done():
            self.protocol.receive_eof()
            self._progress()
            if not self.opened.done():
                self.opened.set_exception(ConnectionResetError('the connection closed during the websocket upgrade'))

    def _progress(self) -> None:
        events = self.protocol.events_received()
        if self.opened.done():      # frames after the answer, before the transport paused (same read)
            self.websocket.frames.extend(events)
            return
        if self.protocol.handshake_exc is not None:
            self.opened.set_exception(self.protocol.handshake_exc)
        elif self.protocol.state is not State.CONNECTING:     # OPEN, or already closing: the relay sees to it
            self.websocket.transport.pause_reading()
            self.websocket.frames.extend(event for event in events if isinstance(event, Frame))
            self.opened.set_result(self.websocket)


async def open_websocket(url: str, *, ssl_context: Optional[ssl.SSLContext], warm: Optional[asyncio.Transport] = None,
                         proxy: Optional[str] = None, proxy_ssl: Optional[ssl.SSLContext] = None,
                         headers: Optional[Mapping[str, str]] = None, max_size: Optional[int] = 4 * 1024 * 1024,
                         open_timeout: float = 15.0, close_timeout: float = 5.0,
                         logger: Union[logging.Logger, logging.LoggerAdapter, None] = None) -> OpenedWebsocket:
    """Open the websocket at ``url`` (binary frames, no extensions) over ``warm`` (an idle TLS transport to its
    host) when given, else through ``proxy`` (http:// or https://; ``proxy_ssl`` for the latter) or directly.

    Raises websockets' InvalidStatus / InvalidHandshake / InvalidProxy errors, OSError or asyncio.TimeoutError."""
    ws_uri = parse_uri(url)
    protocol = ClientProtocol(ws_uri, max_size=max_size, logger=logger)
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    handshake = _Handshake(protocol, request, close_timeout)
    tls = ssl_context if ws_uri.secure else None
    try:
        return await asyncio.wait_for(_open(handshake, ws_uri, tls, warm, proxy, proxy_ssl), open_timeout)
    except BaseException:
        if handshake.websocket is not None:
            handshake.websocket.transport.abort()
        raise


async def _open(handshake: _Handshake, ws_uri, tls, warm, proxy, proxy_ssl) -> OpenedWebsocket:
    loop = asyncio.get_running_loop()
    if warm is not None and not warm.is_closing():
        warm.set_protocol(handshake)
        handshake.connection_made(warm)
    elif proxy:
        from websockets.asyncio.client import connect_http_proxy
        from websockets.proxy import parse_proxy
        parsed = parse_proxy(proxy)
        tunnel = await connect_http_proxy(parsed, ws_uri, user_agent_header=None,
                                          **({'ssl': proxy_ssl or True} if parsed.scheme == 'https' else {}))
        transport = tunnel
        tunnel.set_protocol(handshake)
        if tls is not None:
            try:
                transport = await loop.start_tls(tunnel, handshake, tls, server_hostname=ws_uri.host)
            except BaseException:
                tunnel.abort()
                raise
        handshake.connection_made(transport)
    else:
        await loop.create_connection(lambda: handshake, ws_uri.host, ws_uri.port, ssl=tls,
                                     server_hostname=ws_uri.host if tls else None)
    return await handshake.opened
