"""RFC 6455 framing on the relay's two hot paths, I/O-free: a client's data frame going up (``binary_frame``), and
the server's frames coming down (``ServerFrameReader``), which hands data frames' payloads on as they arrive -
slices of the decrypted TLS records, never gathered into a message - and every other frame, byte for byte, to
websockets' own parser (the ClientProtocol that answers pings and runs the closing handshake).

Why not let websockets parse everything: its parser buffers what arrives, slices each frame's payload out of that
buffer and then drops it from the front (three copies of every byte downloaded, in Python generators); the
download then ran at three quarters of the emulator's ceiling. Here a data frame's payload is not copied at all
before the local socket's write. What websockets checks on a data frame is checked here as well (mask, reserved
bits, opcode, fragmentation order, message size), with its close codes; anything unusual for Bastion (a text
frame) goes, with everything after it, to websockets' parser.
"""

import os
import struct
from typing import Callable, List, Optional, Tuple

from websockets.frames import apply_mask  # its C speedup where built, re-exported

from ..dataplane.tls import Bytes

MASK_POOL = 4096                # masking keys drawn from the OS 1024 at a time (one getrandom call, not one each)

_CONT, _TEXT, _BINARY = 0x0, 0x1, 0x2
_PROTOCOL_ERROR, _MESSAGE_TOO_BIG = 1002, 1009


class MaskKeys:  # pylint: disable=too-few-public-methods
    """Fresh 4-byte masking keys from os.urandom, as RFC 6455 section 5.3 asks (unpredictable, one per frame).
    One per relay: an event loop's callbacks take keys one at a time."""

    def __init__(self) -> None:
        self._pool = b''
        self._next = 0

    def take(self) -> bytes:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(MASK_POOL), 0
        key = self._pool[self._next:self._next + 4]
        self._next += 4
        return key


def binary_frame(data: Bytes, mask: bytes) -> List[Bytes]:
    """One final, masked binary frame carrying ``data`` (RFC 6455 section 5.2; a client masks every frame, with a
    fresh random key), as websockets' Frame.serialize writes it, in two pieces, header and payload, so the payload
    is not copied again (TLS puts the header into the payload's first record: dataplane.tls.full_records).
    ``mask``: the frame's key, from MaskKeys."""
    length = len(data)
    if length < 126:
        header = struct.pack('!BB', 0x82, 0x80 | length) + mask
    elif length < 65536:
        header = struct.pack('!BBH', 0x82, 0xFE, length) + mask
    else:
        header = struct.pack('!BBQ', 0x82, 0xFF, length) + mask
    return [header, apply_mask(data, mask)]


class ServerFrameReader:  # pylint: disable=too-many-instance-attributes,too-few-public-methods
    """Reads the server's side of a websocket from its byte stream, fed in pieces of any size.

    ``on_data(view)``: a piece of a data frame's payload, in order (a view of the fed bytes: the caller must not
    change them while it holds it). ``on_other(view)``: bytes of any other frame, header included, in order and
    complete, for websockets' parser - control frames, and once ``passthrough`` is set, everything. Frames go to
    the one or the other whole, so that parser always starts at a frame's first byte.

    ``error``: (close code, reason) once a frame broke the protocol; nothing more is read, the rest is dropped (the
    caller fails the websocket with it). ``max_size``: the largest message accepted (None: no limit)."""

    def __init__(self, on_data: Callable[[memoryview], None], on_other: Callable[[memoryview], None],
                 max_size: Optional[int] = None):
        self.on_data = on_data
        self.on_other = on_other
        self.max_size = max_size
        self.passthrough = False
        self.error: Optional[Tuple[int, str]] = None
        self._header = b''          # the start of a header that a piece cut off
        self._data_left = 0         # payload bytes of the current data frame still to come
        self._other_left = 0        # bytes of the current control frame still to come
        self._in_message = False    # a fragmented message has begun and not ended
        self._message_size = 0

    def feed(self, data: Bytes) -> None:
        view = memoryview(data)
        position, end = 0, len(view)
        while position < end and self.error is None:
            if self.passthrough:
                self.on_other(view[position:])
                return
            if self._data_left:
                taken = min(self._data_left, end - position)
                self.on_data(view[position:position + taken])
                self._data_left -= taken
                position += taken
            elif self._other_left:
                taken = min(self._other_left, end - position)
                self.on_other(view[position:position + taken])
                self._other_left -= taken
                position += taken
            else:
                position = self._read_header(view, position)

    def _read_header(self, view: memoryview, position: int) -> int:
        """Read one header from ``view`` at ``position`` (with any start of it kept from the previous piece); return
        where its payload starts, or the end of ``view`` when the header is not complete yet."""
        start = self._header + bytes(view[position:position + 14 - len(self._header)])
        if len(start) < 2:
            self._header = start
            return len(view)
        first, second = start[0], start[1]
        size = second & 0x7F
        length_bytes = 2 if size == 126 else 8 if size == 127 else 0
        header_size = 2 + length_bytes + (4 if second & 0x80 else 0)
        if len(start) < header_size:
            self._header = start
            return len(view)
        consumed = header_size - len(self._header)      # bytes of this header in this piece
        self._header = b''
        if length_bytes:
            size = int.from_bytes(start[2:2 + length_bytes], 'big')
        header = start[:header_size]
        opcode = first & 0x0F
        if opcode >= 0x8:                               # control frame: websockets answers it
            self.on_other(memoryview(header))
            self._other_left = size
        elif opcode == _TEXT and not self._in_message and not first & 0x70:
            self.passthrough = True                     # not Bastion's: websockets validates it and what follows
            self.on_other(memoryview(header))
        else:
            self._data_frame(first, second, opcode, size)
        return position + consumed

    def _data_frame(self, first: int, second: int, opcode: int, size: int) -> None:
        message_size = (self._message_size if opcode == _CONT else 0) + size
        error = _data_frame_error(first, second, opcode, self._in_message, message_size, self.max_size)
        if error is not None:
            self._fail(*error)
            return
        self._in_message = not first & 0x80
        self._message_size = message_size if self._in_message else 0
        self._data_left = size

    def _fail(self, code: int, reason: str) -> None:
        self.error = (code, reason)         # and nothing more is read: the connection is failing


def _data_frame_error(first: int, second: int, opcode: int, in_message: bool, message_size: int,
                      max_size: Optional[int]) -> Optional[Tuple[int, str]]:
    """Why websockets would refuse this data frame from a server, with its close code; None when it is fine."""
    if second & 0x80:
        reason = 'incorrect masking'
    elif first & 0x70:
        reason = 'reserved bits must be 0'
    elif opcode not in (_CONT, _BINARY):
        reason = 'expected a continuation frame' if opcode == _TEXT else f'invalid opcode: {opcode}'
    elif opcode == _CONT and not in_message:
        reason = 'unexpected continuation frame'
    elif opcode == _BINARY and in_message:
        reason = 'expected a continuation frame'
    elif max_size is not None and message_size > max_size:
        return _MESSAGE_TOO_BIG, f'over size limit ({message_size} > {max_size} bytes)'
    else:
        return None
    return _PROTOCOL_ERROR, reason
