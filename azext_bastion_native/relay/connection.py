# --------------------------------------------------------------------------------------------
# One relayed connection, start to end: mint a session, open its websocket, pump bytes, delete the
# session. Shared by the TCP tunnel and the stdio proxy. One log line when it opens (debug) and one
# when it closes (info) - never per chunk, never a token.
# --------------------------------------------------------------------------------------------
"""Relay one local connection through a fresh Bastion session."""

import asyncio
import logging
import time

from ..dataplane import DataPlaneError
from .pump import READ_SIZE, relay

logger = logging.getLogger(__name__)


async def relay_connection(client, target, reader, writer, label, read_size=READ_SIZE):
    """Relay ``reader``/``writer`` to ``target`` through ``client`` (a DataPlaneClient).

    Returns the RelayResult, or None when no session could be opened (the local side is closed then,
    and one line says why). Cancelling the task stops the relay and still deletes the session."""
    started = time.monotonic()
    logger.debug('%s: opened', label)
    try:
        session = await client.mint(target)
    except DataPlaneError as err:
        logger.warning('%s: %s', label, err)
        writer.transport.abort()
        return None
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    try:
        websocket = await client.connect(session)
    except (DataPlaneError, asyncio.CancelledError) as err:
        writer.transport.abort()
        await _delete(client, session)
        if isinstance(err, asyncio.CancelledError):
            raise
        logger.warning('%s: %s', label, err)
        return None
    setup_ms = (time.monotonic() - started) * 1000
    result = None
    try:
        result = await relay(reader, writer, websocket, read_size=read_size)
        return result
    finally:
        await _delete(client, session)
        if result is not None:
            logger.info('%s: closed after %.1fs, %d bytes up, %d bytes down, set-up %.1f ms (%s)',
                        label, result.duration, result.bytes_up, result.bytes_down, setup_ms, result.ending)
        else:
            logger.info('%s: closed after %.1fs (stopped)', label, time.monotonic() - started)


async def _delete(client, session):
    # Shielded: a second cancellation (shutdown) must not abandon the DELETE half-way; the client's
    # aclose() deletes anything left over in any case.
    try:
        await asyncio.shield(client.delete(session))
    except asyncio.CancelledError:
        pass
