"""Relay one local connection through a fresh Bastion session, start to end: mint a session, open its websocket,
pump bytes, delete the session. Shared by the TCP tunnel and the stdio proxy. One log line when it opens (debug) and one
when it closes (info, with how it ended: close codes included) - never per chunk, never a token.
"""

import asyncio
import logging
import time
from typing import Any, Optional

from ..dataplane import DataPlaneError
from ..dataplane.protocol import Target
from .pump import LocalEnd, Relay, RelayResult

logger = logging.getLogger(__name__)


async def relay_connection(client: Any, target: Target, local: LocalEnd, label: str,
                           problem_level: int = logging.WARNING) -> Optional[RelayResult]:
    """Relay the ``local`` connection to ``target`` through ``client`` (a DataPlaneClient).

    Returns the RelayResult, or None when no session could be opened (the local side is closed then,
    and one line says why). Cancelling the task stops the relay and still deletes the session.
    ``problem_level``: how a failed session or one Bastion ended is logged (the tunnel carries on: a warning; the
    stdio proxy has only this one: an error)."""
    started = time.monotonic()
    logger.debug('%s: opened', label)
    try:
        session = await client.mint(target)
    except DataPlaneError as err:
        logger.log(problem_level, '%s: %s', label, err)
        local.abort()
        return None
    except asyncio.CancelledError:
        local.abort()
        raise
    try:
        websocket = await client.connect(session)
    except (DataPlaneError, asyncio.CancelledError) as err:
        local.abort()
        await _delete(client, session)
        if isinstance(err, asyncio.CancelledError):
            raise
        logger.log(problem_level, '%s: %s', label, err)
        return None
    setup_ms = (time.monotonic() - started) * 1000
    result = None
    try:
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


async def _delete(client: Any, session: Any) -> None:
    # Shielded: a second cancellation (shutdown) must not abandon the DELETE half-way; the client's
    # aclose() deletes anything left over in any case.
    try:
        await asyncio.shield(client.delete(session))
    except asyncio.CancelledError:
        pass
