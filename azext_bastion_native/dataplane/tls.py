"""Client TLS over a plain asyncio TCP transport, with the ssl module's memory BIOs (the way asyncio's own SSL
transport works inside), for the tunnel websockets.

Why not asyncio's SSL transport: it keeps a 256 KiB read buffer per connection (a quarter of a MiB for every open
tunnel connection, whether it carries anything or not) and runs a state machine of its own around every read and
write. Here the relay decrypts straight from its socket reads into one buffer shared by all connections of its
event loop, and encrypts in the callback that has the bytes, so a connection costs what the TLS library keeps.
"""

import asyncio
import ssl
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Union, cast

# What the engine reads and writes: the one alias for it (relay/ imports it from here).
Bytes = Union[bytes, bytearray, memoryview]
HANDSHAKE_READ = 16 * 1024      # read, and plaintext taken, per call while opening (a TLS record is at most 16 KiB)
RECORD_SIZE = 16 * 1024         # the most plaintext one TLS record carries, so one read (RFC 8446 section 5.1)
FEED_SIZE = 4 * RECORD_SIZE     # ciphertext put into a session at once: what its buffer keeps per connection


class TlsSession:
    """One client TLS session: feed it what arrives, take what it wants sent. ``context`` None: no TLS at all
    (ws:// in tests), every call passes bytes through."""

    def __init__(self, context: Optional[ssl.SSLContext], server_hostname: str):
        self.ssl_object: Optional[ssl.SSLObject] = None
        self.closed = False             # the peer sent close_notify, or the connection ended
        if context is not None:
            self._incoming = ssl.MemoryBIO()
            self._outgoing = ssl.MemoryBIO()
            self._ssl = self.ssl_object = context.wrap_bio(self._incoming, self._outgoing,
                                                           server_hostname=server_hostname)

    def handshake(self) -> bool:
        """One step of the handshake; True once it is complete. Raises ssl.SSLError when it failed."""
        if self.ssl_object is None:
            return True
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def feed(self, data: Bytes) -> None:
        """Ciphertext that arrived."""
        self._incoming.write(data)

    def read_into(self, buffer: memoryview) -> int:
        """Decrypt into ``buffer``; 0 when nothing (more) is readable for now, or the peer closed (``closed``)."""
        try:
            count = cast(int, self._ssl.read(len(buffer), buffer))
        except ssl.SSLWantReadError:
            return 0
        except ssl.SSLZeroReturnError:
            count = 0
        if not count:       # the ssl module answers a close_notify with 0 bytes (or SSLZeroReturnError)
            self.closed = True
        return count

    def output(self) -> bytes:
        """Ciphertext to send (b'' when none)."""
        return self._outgoing.read() if self._outgoing.pending else b''

    def close_notify(self) -> bytes:
        """Our close_notify, in answer to the peer's (a server may wait for it before closing the connection)."""
        if self.ssl_object is None:
            return b''
        try:
            self.ssl_object.unwrap()
        except ssl.SSLError:
            pass
        return self.output()

    def receive(self, data: Bytes, buffer: memoryview, deliver: Callable[[Any], None]) -> None:
        """``data`` arrived: hand its plaintext to ``deliver``, decrypted into ``buffer`` (each piece is used up
        before the next overwrites it)."""
        if self.ssl_object is None:
            deliver(data)
            return
        self.feed(data)
        while True:
            count = self.read_into(buffer)
            if not count:
                return
            deliver(buffer[:count])

    def decrypt(self, data: Bytes, deliver: Callable[[bytes], None]) -> None:
        """``data`` arrived: hand its plaintext to ``deliver``, a record at a time, each in a bytes object of its
        own (decrypted straight into it; a transport may keep views of it in its write buffer)."""
        if self.ssl_object is None:
            deliver(bytes(data))
            return
        # Fed FEED_SIZE at a time: fed a record at a time, the download cost a sixth more CPU; the session's
        # buffer keeps the size of the most ever fed at once, for the connection's life.
        incoming, session = self._incoming, self._ssl
        for start in range(0, len(data), FEED_SIZE):
            incoming.write(data[start:start + FEED_SIZE])
            while True:
                try:
                    plaintext = session.read(RECORD_SIZE)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    plaintext = b''
                if not plaintext:
                    self.closed = True
                    return
                deliver(plaintext)
                # Nothing buffered either side: no read, and no SSLWantReadError raised and caught, per record.
                if not incoming.pending and not session.pending():
                    break

    def send(self, transport: asyncio.WriteTransport, chunks: Iterable[Bytes]) -> None:
        """Encrypt ``chunks`` and write them to ``transport``, in one write: as full records (a short chunk, such
        as a frame's header, shares the next chunk's record rather than going out as a record of its own), taken
        out of the TLS session one at a time: its buffer keeps the size of the most ever put in at once, for the
        connection's life - a record, not a frame (the benchmark's bursts: 0.13 -> 0.09 MiB per connection)."""
        if self.ssl_object is None:
            transport.writelines(chunks)
            return
        encrypted = []
        for piece in full_records(chunks):
            self._ssl.write(piece)
            encrypted.append(self._outgoing.read())
        # One bytes object: uvloop's writelines of four cost more than joining them (measured).
        transport.write(encrypted[0] if len(encrypted) == 1 else b''.join(encrypted))


