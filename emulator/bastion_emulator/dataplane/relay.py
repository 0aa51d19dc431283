"""Relay between one data-plane websocket (aiohttp server side) and the TCP endpoint standing in for the VM.

Built not to be the benchmark's bottleneck: reads up to 1 MiB at a time, one binary frame per read, no
per-chunk logging, and awaits only where backpressure needs it (aiohttp's frame writer and StreamWriter.drain
return at once unless their buffers are over the high-water mark).

Close semantics (what we found the stacks allow):
- Client closes first (websocket Close frame): aiohttp, with ``autoclose=False``, hands us the Close and still
  lets us send binary frames before answering it. We shut the TCP write side (``write_eof``) and keep
  relaying what the VM sends until the VM closes (or ``HALF_CLOSE_LINGER`` passes), then answer the Close
  with 1000. RFC 6455 allows this; the `websockets` client queues those frames during its closing handshake,
  so a client that keeps reading gets them.
- VM closes first: everything it sent has been framed already; we close the websocket with 1000.
- Connection drops (no Close frame): we close the TCP side at once.
"""
from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

READ_SIZE = 1 << 20                 # bytes per TCP read and per websocket frame, at most
HALF_CLOSE_LINGER = 10.0            # seconds the VM may keep answering after the client's Close
CLOSE_WAIT = 5.0                    # seconds we wait for the client's side of the close handshake


class TunnelRelay:
    def __init__(self, ws: web.WebSocketResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 stats: dict, *, transport: asyncio.BaseTransport | None = None, drop_after: int | None = None):
        self._ws = ws
        self._reader = reader
        self._writer = writer
        self._stats = stats
        self._transport = transport         # the websocket's own connection, cut for the drop fault
        self._drop_after = drop_after
        self._sent_down = 0
        self._client_sent_close = False
        self.outcome = "open"

    async def run(self) -> str:
        """Relay until both sides are done; returns how it ended: closed-by-vm, closed-by-client, dropped..."""
        up = asyncio.create_task(self._client_to_vm())
        down = asyncio.create_task(self._vm_to_client())
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if up in done and not down.done() and self._client_sent_close:
                # Half-close: the client is done sending; let the VM finish its answer.
                await asyncio.wait({down}, timeout=HALF_CLOSE_LINGER)
            elif down in done and not up.done():
                await asyncio.wait({up}, timeout=CLOSE_WAIT)
        finally:
            for task in (up, down):
                task.cancel()
            self._writer.close()
            if not self._ws.closed:
                await self._ws.close(code=1000)
        return self.outcome

    def stop(self, code: int, reason: str) -> None:
        """End the relay from outside (session deleted or disconnected by an administrator)."""
        self.outcome = "stopped"
        self._writer.close()
        if not self._ws.closed:
            asyncio.ensure_future(self._ws.close(code=code, message=reason.encode()))

    async def _client_to_vm(self) -> None:
        ws, writer, stats = self._ws, self._writer, self._stats
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.BINARY:
                    data = msg.data
                elif msg.type is WSMsgType.TEXT:
                    data = msg.data.encode()
                else:
                    self._client_sent_close = msg.type is WSMsgType.CLOSE
                    break
                writer.write(data)
                stats["bytes_client_to_vm"] += len(data)
                await writer.drain()
            if self._client_sent_close and self.outcome == "open":
                self.outcome = "closed-by-client"
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, RuntimeError, OSError):
            pass

    async def _vm_to_client(self) -> None:
        reader, ws, stats = self._reader, self._ws, self._stats
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                if self._drop_after is not None and self._sent_down + len(data) >= self._drop_after:
                    await self._drop(data[:self._drop_after - self._sent_down])
                    return
                await ws.send_bytes(data)
                self._sent_down += len(data)
                stats["bytes_vm_to_client"] += len(data)
        except (ConnectionError, RuntimeError, OSError):
            return
        if self.outcome == "open":
            self.outcome = "closed-by-vm"
        if not ws.closed:
            await ws.close(code=1000)

    async def _drop(self, last: bytes) -> None:
        """The drop fault: deliver exactly N bytes, then cut the connection without a Close frame."""
        if last:
            await self._ws.send_bytes(last)
            self._sent_down += len(last)
            self._stats["bytes_vm_to_client"] += len(last)
        self.outcome = "dropped"
        self._stats["websockets_dropped"] += 1
        if self._transport is not None:
            # abort() discards unsent bytes: wait until the last frame has left, then cut.
            for _ in range(200):
                if self._transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
            self._transport.abort()
        self._writer.close()
