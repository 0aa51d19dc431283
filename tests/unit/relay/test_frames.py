"""The relay's own framing (relay/frames.py), I/O-free: the server's frames read from pieces of any size, checked as
websockets checks them, and the client's masking keys."""

import os
import random

import pytest
from websockets.frames import Close, Frame, Opcode

from azext_bastion_native.relay.frames import MASK_POOL, MaskKeys, ServerFrameReader


def server_frame(opcode, data, fin=True, mask=False):
    return Frame(opcode, data, fin).serialize(mask=mask)


class Collected:
    """Runs a ServerFrameReader over pieces of a stream and keeps what it handed on, in order."""

    def __init__(self, max_size=None):
        self.events = []
        self.reader = ServerFrameReader(lambda view: self._keep('data', view), lambda view: self._keep('other', view),
                                        max_size)

    def _keep(self, kind, view):
        assert isinstance(view, memoryview)
        if self.events and self.events[-1][0] == kind:
            self.events[-1] = (kind, self.events[-1][1] + bytes(view))
        else:
            self.events.append((kind, bytes(view)))

    def feed(self, stream, cuts):
        previous = 0
        for cut in list(cuts) + [len(stream)]:
            self.reader.feed(stream[previous:cut])
            previous = cut
        return self

    def of(self, kind):
        return b''.join(data for event, data in self.events if event == kind)


PING = server_frame(Opcode.PING, b'are you there')
CLOSE = server_frame(Opcode.CLOSE, Close(1000, 'bye').serialize())
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 70000)


def a_session_of_frames():
    """What a server may send: messages of every length boundary, a fragmented one with a ping inside it, a close."""
    payloads = [os.urandom(size) for size in SIZES]
    stream = b''.join(server_frame(Opcode.BINARY, data) for data in payloads)
    parts = [os.urandom(300), os.urandom(70000), b'', os.urandom(5)]
    stream += server_frame(Opcode.BINARY, parts[0], fin=False) + PING
    stream += server_frame(Opcode.CONT, parts[1], fin=False) + server_frame(Opcode.CONT, parts[2], fin=False)
    stream += server_frame(Opcode.CONT, parts[3]) + CLOSE
    return stream, b''.join(payloads + parts)


@pytest.mark.parametrize('piece', [1, 2, 3, 5, 13, 1000, 16384, 1 << 30])
def test_payloads_and_control_frames_come_out_in_order_whatever_the_pieces(piece):
    stream, payload = a_session_of_frames()
    collected = Collected().feed(stream, range(piece, len(stream), piece))
    assert collected.of('data') == payload
    assert [kind for kind, _ in collected.events] == ['data', 'other', 'data', 'other']
    assert collected.events[1][1] == PING and collected.events[3][1] == CLOSE   # whole frames, headers included
    assert collected.reader.error is None and not collected.reader.passthrough


def test_random_cuts_give_the_same_bytes():
    stream, payload = a_session_of_frames()
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        collected = Collected().feed(stream, cuts)
        assert collected.of('data') == payload and collected.of('other') == PING + CLOSE


@pytest.mark.parametrize('frame, error', [
    (server_frame(Opcode.BINARY, b'x', mask=True), (1002, 'incorrect masking')),
    (bytes([0xC2, 0x01]) + b'x', (1002, 'reserved bits must be 0')),
    (server_frame(Opcode.CONT, b'x'), (1002, 'unexpected continuation frame')),
    (bytes([0x83, 0x01]) + b'x', (1002, 'invalid opcode: 3')),
    (server_frame(Opcode.BINARY, b'x' * 101), (1009, 'over size limit (101 > 100 bytes)')),
], ids=['masked', 'reserved-bit', 'continuation-first', 'opcode-3', 'too-big'])
def test_a_frame_websockets_would_refuse_is_refused_with_its_close_code(frame, error):
    collected = Collected(max_size=100).feed(server_frame(Opcode.BINARY, b'ok') + frame + b'never read', [3])
    assert collected.reader.error == error
    assert collected.events == [('data', b'ok')]        # nothing of the bad frame or after it is handed on


def test_fragments_are_checked_in_order_and_the_message_size_counts_them_all():
    start = server_frame(Opcode.BINARY, b'a' * 60, fin=False)
    assert Collected().feed(start + server_frame(Opcode.BINARY, b'b'), []).reader.error == (
        1002, 'expected a continuation frame')
    assert Collected().feed(start + server_frame(Opcode.TEXT, b'b'), []).reader.error == (
        1002, 'expected a continuation frame')
    too_big = Collected(max_size=100).feed(start + server_frame(Opcode.CONT, b'c' * 41), [])
    assert too_big.reader.error == (1009, 'over size limit (101 > 100 bytes)')
    fits = Collected(max_size=100).feed(start + server_frame(Opcode.CONT, b'c' * 40) + server_frame(
        Opcode.BINARY, b'd' * 100), [])
    assert fits.reader.error is None and fits.of('data') == b'a' * 60 + b'c' * 40 + b'd' * 100


def test_a_text_frame_and_all_after_it_go_to_websockets_parser():
    text = server_frame(Opcode.TEXT, 'héllo'.encode())
    after = server_frame(Opcode.BINARY, b'later')
    collected = Collected().feed(server_frame(Opcode.BINARY, b'first') + text + after, [9])
    assert collected.reader.passthrough
    assert collected.events == [('data', b'first'), ('other', text + after)]


def test_masking_keys_are_fresh_per_frame_across_pool_refills():
    source = MaskKeys()
    keys = [source.take() for _ in range(3 * MASK_POOL // 4)]
    assert all(len(key) == 4 for key in keys)
    assert len(set(keys)) > len(keys) * 0.99          # 32 random bits each: a repeat is rare, a cycle is a bug
