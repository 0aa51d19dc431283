"""The byte pump between a local connection (TCP or Unix socket, or stdio pipes) and a tunnel websocket, driven
from the transports' callbacks: local read -> binary frame -> TLS -> websocket transport write, and websocket read
-> TLS -> frames.ServerFrameReader -> payload slices -> one local transport write per read. Data frames are
framed and read in frames.py; websockets' sans-I/O ClientProtocol gets every other frame: it answers pings and runs
the closing handshake. No task, queue, future or await per chunk: a 1-byte keystroke costs two callbacks.

Memory: socket reads land in one read buffer shared by every connection of a server (a read is framed, or
decrypted, at once, in the same callback: ReadBuffer). Per connection there is what its TLS session keeps (a
record's worth going out, 64 KiB coming in: dataplane/tls.py) and what the transports hold while the other side is
slow, bounded by backpressure: a side over its write limit pauses reading on the other (pause_writing ->
pause_reading, resume_writing -> resume_reading).

Half-close: a websocket has no half-close. When the local side sends EOF we start the websocket's normal
closing handshake (1000) - Bastion then ends the target connection - and keep delivering whatever still
arrives until the peer's close frame, within the close timeout.

Failure: a websocket that drops (no close frame, an error close code, or a closing handshake that times out)
aborts the local connection (RST, so the client knows the stream is incomplete) at once; a local error closes
the websocket normally.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Set, Union, cast

from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from ..dataplane.tls import RECORD_SIZE, Bytes
from ..dataplane.websocket import OpenedWebsocket
from .frames import MaskKeys, ServerFrameReader, binary_frame

# One local read, framed as one websocket message: with its 8-byte header, four full TLS records.
READ_SIZE = 4 * RECORD_SIZE - 8
# One websocket read (ciphertext) while few connections relay, its payload to the local side in one write: a
# quarter MiB rather than 64 KiB a read cost the download a sixth less CPU in all (the local reader wakes a quarter
# as often), measured A/B. With many connections, reads stay 64 KiB: a read waits in the local transport while its
# reader is behind, and a burst of hundreds of connections would hold a quarter MiB each. (Local reads of a
# quarter MiB, sent as four frames in one write, measured no gain.)
WEBSOCKET_READ_SIZE = 16 * RECORD_SIZE
LARGE_READS_UP_TO = 16          # relaying connections that may read a quarter MiB at once
EARLY_READ = 4 * 1024           # the one read uvloop makes before the relay is ready
WRITE_LIMIT = 64 * 1024         # unsent bytes on either side before the other side's reading pauses
LOCAL_CLOSE_TIMEOUT = 5.0       # seconds to flush the local side before giving up on a slow reader
STOP_TIMEOUT = 1.0              # on a stop, seconds for each side's polite close before cutting it

_DATA_OPCODES = (Opcode.BINARY, Opcode.CONT, Opcode.TEXT)


@dataclass
class RelayResult:
    """What happened on one relayed connection (bytes up = local -> target)."""
    bytes_up: int = 0
    bytes_down: int = 0
    local_eof: bool = False         # the local side sent EOF first
    ending: str = ''                # why it ended, in words, for the one log line
    # Bastion closed the websocket with an error ("code 1008, <its reason>": `session disconnect`, idle policy):
    # said to the user at default verbosity, not only in the closing log line.
    bastion_ended: str = ''
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0

    @property
    def duration(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def _discard(_: memoryview) -> None:
    """What a finished relay's frame reader does with bytes: nothing (it no longer holds the relay)."""


class ReadBuffer:
    """The read buffer shared by the connections of one event loop (each read is consumed in the callback that
    made it, before the next read), and how many of those connections relay now."""

    def __init__(self) -> None:
        self.whole = memoryview(bytearray(max(READ_SIZE, WEBSOCKET_READ_SIZE)))
        self.local = self.whole[:READ_SIZE]             # a local read: one upload frame
        self.early = self.whole[:EARLY_READ]
        self.relays = 0

    def for_websocket(self) -> memoryview:
        return self.whole if self.relays <= LARGE_READS_UP_TO else self.local

    def relay_started(self) -> None:
        self.relays += 1

    def relay_ended(self) -> None:
        self.relays -= 1


