"""Test doubles for the data plane: a scripted HTTP(S) server."""

import asyncio


class ScriptedServer:
    """A loopback HTTP server (HTTPS with ``ssl_context``) that plays a script: it reads each request (head and
    Content-Length body) and answers it with ``answer(number)`` -> bytes, a list of byte strings written with
    ``pause`` seconds between them (a None in it closes the connection there), or None to close the connection
    without a word. Counts connections and
    requests; ``paths`` lists each request's method and path."""

    def __init__(self, answer, pause=0.0, ssl_context=None):
        self.answer = answer
        self.pause = pause
        self.connections = 0
        self.requests = 0
        self.paths = []
        self._ssl = ssl_context
        self._server = None

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._handle, '127.0.0.1', 0, ssl=self._ssl)
        return self

    async def __aexit__(self, *_):
        self._server.close()

    @property
    def netloc(self):
        return f'127.0.0.1:{self._server.sockets[0].getsockname()[1]}'

    @property
    def url(self):
        return f'{"https" if self._ssl else "http"}://{self.netloc}'

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b'\r\n\r\n')
                self.paths.append(b' '.join(head.split(b' ', 2)[:2]).decode('latin-1'))
                for line in head.split(b'\r\n'):
                    if line.lower().startswith(b'content-length:'):
                        await reader.readexactly(int(line.split(b':')[1]))
                self.requests += 1
                parts = self.answer(self.requests)
                if parts is None:
                    return
                for number, part in enumerate([parts] if isinstance(parts, bytes) else parts):
                    if part is None:
                        return
                    if number:
                        await asyncio.sleep(self.pause)
                    writer.write(part)
                    await writer.drain()
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()
