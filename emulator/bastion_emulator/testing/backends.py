"""Loopback TCP servers that stand in for a VM's port in relay tests and the benchmark.

Each server runs its own asyncio loop in a daemon thread, so synchronous tests and benchmark scripts can use
it as plainly as a socket address:

- :func:`start_echo_server` echoes every byte back; on the client's EOF it half-closes after echoing.
- :func:`start_sink_source` sends ``send_bytes`` pseudo-random bytes on each connection, then half-closes
  (or closes, with ``close_after_send``), while counting and discarding what the client sends. With
  ``send_bytes=0`` it is a pure sink: it never closes first (a relay treats the VM's EOF as the end). Each finished
  connection is recorded in ``.connections`` (bytes received, bytes sent, SHA-256 of what was sent).
"""
from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass, field

CHUNK = 1 << 20


@dataclass
class ConnectionRecord:
    received: int = 0
    sent: int = 0
    sent_sha256: str = ""


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


def _serve(handler_factory) -> LoopbackServer:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = LoopbackServer("127.0.0.1", 0)
    handler = handler_factory(holder)

    def run():
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(handler, "127.0.0.1", 0, limit=4 * CHUNK))
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
    def factory(holder: LoopbackServer):
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
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
                holder.connections.append(record)
        return echo
    return _serve(factory)


def source_bytes(count: int, seed: bytes = b"bastion-emulator") -> bytes:
    """The exact bytes a sink/source server sends for `count` (deterministic, so tests can check them)."""
    block = hashlib.shake_256(seed).digest(min(count, CHUNK)) if count else b""
    repeats, rest = divmod(count, len(block) or 1)
    return block * repeats + block[:rest]


def start_sink_source(send_bytes: int = 0, close_after_send: bool = False) -> LoopbackServer:
    payload_block = hashlib.shake_256(b"bastion-emulator").digest(CHUNK) if send_bytes else b""

    def factory(holder: LoopbackServer):
        async def sink_source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            record = ConnectionRecord()
            digest = hashlib.sha256()

            async def send():
                remaining = send_bytes
                while remaining > 0:
                    chunk = payload_block[:min(remaining, CHUNK)]
                    writer.write(chunk)
                    digest.update(chunk)
                    record.sent += len(chunk)
                    remaining -= len(chunk)
                    await writer.drain()
                if close_after_send:
                    writer.close()
                elif send_bytes:
                    writer.write_eof()

            async def sink():
                while data := await reader.read(CHUNK):
                    record.received += len(data)

            try:
                if close_after_send:
                    await send()
                else:
                    await asyncio.gather(send(), sink())
            except OSError:
                pass
            finally:
                writer.close()
                record.sent_sha256 = digest.hexdigest()
                holder.connections.append(record)
        return sink_source
    return _serve(factory)
