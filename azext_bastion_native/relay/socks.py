"""The server side of SOCKS5 (RFC 1928) as far as a relay needs it: CONNECT with no authentication. No I/O: feed
the client's bytes to a ServerHandshake, send what ``data_to_send()`` returns, and once ``request`` is set, answer it
with ``reply()``. Anything else (another SOCKS version, authentication only, BIND or UDP ASSOCIATE, an unknown
address type) ends in a failure reply where the protocol has one, and ``failed`` says why in words."""

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Optional

from ..dataplane.tls import Bytes

VERSION = 5
NO_AUTHENTICATION = 0x00
NO_ACCEPTABLE_METHOD = 0xFF
CONNECT = 0x01
RESERVED = 0x00


class AddressType(enum.IntEnum):
    IPV4 = 0x01
    DOMAIN = 0x03
    IPV6 = 0x04


class Reply(enum.IntEnum):
    """RFC 1928 section 6, the REP field."""
    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02              # connection not allowed by ruleset
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class SocksRefused(Exception):
    """A CONNECT that is answered with ``reply`` (not SUCCEEDED); the message says why, for the one log line."""

    def __init__(self, reply: Reply, message: str):
        super().__init__(message)
        self.reply = reply
        self.message = message


@dataclass(frozen=True)
class ConnectRequest:
    """What the client asked to reach: a host name (socks5h: the client left resolving to us) or an IP address."""
    host: str
    port: int
    address_type: AddressType

    @property
    def label(self) -> str:
        host = f'[{self.host}]' if self.address_type is AddressType.IPV6 else self.host
        return f'{host}:{self.port}'


class _State(enum.Enum):
    METHODS = 'methods'         # waiting for the version/method selection message
    REQUEST = 'request'         # method chosen, waiting for the request
    ANSWERING = 'answering'     # request read: the caller answers it with reply()
    DONE = 'done'               # replied (or failed): nothing more is read


def encode_reply(code: Reply) -> bytes:
    """A reply with the bound address 0.0.0.0:0: a CONNECT client has no use for it (curl, OpenBSD nc, ssh's
    -D clients and Chromium ignore it), and the local address would only tell it which loopback port answered."""
    return struct.pack('!BBBB4sH', VERSION, code, RESERVED, AddressType.IPV4, bytes(4), 0)


class ServerHandshake:
    """One client's SOCKS5 greeting and request. ``receive_data(data)`` consumes bytes as they arrive (any cut);
    ``data_to_send()`` returns what to write (the method choice, a failure reply); ``request`` is the CONNECT
    request once complete, with ``rest`` the bytes the client sent after it (data before our reply, kept for the
    target); ``failed``: why the handshake ended without a request, the connection to be closed once what
    data_to_send() returned is written."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._out = bytearray()
        self._state = _State.METHODS
        self.request: Optional[ConnectRequest] = None
        self.rest = b''
        self.failed: Optional[str] = None

    @property
    def done(self) -> bool:
        """No more bytes are needed: a request to answer, or a failure."""
        return self._state in (_State.ANSWERING, _State.DONE)

    def receive_data(self, data: Bytes) -> None:
        if self.done:
            if self._state is _State.ANSWERING:
                self.rest += bytes(data)
            return
        self._buffer += data
        if self._state is _State.METHODS:
            self._read_methods()
        if self._state is _State.REQUEST:
            self._read_request()

    def receive_eof(self) -> None:
        if not self.done:
            self._fail('the client closed the connection during the SOCKS5 handshake')

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def reply(self, code: Reply) -> bytes:
        """The answer to the request (only once): SUCCEEDED, then the connection relays; else close after it."""
        if self._state is not _State.ANSWERING:
            raise RuntimeError('no SOCKS5 request to answer')
        self._state = _State.DONE
        return encode_reply(code)

    # -- internals ---------------------------------------------------------------------------------------------
    def _fail(self, why: str, answer: Optional[bytes] = None) -> None:
        self._state = _State.DONE
        self.failed = why
        self._buffer.clear()
        if answer is not None:
            self._out += answer

    def _read_methods(self) -> None:
        if len(self._buffer) < 2:
            return
        version, count = self._buffer[0], self._buffer[1]
        if version != VERSION:
            # Another protocol (SOCKS4 starts with 4, an HTTP proxy request with a letter): SOCKS5 has no answer
            # it would read.
            self._fail(f'not a SOCKS5 client (version byte {version})')
            return
        if len(self._buffer) < 2 + count:
            return
        methods = self._buffer[2:2 + count]
        del self._buffer[:2 + count]
        if NO_AUTHENTICATION not in methods:
            self._fail('the client offers no SOCKS5 method without authentication, the only one served',
                       bytes((VERSION, NO_ACCEPTABLE_METHOD)))
            return
        self._out += bytes((VERSION, NO_AUTHENTICATION))
        self._state = _State.REQUEST

    def _read_request(self) -> None:
        if len(self._buffer) < 5:       # VER CMD RSV ATYP and the first address byte (a name's length)
            return
        version, command, _, address_type = self._buffer[:4]
        if version != VERSION:
            self._fail(f'not a SOCKS5 request (version byte {version})', encode_reply(Reply.GENERAL_FAILURE))
            return
        if address_type == AddressType.IPV4:
            size = 4
        elif address_type == AddressType.IPV6:
            size = 16
        elif address_type == AddressType.DOMAIN:
            size = 1 + self._buffer[4]
        else:
            self._fail(f'address type {address_type} is not one SOCKS5 defines',
                       encode_reply(Reply.ADDRESS_TYPE_NOT_SUPPORTED))
            return
        end = 4 + size + 2
        if len(self._buffer) < end:
            return
        if command != CONNECT:
            name = {0x02: 'BIND', 0x03: 'UDP ASSOCIATE'}.get(command, f'command {command}')
            self._fail(f'{name} is not served (CONNECT only)', encode_reply(Reply.COMMAND_NOT_SUPPORTED))
            return
        address = bytes(self._buffer[4:4 + size])
        (port,) = struct.unpack('!H', self._buffer[end - 2:end])
        if address_type == AddressType.DOMAIN:
            try:
                host = address[1:].decode('ascii')
            except UnicodeDecodeError:
                self._fail('the host name is not ASCII', encode_reply(Reply.HOST_UNREACHABLE))
                return
        else:
            host = str(ipaddress.ip_address(address))
        self.request = ConnectRequest(host, port, AddressType(address_type))
        self.rest = bytes(self._buffer[end:])
        self._buffer.clear()
        self._state = _State.ANSWERING
