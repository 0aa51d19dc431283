"""Relay one local connection through a fresh Bastion session, start to end: mint a session, open its websocket,
pump bytes, delete the session. Shared by every listener kind and the stdio proxy. One log line when it opens (debug)
and one when it closes (info, with how it ended: close codes included) - never per chunk, never a token.
"""

import asyncio
import logging
import time
from typing import Any, List, Optional

from ..dataplane import DataPlaneError
from ..dataplane.protocol import Target
from .pump import LocalEnd, Relay, RelayResult

logger = logging.getLogger(__name__)


class Opening:
    """How a listener kind tells its local client the session is open or could not be: a plain forward says
    nothing and resets the connection on failure; SOCKS5 answers with a reply code (relay/socks_listener.py)."""

    def opened(self, local: LocalEnd) -> None:
        """The websocket is open; the relay starts next."""

    def failed(self, local: LocalEnd, error: BaseException) -> None:  # pylint: disable=unused-argument
        """No session (``error``: a DataPlaneError, or asyncio.TimeoutError after ``open_timeout``)."""
        local.abort()


FORWARD = Opening()


async def relay_connection(client: Any, target: Target, local: LocalEnd, label: str,
                           problem_level: int = logging.WARNING, opening: Opening = FORWARD,
                           open_timeout: Optional[float] = None) -> Optional[RelayResult]:
    """Relay the ``local`` connection to ``target`` through ``client`` (a DataPlaneClient).

    Returns the RelayResult, or None when no session could be opened (``opening.failed`` has answered the local
    side then, and one line says why). Cancelling the task stops the relay and still deletes the session.
    ``problem_level``: how a failed session or one Bastion ended is logged (the tunnel carries on: a warning; the
    stdio proxy has only this one: an error). ``open_timeout``: seconds for the mint and the websocket together."""
    started = time.monotonic()
    logger.debug('%s: opened', label)
    minted: List[Any] = []
    try:
        if open_timeout is None:
            websocket = await _open(client, target, minted)
        else:
            websocket = await asyncio.wait_for(_open(client, target, minted), open_timeout)
    except (DataPlaneError, asyncio.TimeoutError, asyncio.CancelledError) as err:
        if isinstance(err, asyncio.CancelledError):
            local.abort()
        else:
            opening.failed(local, err)
        if minted:
            await _delete(client, minted[0])
        if isinstance(err, asyncio.CancelledError):
            raise
        logger.log(problem_level, '%s: %s', label, err if isinstance(err, DataPlaneError) else
                   f'no session within {open_timeout:g} seconds')
        return None
    session = minted[0]
    setup_ms = (time.monotonic() - started) * 1000
    result = None
    try:
        opening.opened(local)
        result = await Relay(local, websocket).run()
        return result
    finally:
        await _delete(client, session)
        if result is not None and result.bastion_ended:
            logger.log(problem_level, '%s: Bastion ended the session (%s).', label, result.bastion_ended)
        if result is not None:
            logger.info('%s: closed after %.1fs, %d bytes up, %d bytes down, set-up %.1f ms (%s)',
                        label, result.duration, result.bytes_up, result.bytes_down, setup_ms, result.ending)
        else:
            logger.info('%s: closed after %.1fs (stopped)', label, time.monotonic() - started)


async def _open(client: Any, target: Target, minted: List[Any]) -> Any:
    """Mint a session (kept in ``minted``, so that whoever cancels this can delete it) and open its websocket."""
    session = await client.mint(target)
    minted.append(session)
    return await client.connect(session)


async def _delete(client: Any, session: Any) -> None:
    # Shielded: a second cancellation (shutdown) must not abandon the DELETE half-way; the client's
    # aclose() deletes anything left over in any case.
    try:
        await asyncio.shield(client.delete(session))
    except asyncio.CancelledError:
        pass
