"""HTTP/1.1 exchanges of the data plane (mint, delete, Developer's /api/connection) over h11, free of I/O.

h11 (python-hyper) parses the answer to RFC 9112; this module adds the data plane's own bounds on top: the size of
an answer, the number of interim (1xx) answers, the status range, and whether the connection may carry another
request (never when anything arrived beyond the answer). The asyncio layer (https.py) only moves bytes.
"""

import json
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode, urlsplit

import h11

from .protocol import HttpAnswer, HttpRequest

MAX_HEAD = 16 * 1024            # status line + headers, a chunk-size line, trailers: each at most this long
MAX_BODY = 1024 * 1024          # data-plane answers are small JSON documents
MAX_WIRE = 4 * MAX_BODY         # every byte of one answer, framing and interim answers included
MAX_INTERIM = 8                 # 1xx answers before the real one


class HttpProtocolError(Exception):
    """The server's answer is not HTTP/1.1 we accept."""


def request_head_and_body(request: HttpRequest, user_agent: str) -> Tuple[List[Tuple[str, str]], bytes]:
    """The request's headers and body: form or JSON body, Host from the URL, keep-alive. ``ValueError`` for a
    header value h11 would refuse to send (a line break)."""
    url = urlsplit(request.url)
    headers = {'Host': url.netloc, 'User-Agent': user_agent, 'Accept': '*/*'}
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
        if any(ch in f'{name}{value}' for ch in '\r\n\0'):
            raise ValueError(f'header {name} holds a line break')
    return list(headers.items()), body


class ClientConnection:
    """The HTTP/1.1 state of one connection to one host: ``send(request)`` gives the bytes to write, then
    ``receive(data)`` is fed what arrives (``b''`` at EOF) until it returns the answer. Afterwards ``reusable``
    tells whether the next request may use this connection. Any other use raises HttpProtocolError."""

    def __init__(self, user_agent: str = 'bastion-native'):
        self._user_agent = user_agent
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._reset()

    def _reset(self) -> None:
        self._head: Tuple[int, Dict[Any, Any]] = (0, {})      # the real answer's status and headers, once they came
        self._body = bytearray()
        self._received = 0
        self._interim = 0
        self.answer: Optional[HttpAnswer] = None

    @property
    def started(self) -> bool:
        """Any byte of the current answer has arrived."""
        return self._received > 0

    @property
    def reusable(self) -> bool:
        """The answer is complete, both sides agreed to keep the connection, and nothing arrived beyond it."""
        connection = self._h11
        return (self.answer is not None and connection.our_state is h11.DONE and connection.their_state is h11.DONE
                and connection.trailing_data == (b'', False))

    def send(self, request: HttpRequest) -> bytes:
        if self.answer is not None:
            if not self.reusable:
                raise HttpProtocolError('the connection cannot carry another request')
            self._h11.start_next_cycle()
            self._reset()
        headers, body = request_head_and_body(request, self._user_agent)
        url = urlsplit(request.url)
        target = (url.path or '/') + (f'?{url.query}' if url.query else '')
        try:
            data = self._h11.send(h11.Request(method=request.method, target=target, headers=headers))
            if body:
                data += self._h11.send(h11.Data(data=body))
            data += self._h11.send(h11.EndOfMessage())
        except h11.ProtocolError as err:
            raise ValueError(f'cannot send this request: {err}') from None
        return data

    def receive(self, data: bytes) -> Optional[HttpAnswer]:
        """Feed bytes as they arrive (``b''``: the server closed the connection); the answer once complete."""
        if self.answer is not None:
            raise HttpProtocolError('data after the end of the answer')
        self._received += len(data)
        if self._received > MAX_WIRE:
            raise HttpProtocolError('answer too large')
        try:
            self._h11.receive_data(data)
            while self.answer is None:
                event = self._h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return None
                self._on_event(event)
        except h11.ProtocolError as err:
            raise HttpProtocolError(str(err)) from None
        return self.answer

    def _on_event(self, event: object) -> None:
        if isinstance(event, h11.InformationalResponse):
            # An interim answer (100 Continue, 103 Early Hints): the real one follows; a stream of them does not.
            self._interim += 1
            if event.status_code == 101 or self._interim > MAX_INTERIM:
                raise HttpProtocolError('too many interim answers' if self._interim > MAX_INTERIM
                                        else 'an unasked protocol switch')
        elif isinstance(event, h11.Response):
            if not 200 <= event.status_code <= 599:     # RFC 9110 15: three digits, 1xx to 5xx
                raise HttpProtocolError(f'status code {event.status_code} out of range')
            headers: Dict[str, str] = {}
            for raw_name, raw_value in event.headers:
                name, value = raw_name.decode('latin-1'), raw_value.decode('latin-1')
                headers[name] = f'{headers[name]}, {value}' if name in headers else value
            length = headers.get('content-length')
            if length is not None and int(length) > MAX_BODY:     # h11 has checked it is plain digits
                raise HttpProtocolError('answer body too large')
            self._head = (event.status_code, headers)
        elif isinstance(event, h11.Data):
            self._body += event.data
            if len(self._body) > MAX_BODY:
                raise HttpProtocolError('answer body too large')
        elif isinstance(event, h11.EndOfMessage):
            self.answer = HttpAnswer(self._head[0], bytes(self._body), self._head[1])
        elif isinstance(event, h11.ConnectionClosed):
            raise HttpProtocolError('the connection closed before the answer was complete')
