"""Loopback TCP servers that stand in for a VM's port, the one home of their server loops: the tests run each on an
asyncio loop of its own in a daemon thread (``start_*``, used as plainly as a socket address); the benchmark
(bench/backends.py) serves them (``serve_*``) in a process of its own.

- echo echoes every byte back; on the client's EOF it half-closes after echoing.
- sink/source sends ``send_bytes`` deterministic bytes (:func:`source_bytes`) on each connection, then half-closes
  (or closes, with ``close_after_send``), while counting and discarding what the client sends into one preallocated
  buffer (no allocation per read, so that a benchmark's sink costs what the kernel's copy costs). With
  ``send_bytes=0`` it is a pure sink: it never closes first (a relay treats the VM's EOF as the end).

Each finished connection is recorded (``on_done``; the thread servers keep them in ``.connections``): bytes received
and bytes sent (what was sent is ``source_bytes(sent)``).
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Optional

CHUNK = 1 << 20
LOOPBACK = "127.0.0.1"


@dataclass
class ConnectionRecord:
    received: int = 0
    sent: int = 0


OnDone = Callable[[ConnectionRecord], None]


@functools.lru_cache(maxsize=None)
def _source_block(seed: bytes = b"bastion-emulator") -> bytes:
    return hashlib.shake_256(seed).digest(CHUNK)


def source_bytes(count: int, seed: bytes = b"bastion-emulator") -> bytes:
    """The exact bytes a sink/source server sends for `count` (deterministic, so tests can check them)."""
    block = _source_block(seed)
    repeats, rest = divmod(count, CHUNK)
    return block * repeats + block[:rest]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_done: Optional[OnDone]) -> None:
    record = ConnectionRecord()
    try:
        while data := await reader.read(CHUNK):
            record.received += len(data)
            writer.write(data)
            record.sent += len(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
        if on_done is not None:
            on_done(record)


class _SinkSource(asyncio.BufferedProtocol):  # pylint: disable=too-many-instance-attributes
    """One connection of a sink/source server: sends while it counts, closes when both directions are done."""

    def __init__(self, send_bytes: int, close_after_send: bool, on_received: Optional[Callable[[int], None]],
                 on_done: Optional[OnDone]):
        self._send_bytes = send_bytes
        self._close_after_send = close_after_send
        self._on_received = on_received
        self._on_done = on_done
        self._record = ConnectionRecord()
        self._buffer = bytearray(4 * CHUNK)
        self._writable = asyncio.Event()
        self._writable.set()
        self._sent_all = send_bytes == 0
        self._client_done = False
        self._transport: Optional[asyncio.Transport] = None
        self._sender: Optional[asyncio.Task[None]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._send_bytes:
            self._sender = asyncio.get_running_loop().create_task(self._send(transport))

    async def _send(self, transport: asyncio.Transport) -> None:
        block = memoryview(_source_block())
        remaining = self._send_bytes
        while remaining > 0:
            if transport.is_closing():
                return
            chunk = block[:min(remaining, CHUNK)]
            transport.write(chunk)
            self._record.sent += len(chunk)
            remaining -= len(chunk)
            await self._writable.wait()         # the transport's flow control, as a stream's drain()
        if transport.is_closing():
            return
        if self._close_after_send:
            transport.close()
            return
        transport.write_eof()
        self._sent_all = True
        self._close_when_done()

    def _close_when_done(self) -> None:
        if self._sent_all and self._client_done and self._transport is not None:
            self._transport.close()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._record.received += nbytes
        if self._on_received is not None:
            self._on_received(nbytes)

    def eof_received(self) -> bool:
        self._client_done = True
        self._close_when_done()
        return True                             # half-open: what is left to send still goes

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._writable.set()                    # a paused sender sees the transport closing and stops
        if self._on_done is not None:
            self._on_done(self._record)


async def serve_echo(on_done: Optional[OnDone] = None, host: str = LOOPBACK, port: int = 0) -> asyncio.Server:
    """An echo server on the running loop."""
    return await asyncio.start_server(lambda reader, writer: _echo(reader, writer, on_done), host, port,
                                      limit=4 * CHUNK)


async def serve_sink_source(send_bytes: Callable[[], int] = lambda: 0, close_after_send: bool = False,
                            on_received: Optional[Callable[[int], None]] = None, on_done: Optional[OnDone] = None,
                            host: str = LOOPBACK, port: int = 0) -> asyncio.Server:
    """A sink/source server on the running loop. ``send_bytes()`` is asked as each connection opens (the benchmark
    changes it between runs); ``on_received(n)`` hears every read as it is counted."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _SinkSource(send_bytes(), close_after_send, on_received, on_done), host, port)


@dataclass
class LoopbackServer:
    host: str
    port: int
    connections: list[ConnectionRecord] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def stop(self) -> None:
        if self._loop is None or self._loop.is_closed():
            return

        async def _close():
            self._server.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve_on_a_thread(serve: Callable[[LoopbackServer], Awaitable[asyncio.Server]]) -> LoopbackServer:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = LoopbackServer(LOOPBACK, 0)

    def run():
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve(holder))
        holder.port = server.sockets[0].getsockname()[1]
        holder._server = server
        ready.set()
        loop.run_forever()
        loop.close()

    holder._loop = loop
    holder._thread = threading.Thread(target=run, name="loopback-backend", daemon=True)
    holder._thread.start()
    if not ready.wait(10):
        raise RuntimeError("loopback backend did not start")
    return holder


def start_echo_server() -> LoopbackServer:
    return _serve_on_a_thread(lambda holder: serve_echo(on_done=holder.connections.append))


def start_sink_source(send_bytes: int = 0, close_after_send: bool = False) -> LoopbackServer:
    return _serve_on_a_thread(lambda holder: serve_sink_source(
        lambda: send_bytes, close_after_send, on_done=holder.connections.append))
