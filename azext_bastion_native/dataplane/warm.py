"""Warm (pre-opened) TLS connections for tunnel websockets, for connection set-up in parallel: the websocket's
TCP + TLS handshake does not depend on the session (only the upgrade request carries the websocket token), so the
client starts it while the session is being minted and hands the ready TLS connection over for the upgrade
(websocket.py). This takes one TLS handshake off each connection's critical path. A warm connection carries nothing
until the upgrade request: if it failed or the server closed it meanwhile, the websocket opens on a fresh one.
"""

import asyncio
import collections
import logging
import ssl
from typing import Any, DefaultDict, Deque, Optional

from .tls import TlsConnection, connect_tls

logger = logging.getLogger(__name__)

MAX_IDLE = 30.0            # seconds a warm connection may wait before it is not trusted any more
MAX_WARM_PER_HOST = 32     # bound: never more than this many handshakes ahead of use


class WarmConnections:
    """Per data-plane host, a queue of TLS connections being opened (tasks). ``open(host)`` starts one;
    ``take(host)`` returns a ready, unspoiled TlsConnection or None (never raises)."""

    def __init__(self, ssl_context: Optional[ssl.SSLContext], open_timeout: float = 15.0):
        self._ssl = ssl_context
        self._open_timeout = open_timeout
        self._pending: DefaultDict[str, Deque['asyncio.Future[TlsConnection]']] = collections.defaultdict(
            collections.deque)

    def open(self, endpoint_host: str) -> None:
        queue = self._pending[endpoint_host]
        if len(queue) >= MAX_WARM_PER_HOST:
            return
        queue.append(asyncio.ensure_future(self._connect(endpoint_host)))

    async def _connect(self, endpoint_host: str) -> TlsConnection:
        host, _, port = endpoint_host.rpartition(':') if ':' in endpoint_host else (endpoint_host, '', '443')
        return await asyncio.wait_for(connect_tls(host, int(port or 443), self._ssl), self._open_timeout)

    def cancel_one(self, endpoint_host: str) -> None:
        """The session this connection was opened for will not come (its mint failed): drop the newest one."""
        queue = self._pending.get(endpoint_host)
        if queue:
            _close(queue.pop())

    async def take(self, endpoint_host: str) -> Optional[TlsConnection]:
        queue = self._pending.get(endpoint_host)
        while queue:
            task = queue.popleft()
            try:
                connection = await task
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as err:
                logger.debug('warm connection to %s failed (%s); opening a fresh one', endpoint_host,
                             type(err).__name__)
                return None
            if not connection.usable(MAX_IDLE):
                connection.transport.abort()
                continue
            return connection
        return None

    def close(self) -> None:
        for queue in self._pending.values():
            while queue:
                _close(queue.pop())
        self._pending.clear()


def _close(task: 'asyncio.Future[Any]') -> None:
    if not task.done():
        task.cancel()
        return
    if not task.cancelled() and task.exception() is None:
        task.result().transport.abort()