class LocalEnd(asyncio.BufferedProtocol):  # pylint: disable=too-many-instance-attributes
    """The local connection's protocol: one transport for a socket, or (``pipes``) a read pipe plus a write pipe
    (stdio: connect the write pipe with ``write_pipe_protocol()`` first, then the read pipe with this).

    ``on_open(local_end)`` runs when a socket connection is made. Reading waits until a Relay attaches: what the
    local side sends meanwhile stays in the kernel's socket buffer, not in ours. ``read_buffer``: a ReadBuffer shared
    by the connections of one event loop for socket reads (each read is consumed before the next one)."""

    def __init__(self, on_open: Optional[Callable[['LocalEnd'], None]] = None,
                 read_buffer: Optional[ReadBuffer] = None, pipes: bool = False):
        self._on_open = on_open
        self._pipes = pipes
        self.read_buffer = read_buffer if read_buffer is not None else ReadBuffer()
        self.in_transport: Optional[asyncio.Transport] = None       # a socket's, or stdin's read pipe
        self.out_transport: Optional[asyncio.WriteTransport] = None     # the same socket's, or stdout's write pipe
        self.relay: Optional['Relay'] = None
        # Reads before the relay, for a listener kind that speaks first with its client (SOCKS5): see read_preface.
        self.preface: Optional[Callable[[Bytes], None]] = None
        self.eof = False            # the local side sent EOF
        self.gone = False           # the local side can take no more bytes (closed, reset or broken)
        self.closed: 'asyncio.Future[None]' = asyncio.get_running_loop().create_future()
        self._early: List[bytes] = []
        self._pauses: Set[str] = set()      # why reading is paused: 'unrelayed', 'websocket'

    # -- asyncio callbacks ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.in_transport = cast(asyncio.Transport, transport)
        self.pause_reading('unrelayed')
        if not self._pipes:
            self.out_transport = self.in_transport          # a socket: both ways
            self.in_transport.set_write_buffer_limits(high=WRITE_LIMIT)
            if self._on_open is not None:
                self._on_open(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_buffer.local if self.relay is not None else self.read_buffer.early

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.read_buffer.whole[:nbytes])

    def data_received(self, data: Bytes) -> None:
        if self.relay is not None:
            self.relay.upload(data)
        elif self.preface is not None:
            self.preface(data)
        elif not self.gone and self.in_transport is not None:
            # uvloop reads once even when paused in connection_made: keep that read, and pause for real.
            self._early.append(bytes(data))
            if self.in_transport.is_reading():
                self.in_transport.pause_reading()
            else:
                self.in_transport.resume_reading()
                self.in_transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.relay is not None:
            self.relay.local_eof()
        elif self.preface is not None:
            self.preface(b'')
        return True                 # keep the sending half open: answers still come back

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.in_transport is not self.out_transport and exc is None and self.eof:
            return                  # stdin ended; stdout stays open for the answers
        self.output_lost(exc)

    def pause_writing(self) -> None:
        if self.relay is not None:
            self.relay.pause_download()

    def resume_writing(self) -> None:
        if self.relay is not None:
            self.relay.resume_download()

    # -- used by the relay ------------------------------------------------------------------------------------
    def output_lost(self, exc: Optional[Exception]) -> None:
        if not self.gone:
            self.gone = True
            if self.relay is not None:
                self.relay.local_gone(exc)
        if not self.closed.done() and (self.in_transport is None or self.in_transport.is_closing()):
            self.closed.set_result(None)

    def read_preface(self, consume: Optional[Callable[[Bytes], None]], early: Bytes = b'') -> None:
        """Before relaying: ``consume(data)`` gets every read (b'' at EOF) while reading goes on; None pauses
        reading again, ``early`` (bytes read past the preface) going to the relay first."""
        self.preface = consume
        if consume is None:
            if early:
                self._early.append(bytes(early))
            self.pause_reading('unrelayed')
            return
        kept, self._early = self._early, []     # what uvloop read before we asked
        for data in kept:
            consume(data)
        if self.eof:
            consume(b'')
        elif self.preface is consume:
            self.resume_reading('unrelayed')

    def attach(self, relay: 'Relay') -> None:
        """Relay from now on: start reading."""
        self.relay = relay
        early, self._early = self._early, []
        for data in early:
            relay.upload(data)
        if self.eof:
            relay.local_eof()
        if self.gone:
            relay.local_gone(None)
        else:
            self.resume_reading('unrelayed')

    def pause_reading(self, reason: str) -> None:
        if not self._pauses and self.in_transport is not None and not self.in_transport.is_closing():
            self.in_transport.pause_reading()
        self._pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self.in_transport is not None and not self.in_transport.is_closing():
                self.in_transport.resume_reading()

    def write(self, data: Bytes) -> None:
        if not self.gone and self.out_transport is not None:
            self.out_transport.write(data)

    def writelines(self, pieces: List[Bytes]) -> None:
        if not self.gone and self.out_transport is not None:
            self.out_transport.writelines(pieces)

    def close(self) -> None:
        """Deliver what is buffered, then close (EOF to the local client)."""
        for transport in self._transports():
            transport.close()

    def abort(self) -> None:
        """Close at once (a TCP client sees a reset; a pipe has none and is closed)."""
        for transport in self._transports():
            try:
                transport.abort()
            except (AttributeError, NotImplementedError):   # a read pipe: asyncio's has no abort, uvloop's raises
                transport.close()

    def _transports(self) -> List[Union[asyncio.Transport, asyncio.WriteTransport]]:
        if self.out_transport is self.in_transport:     # a socket
            return [self.in_transport] if self.in_transport is not None else []
        return [transport for transport in (self.in_transport, self.out_transport) if transport is not None]

    def write_pipe_protocol(self) -> asyncio.BaseProtocol:
        """The protocol for stdout's write pipe: flow control and loss go to this LocalEnd."""
        return _WritePipeEnd(self)


