"""The SOCKS5 listener kind: each connection first speaks SOCKS5 (socks.py) with its client, names where it goes, and
is then relayed there through a Bastion session of its own, like a forward's. What a name means is the caller's
``resolve``: ``await resolve(request) -> Target``, raising socks.SocksRefused with the reply code when it cannot
be reached. Every request gets an answer within ``connect_timeout`` seconds, and one log line when refused."""

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

from ..dataplane import DataPlaneError
from ..dataplane.protocol import Target
from ..dataplane.tls import Bytes
from .connection import Opening, relay_connection
from .pump import LocalEnd
from .socks import ConnectRequest, Reply, ServerHandshake, SocksRefused
from .tunnel import Listener

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0        # seconds for a client to send its greeting and request
CONNECT_TIMEOUT = 30.0          # seconds from the request to the reply: name resolved, session minted and open

Resolve = Callable[[ConnectRequest], Awaitable[Target]]


def reply_for(error: BaseException) -> Reply:
    """The reply to a session that could not be opened: Bastion said no (any HTTP answer: refused, the VM
    stopped, its port closed) -> connection refused; no answer in time -> TTL expired; else general failure."""
    if isinstance(error, asyncio.TimeoutError):
        return Reply.TTL_EXPIRED
    if isinstance(error, DataPlaneError) and error.status is not None:
        return Reply.CONNECTION_REFUSED
    return Reply.GENERAL_FAILURE


class _SocksOpening(Opening):  # pylint: disable=too-few-public-methods
    """The reply once the session is open (succeeded) or could not be (then the connection closes)."""

    def __init__(self, handshake: ServerHandshake):
        self.handshake = handshake

    def opened(self, local: LocalEnd) -> None:
        local.write(self.handshake.reply(Reply.SUCCEEDED))

    def failed(self, local: LocalEnd, error: BaseException) -> None:
        answer(local, self.handshake, reply_for(error))


def answer(local: LocalEnd, handshake: ServerHandshake, code: Reply) -> None:
    """A failure reply, then close (RFC 1928: the server closes the connection shortly after it)."""
    local.write(handshake.reply(code))
    local.close()


class SocksListener(Listener):  # pylint: disable=too-few-public-methods
    """SOCKS5 (CONNECT, no authentication) on ``bind_address:port``; names go through ``resolve``."""

    def __init__(self, resolve: Resolve, bind_address: str = '127.0.0.1', port: int = 0,
                 connect_timeout: float = CONNECT_TIMEOUT, handshake_timeout: float = HANDSHAKE_TIMEOUT):
        super().__init__(None, bind_address, port, name='SOCKS5')
        self.resolve = resolve
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout

    async def serve_connection(self, client: Any, local: LocalEnd, label: str) -> None:
        handshake = ServerHandshake()
        request = await self._read_request(local, handshake, label)
        if request is None:
            return
        label = f'{label} for {request.label}'
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        try:
            target = await asyncio.wait_for(self.resolve(request), self.connect_timeout)
        except SocksRefused as refused:
            logger.warning('%s: %s (SOCKS5 reply %d)', label, refused.message, refused.reply)
            answer(local, handshake, refused.reply)
            return
        except asyncio.TimeoutError:
            logger.warning('%s: not resolved within %g seconds (SOCKS5 reply %d)', label, self.connect_timeout,
                           Reply.TTL_EXPIRED)
            answer(local, handshake, Reply.TTL_EXPIRED)
            return
        except Exception:  # pylint: disable=broad-except
            logger.exception('%s: could not resolve (SOCKS5 reply %d)', label, Reply.GENERAL_FAILURE)
            answer(local, handshake, Reply.GENERAL_FAILURE)
            return
        await relay_connection(client, target, local, label, opening=_SocksOpening(handshake),
                               open_timeout=max(0.1, deadline - loop.time()))

    async def _read_request(self, local: LocalEnd, handshake: ServerHandshake,
                            label: str) -> Optional[ConnectRequest]:
        """Speak the handshake until there is a request to answer; None when the connection is done with."""
        read: 'asyncio.Future[None]' = asyncio.get_running_loop().create_future()

        def consume(data: Bytes) -> None:
            if data:
                handshake.receive_data(data)
            else:
                handshake.receive_eof()
            out = handshake.data_to_send()
            if out:
                local.write(out)
            if handshake.done and not read.done():
                read.set_result(None)

        local.read_preface(consume)
        try:
            await asyncio.wait_for(asyncio.wait([read, local.closed], return_when=asyncio.FIRST_COMPLETED),
                                   self.handshake_timeout)
        except asyncio.TimeoutError:
            logger.warning('%s: no SOCKS5 request within %g seconds', label, self.handshake_timeout)
            local.abort()
            return None
        finally:
            local.read_preface(None, handshake.rest)
            read.cancel()
        if handshake.request is None:
            if handshake.failed:
                logger.warning('%s: %s', label, handshake.failed)
            local.close()
            return None
        return handshake.request
