# --------------------------------------------------------------------------------------------
# Move bytes between a local stream (TCP socket or stdio pipes) and a tunnel websocket.
#
# Per connection: the caller's task downloads (websocket -> local) and one extra task uploads
# (local -> websocket); no threads. Reads are up to READ_SIZE bytes; nothing is logged per chunk.
#
# Half-close: a websocket has no half-close. When the local side sends EOF we start the websocket's
# normal closing handshake (code 1000) - Bastion then ends the target connection - and keep delivering
# whatever still arrives until the peer's close frame (websockets hands over data frames received
# while closing). The wait is bounded by the websocket's close_timeout.
#
# Backpressure: uploads wait in websocket.send() while more than write_limit bytes are unsent;
# downloads wait in drain() while the local side is slow, so websockets stops reading the socket once
# max_queue frames are queued. Memory per connection stays bounded both ways.
#
# Failure: a websocket that drops (no close frame, or an error code) aborts the local connection (RST,
# so the client knows the stream is incomplete) at once; a local error closes the websocket.
# --------------------------------------------------------------------------------------------
"""The byte pump between a local stream and a websocket."""

import asyncio
import time
from dataclasses import dataclass, field

READ_SIZE = 64 * 1024
LOCAL_CLOSE_TIMEOUT = 5.0       # seconds to flush the local side before giving up on a slow reader
STOP_TIMEOUT = 1.0              # on a stop, seconds for each side's polite close before cutting it


@dataclass
class RelayResult:
    """What happened on one relayed connection (bytes up = local -> target)."""
    bytes_up: int = 0
    bytes_down: int = 0
    local_eof: bool = False         # the local side sent EOF first
    ending: str = ''                # why it ended, in words, for the one log line
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0

    @property
    def duration(self):
        return (self.ended or time.monotonic()) - self.started


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, websocket,
                read_size: int = READ_SIZE) -> RelayResult:
    """Relay until both directions are done, the websocket drops, or the local side fails.

    Cancelling the calling task stops the relay: the websocket gets a normal close ("going away", 1001)
    and the local connection is closed."""
    from websockets.exceptions import ConnectionClosedError
    result = RelayResult()
    upload = asyncio.create_task(_upload(reader, websocket, result, read_size))
    dropped = False
    try:
        dropped = not await _download(websocket, writer, result)
    except ConnectionClosedError:   # pragma: no cover - _download catches it; kept for safety
        dropped = True
    except asyncio.CancelledError:
        result.ending = result.ending or 'stopped'
        await _finish(upload, websocket, writer, result, dropped=False, going_away=True)
        raise
    await _finish(upload, websocket, writer, result, dropped=dropped, going_away=False)
    return result


async def _upload(reader, websocket, result, read_size):
    from websockets.exceptions import ConnectionClosed
    try:
        while True:
            data = await reader.read(read_size)
            if not data:
                result.local_eof = True
                await websocket.close()     # normal close: see "Half-close" above
                return
            await websocket.send(data)
            result.bytes_up += len(data)
    except ConnectionClosed:
        return                              # the download side sees the same closure and reports it
    except OSError as err:
        result.ending = result.ending or f'local read failed ({type(err).__name__})'
        await websocket.close()


async def _download(websocket, writer, result) -> bool:
    """Websocket -> local until the websocket closes. False when it dropped (no clean close)."""
    from websockets.exceptions import ConnectionClosedError
    try:
        async for message in websocket:
            if isinstance(message, str):    # Bastion sends binary frames; be lenient with text ones
                message = message.encode('utf-8')
            writer.write(message)
            result.bytes_down += len(message)
            await writer.drain()
    except ConnectionClosedError as err:
        result.ending = result.ending or f'websocket dropped ({_close_code(err)})'
        return False
    except OSError as err:
        result.ending = result.ending or f'local write failed ({type(err).__name__})'
        await websocket.close()
        return True
    if not result.ending:
        result.ending = 'local side closed' if result.local_eof else 'target closed'
    return True


async def _finish(upload, websocket, writer, result, dropped, going_away):
    if not upload.done():
        upload.cancel()
    await asyncio.gather(upload, return_exceptions=True)
    if going_away:
        try:
            await asyncio.wait_for(websocket.close(code=1001), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            websocket.transport.abort()
    if dropped:
        writer.transport.abort()            # RST: the client must not take a cut stream for a whole one
    else:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), STOP_TIMEOUT if going_away else LOCAL_CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, OSError):
            writer.transport.abort()
    result.ended = time.monotonic()


def _close_code(error):
    frame = error.rcvd or error.sent
    return f'code {frame.code}' if frame else 'no close frame'
