# --------------------------------------------------------------------------------------------
# The few HTTP/1.1 exchanges of the data plane (mint, delete, Developer's /api/connection) as bytes, free of
# I/O: encode a request, parse a response fed in pieces. The asyncio layer (https.py) only moves bytes.
# Enough of RFC 9112 for a JSON/text API: Content-Length and chunked bodies, bodiless statuses, keep-alive.
# --------------------------------------------------------------------------------------------
"""HTTP/1.1 request encoding and response parsing (no I/O)."""

import json
from typing import Optional
from urllib.parse import urlencode, urlsplit

from .protocol import HttpAnswer, HttpRequest

MAX_HEAD = 64 * 1024            # status line + headers
MAX_BODY = 4 * 1024 * 1024      # data-plane answers are small JSON documents


class HttpProtocolError(Exception):
    """The server's answer is not HTTP/1.1 we can read."""


def encode_request(request: HttpRequest, user_agent: str = 'bastion-native') -> bytes:
    """The request's bytes: form or JSON body, Host from the URL, keep-alive."""
    url = urlsplit(request.url)
    target = (url.path or '/') + (f'?{url.query}' if url.query else '')
    headers = {'Host': url.netloc, 'User-Agent': user_agent, 'Accept': '*/*', 'Connection': 'keep-alive'}
    body = b''
    if request.form is not None:
        body = urlencode(request.form).encode('ascii')
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    elif request.json_body is not None:
        body = json.dumps(request.json_body).encode('utf-8')
        headers['Content-Type'] = 'application/json'
    if body or request.method in ('POST', 'PUT', 'PATCH'):
        headers['Content-Length'] = str(len(body))
    headers.update(request.headers)
    for name, value in headers.items():
        if any(ch in f'{name}{value}' for ch in '\r\n'):
            raise ValueError(f'header {name} holds a line break')
    head = f'{request.method} {target} HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in headers.items())
    return head.encode('latin-1') + b'\r\n' + body


class ResponseParser:  # pylint: disable=too-many-instance-attributes
    """Feed bytes as they arrive; ``answer`` is set once the response is complete. ``keep_alive`` tells whether
    the connection may carry another request. ``feed_eof()`` ends a body delimited by the connection's close."""

    def __init__(self, method: str = 'GET'):
        self._method = method
        self._buffer = bytearray()
        self._status = None
        self._headers = None
        self._length = None         # bytes of body still expected (Content-Length), or None
        self._chunked = False
        self._until_close = False
        self._body = bytearray()
        self.keep_alive = True
        self.answer: Optional[HttpAnswer] = None

    @property
    def started(self) -> bool:
        """Any byte of the response has arrived."""
        return bool(self._buffer) or self._status is not None

    def feed(self, data: bytes) -> Optional[HttpAnswer]:
        if self.answer is not None:
            raise HttpProtocolError('data after the end of the response')
        self._buffer += data
        if self._status is None and not self._parse_head():
            return None
        if self._chunked:
            self._parse_chunks()
        elif self._until_close:
            self._take(len(self._buffer))
        else:
            self._take(min(self._length, len(self._buffer)))
            if self._length == 0:
                self._finish()
        return self.answer

    def feed_eof(self) -> Optional[HttpAnswer]:
        if self.answer is None and self._until_close and self._status is not None:
            self.keep_alive = False
            self._finish()
        if self.answer is None:
            raise HttpProtocolError('the connection closed before the response was complete')
        return self.answer

    def _take(self, count):
        self._body += self._buffer[:count]
        del self._buffer[:count]
        if self._length is not None:
            self._length -= count
        if len(self._body) > MAX_BODY:
            raise HttpProtocolError('response body too large')

    def _parse_head(self) -> bool:
        end = self._buffer.find(b'\r\n\r\n')
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise HttpProtocolError('response head too large')
            return False
        lines = bytes(self._buffer[:end]).decode('latin-1').split('\r\n')
        del self._buffer[:end + 4]
        parts = lines[0].split(' ', 2)
        if len(parts) < 2 or not parts[0].startswith('HTTP/1.') or not parts[1].isdigit():
            raise HttpProtocolError('not an HTTP/1.x status line')
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(':')
            if not colon:
                raise HttpProtocolError('malformed header line')
            name = name.strip().lower()
            headers[name] = f'{headers[name]}, {value.strip()}' if name in headers else value.strip()
        if 100 <= status < 200:         # interim answer (100 Continue): the real one follows
            return self._parse_head() if self._buffer else False
        self._status, self._headers = status, headers
        connection = headers.get('connection', '').lower()
        self.keep_alive = 'close' not in connection and (parts[0] != 'HTTP/1.0' or 'keep-alive' in connection)
        if self._method == 'HEAD' or status in (204, 304):
            self._length = 0
        elif 'chunked' in headers.get('transfer-encoding', '').lower():
            self._chunked = True
        elif 'content-length' in headers:
            try:
                self._length = int(headers['content-length'])
            except ValueError:
                raise HttpProtocolError('bad Content-Length') from None
            if self._length < 0 or self._length > MAX_BODY:
                raise HttpProtocolError('bad Content-Length')
        else:
            self._until_close = True
            self.keep_alive = False
        return True

    def _parse_chunks(self):
        while self.answer is None:
            if self._length:                        # inside a chunk: take what is there of it
                self._take(min(self._length, len(self._buffer)))
                if self._length:
                    return
            line_end = self._buffer.find(b'\r\n')
            if line_end < 0:
                return
            if self._length == 0:                   # the CRLF that ends a chunk's data
                if line_end != 0:
                    raise HttpProtocolError('chunk data longer than its size')
                del self._buffer[:2]
                self._length = None
                continue
            line = bytes(self._buffer[:line_end]).split(b';', 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise HttpProtocolError('bad chunk size') from None
            if size == 0:                           # last chunk; (ignored) trailers end with an empty line
                rest = self._buffer[line_end + 2:]
                if not (rest.startswith(b'\r\n') or b'\r\n\r\n' in rest):
                    return
                del self._buffer[:]
                self._finish()
                return
            del self._buffer[:line_end + 2]
            self._length = size

    def _finish(self):
        self.answer = HttpAnswer(self._status, bytes(self._body), self._headers)