def full_records(chunks: Iterable[Bytes]) -> Iterator[Bytes]:
    """``chunks`` cut and joined into pieces of RECORD_SIZE bytes (the last one shorter), copying only what a
    piece joins from two chunks."""
    size = RECORD_SIZE
    carry = b''
    for chunk in chunks:
        view = memoryview(chunk)
        if carry:
            fill = size - len(carry)
            carry += view[:fill]
            view = view[fill:]
            if len(carry) < size:
                continue
            yield carry
        whole = len(view) - len(view) % size
        for start in range(0, whole, size):
            yield view[start:start + size]
        carry = bytes(view[whole:])
    if carry:
        yield carry


class TlsConnection(asyncio.Protocol):
    """A TCP connection's protocol while its TLS handshake runs and then while it waits, idle, to be taken over
    (warm.py, websocket.py). ``ready`` resolves once the handshake is done. Nothing may arrive unasked while idle:
    the server closing it or sending application data spoils it (TLS 1.3 session tickets are fine)."""

    def __init__(self, context: Optional[ssl.SSLContext], server_hostname: str):
        self.tls = TlsSession(context, server_hostname)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]   # set by connection_made
        self.ready: 'asyncio.Future[None]' = asyncio.get_running_loop().create_future()
        self.spoiled = False
        self.opened = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport      # type: ignore[assignment]   # a stream transport (uvloop's are no subclasses)
        self._step()

    def data_received(self, data: bytes) -> None:
        if self.tls.ssl_object is None:
            self._spoil()
            return
        self.tls.feed(data)
        if not self.ready.done():
            self._step()
        elif self.tls.read_into(memoryview(bytearray(HANDSHAKE_READ))) or self.tls.closed:
            self._spoil()

    def eof_received(self) -> None:
        self._spoil()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.spoiled = True
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionResetError('the server closed the connection during TLS set-up'))

    def _step(self) -> None:
        try:
            done = self.tls.handshake()
        except (ssl.SSLError, ssl.CertificateError) as err:
            self.ready.set_exception(err)
            self.transport.abort()
            return
        if self.tls.ssl_object is not None:
            output = self.tls.output()
            if output:
                self.transport.write(output)
        if done:
            self.ready.set_result(None)

    def _spoil(self) -> None:
        self.spoiled = True
        self.transport.abort()

    def usable(self, max_idle: float) -> bool:
        return not self.spoiled and not self.transport.is_closing() and time.monotonic() - self.opened <= max_idle


async def connect_tls(host: str, port: int, context: Optional[ssl.SSLContext]) -> TlsConnection:
    """Open a TCP connection to ``host:port`` and complete its TLS handshake (none when ``context`` is None)."""
    _, connection = await asyncio.get_running_loop().create_connection(lambda: TlsConnection(context, host),
                                                                       host, port)
    try:
        await connection.ready
    except BaseException:
        if connection.transport is not None:
            connection.transport.abort()
        raise
    return connection


async def start_tls(transport: asyncio.Transport, context: Optional[ssl.SSLContext], host: str) -> TlsConnection:
    """TLS to ``host`` over an open ``transport`` (a proxy's CONNECT tunnel)."""
    connection = TlsConnection(context, host)
    transport.set_protocol(connection)
    connection.connection_made(transport)
    try:
        await connection.ready
    except BaseException:
        transport.abort()
        raise
    return connection
