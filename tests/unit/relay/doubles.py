"""Test doubles for the relay engine: loopback websocket servers and a fake data-plane client."""

import asyncio
import contextlib
import itertools
import socket
import threading

from websockets.asyncio.server import serve

from azext_bastion_native.dataplane.errors import SessionRefusedError
from azext_bastion_native.dataplane.websocket import open_websocket
from azext_bastion_native.relay.pump import LocalEnd


async def echo_handler(websocket):
    async for message in websocket:
        await websocket.send(message)


@contextlib.contextmanager
def echo_server_on_a_thread():
    """An echo WebsocketServer on a thread and loop of its own, for code under test that runs its own event loop
    (the stdio proxy, LocalTunnel); yields its ws:// URL and stops it on exit."""
    ready, done = threading.Event(), threading.Event()
    box = {}

    def serve_websockets():
        async def main():
            async with WebsocketServer(echo_handler) as server:
                box['url'] = server.url
                ready.set()
                await asyncio.get_running_loop().run_in_executor(None, done.wait)
        asyncio.run(main())

    threading.Thread(target=serve_websockets, daemon=True).start()
    ready.wait(5)
    try:
        yield box['url']
    finally:
        done.set()


class WebsocketServer:
    """``async with WebsocketServer(handler) as server``: a ws:// server on a free loopback port."""

    def __init__(self, handler):
        self.handler = handler
        self.url = None
        self._server = None

    async def __aenter__(self):
        self._server = await serve(self.handler, '127.0.0.1', 0, compression=None, max_size=None,
                                   close_timeout=1)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f'ws://127.0.0.1:{port}/'
        return self

    async def __aexit__(self, *_):
        self._server.close()
        await self._server.wait_closed()


class FakeDataPlane:
    """Quacks like DataPlaneClient: sessions are names, the websocket goes to a loopback test server."""

    def __init__(self, url, refuse=False):
        self.url = url
        self.refuse = refuse
        self.live = set()
        self.minted = 0
        self.closed = False
        self.orphan_cleanups = 0
        self._ids = itertools.count(1)

    def start_orphan_cleanup(self):
        self.orphan_cleanups += 1

    async def mint(self, target):
        if self.refuse:
            raise SessionRefusedError('Bastion refused the tunnel session (HTTP 401): not allowed', 401)
        session = f'session-{next(self._ids)}'
        self.minted += 1
        self.live.add(session)
        return session

    async def connect(self, session):
        return await open_websocket(self.url, ssl_context=None, close_timeout=2, max_size=None)

    async def delete(self, session):
        self.live.discard(session)
        return True

    async def aclose(self, timeout=10.0):
        self.closed = True
        self.live.clear()


async def local_pair():
    """A LocalEnd for the relay, and the user's end as a plain non-blocking socket."""
    ours, theirs = socket.socketpair()
    _, local = await asyncio.get_running_loop().create_connection(LocalEnd, sock=ours)
    theirs.setblocking(False)
    return local, theirs