class _WritePipeEnd(asyncio.Protocol):
    def __init__(self, local: LocalEnd):
        self.local = local

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.local.out_transport = cast(asyncio.WriteTransport, transport)
        self.local.out_transport.set_write_buffer_limits(high=WRITE_LIMIT)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.local.output_lost(exc)
        if not self.local.closed.done():
            self.local.closed.set_result(None)

    def pause_writing(self) -> None:
        self.local.pause_writing()

    def resume_writing(self) -> None:
        self.local.resume_writing()


class Relay(asyncio.BufferedProtocol):  # pylint: disable=too-many-instance-attributes
    """The websocket transport's protocol while relaying ``websocket`` to and from ``local``.
    ``await relay.run()`` returns the RelayResult once both sides are done. Cancelling it stops the relay:
    the websocket gets a normal close ("going away", 1001) and the local connection is closed."""

    def __init__(self, local: LocalEnd, websocket: OpenedWebsocket):
        self.local = local
        self.websocket = websocket.protocol
        self.transport = websocket.transport
        self.tls = websocket.tls
        self.reads = local.read_buffer
        self.close_timeout = websocket.close_timeout
        self.result = RelayResult()
        self._gone: 'asyncio.Future[None]' = asyncio.get_running_loop().create_future()
        self._cut_timer: Optional[asyncio.TimerHandle] = None
        self._early = websocket.early
        self._lost_before = websocket.lost
        self.reader = ServerFrameReader(self._payload_received, self._other_frame_received, websocket.max_size)
        self.reader.passthrough = self.websocket.state is not State.OPEN
        self._down: List[Bytes] = []       # payload slices of the current read, written to the local side at once
        self._failed = False               # the reader's protocol error has been acted on
        self._mask_keys = MaskKeys()

    async def run(self) -> RelayResult:
        self._start()
        self.reads.relay_started()          # ended in the finally below, so a start that raised counts nothing
        try:
            await asyncio.shield(self._gone)
        except asyncio.CancelledError:
            self.result.ending = self.result.ending or 'stopped'
            self._close(1001, STOP_TIMEOUT)
            try:
                await asyncio.wait_for(asyncio.shield(self._gone), STOP_TIMEOUT * 2)
            except asyncio.TimeoutError:
                self.transport.abort()
            await self._close_local(STOP_TIMEOUT)
            raise
        finally:
            self.reads.relay_ended()
            # Reference cycles would keep both sides' buffers until the garbage collector's next full pass.
            self.local.relay = None
            self.reader.on_data = self.reader.on_other = _discard
        await self._close_local(LOCAL_CLOSE_TIMEOUT)
        return self.result

    def _start(self) -> None:
        self.transport.set_protocol(self)
        self.transport.set_write_buffer_limits(high=WRITE_LIMIT)
        self.local.attach(self)
        early, self._early = self._early, bytearray()
        self.reader.feed(bytes(early))
        self._read_done()
        if self._lost_before:
            self.connection_lost(None)
        else:
            self.transport.resume_reading()

    # -- local side ---------------------------------------------------------------------------------------------
    def upload(self, data: Bytes) -> None:
        if self.websocket.state is State.OPEN:
            # Data frames are framed here rather than by the protocol (which keeps no state for them): websockets'
            # Frame.serialize copies a payload twice more, a quarter of the upload's CPU.
            self.tls.send(self.transport, binary_frame(data, self._mask_keys.take()))
            self.result.bytes_up += len(data)

    def local_eof(self) -> None:
        if not self.result.local_eof and self.websocket.state is State.OPEN:
            self.result.local_eof = True
        self._close(1000, self.close_timeout)

    def local_gone(self, exc: Optional[Exception]) -> None:
        if self._gone.done():
            return
        if exc is not None and not self.result.ending:
            self.result.ending = f'local connection failed ({type(exc).__name__})'
        self._close(1000, self.close_timeout)

    def pause_download(self) -> None:
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_download(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    # -- websocket side (asyncio callbacks) ---------------------------------------------------------------------
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reads.for_websocket()

    def buffer_updated(self, nbytes: int) -> None:
        # The ciphertext is copied into the TLS session; the plaintext comes out in bytes objects of its own, whose
        # slices the local transport may keep.
        try:
            self.tls.decrypt(self.reads.whole[:nbytes], self.reader.feed)
        except ssl.SSLError:
            self._write_down()
            self.transport.abort()      # a broken TLS stream: a drop
            return
        self._read_done()
        if self.tls.closed:         # close_notify: the server is done; answer it and close
            self.transport.write(self.tls.close_notify())
            self.eof_received()
            self.transport.close()

    def _read_done(self) -> None:
        """A read is used up: its payload goes to the local side in one write; a frame that broke the protocol
        fails the websocket (websockets sends the close frame with the reader's code)."""
        self._write_down()
        if self.reader.error is not None and not self._failed:
            self._failed = True
            self.websocket.fail(*self.reader.error)
            self._send()

    def _payload_received(self, piece: memoryview) -> None:
        self._down.append(piece)
        self.result.bytes_down += len(piece)

    def _write_down(self) -> None:
        if self._down:
            pieces, self._down = self._down, []
            self.local.writelines(pieces)

    def _other_frame_received(self, data: memoryview) -> None:
        """Bytes of a control frame (or, in passthrough, of anything) for websockets' parser, after the data
        before them has gone to the local side."""
        self._write_down()
        self.websocket.receive_data(bytes(data))
        self._deliver(cast(List[Frame], self.websocket.events_received()))     # open: frames only
        if self.websocket.close_rcvd is not None or self.websocket.parser_exc is not None:
            self.reader.passthrough = True      # its parser now discards what follows; it sees all of it

    def eof_received(self) -> None:
        self.websocket.receive_eof()
        self._send()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._cut_timer is not None:
            self._cut_timer.cancel()
        self.websocket.receive_eof()
        self.websocket.data_to_send()
        if not self._gone.done():
            self._gone.set_result(None)

    def pause_writing(self) -> None:
        self.local.pause_reading('websocket')

    def resume_writing(self) -> None:
        self.local.resume_reading('websocket')

    # -- internals ----------------------------------------------------------------------------------------------------
    def _deliver(self, events: List[Frame]) -> None:
        for frame in events:
            if frame.opcode in _DATA_OPCODES:
                self.local.write(frame.data)
                self.result.bytes_down += len(frame.data)
        self._send()

    def _send(self) -> None:
        writes = self.websocket.data_to_send()
        if writes and not self.transport.is_closing():
            # b'' asks for a TCP half-close: TLS has none, and the server closes once the close handshake is done.
            self.tls.send(self.transport, [data for data in writes if data])
        if self._cut_timer is None and self.websocket.close_expected():
            self._cut_timer = asyncio.get_running_loop().call_later(self.close_timeout, self.transport.abort)

    def _close(self, code: int, timeout: float) -> None:
        if self.websocket.state is State.OPEN:
            self.websocket.send_close(code)
        if timeout < self.close_timeout and self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        self.close_timeout = min(self.close_timeout, timeout)
        self._send()

    def _dropped(self) -> bool:
        if isinstance(self.websocket.close_exc, ConnectionClosedOK):
            return False
        frame = self.websocket.close_rcvd or self.websocket.close_sent
        received = self.websocket.close_rcvd
        if received is not None and not self.result.bastion_ended:
            self.result.bastion_ended = f'code {received.code}' + (f', {received.reason}' if received.reason else '')
        self.result.ending = self.result.ending or (
            f'websocket dropped (code {frame.code})' if frame else 'websocket dropped (no close frame)')
        return True

    async def _close_local(self, timeout: float) -> None:
        if self._dropped():
            self.local.abort()      # RST: the client must not take a cut stream for a whole one
        else:
            if not self.result.ending:
                self.result.ending = 'local side closed' if self.result.local_eof else 'target closed'
            self.local.close()
            try:
                await asyncio.wait_for(asyncio.shield(self.local.closed), timeout)
            except asyncio.TimeoutError:
                self.local.abort()
        self.result.ended = time.monotonic()
