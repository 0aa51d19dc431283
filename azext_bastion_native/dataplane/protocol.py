"""Build data-plane requests and parse their answers (no network, no azure.cli), so that every wire detail is
testable without a socket. Each request matches what Microsoft's own client sends: Azure/azure-cli-extensions
src/bastion/azext_bastion/tunnel.py (mint, websocket, delete) and developer_sku_helper.py (/api/connection)."""

import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional
from urllib.parse import quote

from .errors import DataPlaneError, NotSentError, SessionRefusedError, SessionUnavailableError
from .redact import redact_text

TUNNEL_PROTOCOL = 'tcptunnel'
# Statuses that mean "Bastion cannot serve this now" (SessionUnavailableError) rather than a refusal.
UNAVAILABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Of those, the ones whose Retry-After says Bastion turned the request away without acting on it.
SEND_AGAIN_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Target:
    """Where the tunnel goes: a VM resource id (or the IP-connect pseudo resource) and a port."""
    resource_id: str
    port: int
    hostname: Optional[str] = None      # IP connect only: the private IP the host connects to

    @classmethod
    def for_ip(cls, subscription_id: str, resource_group: str, ip_address: str, port: int) -> 'Target':
        """IP connect names the target with Bastion's bh-hostConnect pseudo resource plus ``hostname``."""
        resource_id = (f'/subscriptions/{subscription_id}/resourceGroups/{resource_group}'
                       f'/providers/Microsoft.Network/bh-hostConnect/{ip_address}')
        return cls(resource_id=resource_id, port=int(port), hostname=ip_address)


@dataclass(frozen=True)
class Endpoint:
    """The Bastion host's data-plane address (its ``dnsName``) and which URL family it speaks."""
    host: str
    developer: bool = False             # Developer / QuickConnect SKU: /api/connection and /omni/webtunnel
    bastion_resource_id: str = ''       # needed by /api/connection only


@dataclass(frozen=True)
class Session:
    """One minted data-plane session. Secrets stay out of repr() so a stray log line cannot leak them."""
    endpoint_host: str
    developer: bool
    node_id: str
    auth_token: str = field(repr=False)
    websocket_token: str = field(repr=False)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Optional[Mapping[str, str]] = field(default=None, repr=False)
    json_body: Optional[Mapping[str, object]] = field(default=None, repr=False)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b''
    headers: Mapping[str, str] = field(default_factory=dict)   # keys lower-case


def developer_connection_request(endpoint: Endpoint, target: Target, arm_token: str) -> HttpRequest:
    """Developer/QuickConnect: ask the host which data-plane host serves this target."""
    return HttpRequest('POST', f'https://{endpoint.host}/api/connection', json_body={
        'resourceId': target.resource_id,
        'bastionResourceId': endpoint.bastion_resource_id,
        'vmPort': str(target.port),     # a string, as upstream sends its untyped --resource-port (_params.py)
        'azToken': arm_token,
        'connectionType': 'nativeclient',
    })


def parse_developer_connection(answer: HttpAnswer, secrets: Iterable[str] = ()) -> str:
    """The answer's body is the host to use (plain text, or a JSON string)."""
    _raise_for_status(answer, 'Bastion (Developer SKU) refused the connection', secrets)
    text = answer.body.decode('utf-8', 'replace').strip()
    if text.startswith('"'):
        try:
            text = json.loads(text)
        except ValueError:
            pass
    host = text.strip().removeprefix('https://').removeprefix('wss://').rstrip('/')
    if not host or any(ch.isspace() for ch in host) or '/' in host:
        raise DataPlaneError('Bastion (Developer SKU) answered /api/connection without a usable host name.',
                             answer.status)
    return host


def mint_request(endpoint_host: str, target: Target, arm_token: str) -> HttpRequest:
    """The form upstream's tunnel.py (_get_auth_token) posts. It sets ``'token': None``, which requests leaves out
    of a form body, so the field is never on the wire: neither is it here."""
    form = {
        'resourceId': target.resource_id,
        'protocol': TUNNEL_PROTOCOL,
        'workloadHostPort': str(target.port),
        'aztoken': arm_token,
    }
    if target.hostname:
        form['hostname'] = target.hostname
    return HttpRequest('POST', f'https://{endpoint_host}/api/tokens', form=form)


def parse_mint(answer: HttpAnswer, endpoint_host: str, developer: bool, secrets: Iterable[str] = ()) -> Session:
    _raise_for_status(answer, 'Bastion refused the tunnel session', secrets)
    try:
        data = json.loads(answer.body)
        return Session(endpoint_host=endpoint_host, developer=developer, node_id=str(data.get('nodeId') or ''),
                       auth_token=str(data['authToken']), websocket_token=str(data['websocketToken']))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataPlaneError('Bastion answered the session request without authToken/websocketToken.',
                             answer.status) from None


def websocket_origin(endpoint_host: str) -> str:
    """The Origin header of the websocket handshake, as upstream's websocket library (websocket-client,
    websocket/_handshake.py ``_get_handshake_headers``) sends it for a wss:// URL: ``https://`` and the host, its
    port left out when it is 443. Upstream's tunnel.py passes no origin of its own."""
    host, _, port = endpoint_host.rpartition(':') if ':' in endpoint_host else (endpoint_host, '', '')
    return f'https://{host}' if port in ('', '443') else f'https://{endpoint_host}'


# The largest binary frame to send Bastion. Known to work: upstream's tunnel.py (_listen_to_client) sends each
# read of the local socket, at most 4096 bytes, as one unfragmented frame (websocket-client send_binary), and
# third-party clients used against real hosts send up to 64 KiB per frame (a 65536-byte read buffer, e.g. the Rust
# tunnel of rysweet/azlin). Nothing bigger is known to work, so no relay frame should exceed this.
MAX_UPLOAD_FRAME = 64 * 1024


def websocket_url(session: Session) -> str:
    token = quote(session.websocket_token, safe='')
    if session.developer:
        return f'wss://{session.endpoint_host}/omni/webtunnel/{token}'
    return f'wss://{session.endpoint_host}/webtunnelv2/{token}?X-Node-Id={quote(session.node_id, safe="")}'


def delete_request(session: Session) -> HttpRequest:
    """X-Node-Id only when Bastion gave a node id, as upstream's tunnel.py (``cleanup``) sends it: never empty."""
    headers = {'X-Node-Id': session.node_id} if session.node_id else {}
    return HttpRequest('DELETE', f'https://{session.endpoint_host}/api/tokens/{quote(session.auth_token, safe="")}',
                       headers=headers)


def delete_succeeded(answer: HttpAnswer) -> bool:
    """200/204 deleted; 404 means it is already gone, which is just as good."""
    return answer.status in (200, 204, 404)


def error_message(answer: HttpAnswer, secrets: Iterable[str] = ()) -> str:
    """Bastion's own words from an error body (JSON ``message`` or short text), with secrets removed."""
    text = answer.body.decode('utf-8', 'replace').strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            text = str(data.get('message') or data.get('error', {}).get('message', '') or text)
    except (ValueError, AttributeError):
        pass
    text = ' '.join(text.split())[:300]
    return redact_text(text, secrets)


def _raise_for_status(answer: HttpAnswer, what: str, secrets: Iterable[str]) -> None:
    if 200 <= answer.status < 300:
        return
    message = error_message(answer, secrets) or 'no details'
    text = f'{what} (HTTP {answer.status}): {message}'
    if answer.status in UNAVAILABLE_STATUSES:
        raise SessionUnavailableError(text, answer.status, retry_after=answer.headers.get('retry-after'))
    raise SessionRefusedError(text, answer.status)


def may_send_again(error: DataPlaneError) -> bool:
    """Whether a failed POST (mint, /api/connection) may be sent again. Only when Bastion certainly did not act on
    it: a session minted by a first try whose answer got lost can never be deleted (only the answer carries its
    authToken), so it would stay open on the host. Certain are: no connection could be opened (nothing was sent),
    and 429/503 with Retry-After (Bastion turned the request away and said when to come back). Not certain, so
    never sent again: a read failure after the request was written, and 500/502/504 (a gateway may give up on a
    backend that then finishes the mint)."""
    if isinstance(error, NotSentError):
        return True
    return (isinstance(error, SessionUnavailableError) and error.status in SEND_AGAIN_STATUSES
            and parse_retry_after(error.retry_after) is not None)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for 429/5xx: ``attempts`` tries in all, waits doubling from ``base_delay``, each wait
    capped at ``max_delay``; a server's Retry-After wins when given (also capped)."""
    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: Optional[str] = None, now: Optional[float] = None) -> Optional[float]:
        """Seconds to wait before try ``attempt + 1`` (attempt counts from 1), or None when out of tries."""
        if attempt >= self.attempts:
            return None
        wait = parse_retry_after(retry_after, now)
        if wait is None:
            wait = self.base_delay * (2 ** (attempt - 1))
        return max(0.0, min(wait, self.max_delay))


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
