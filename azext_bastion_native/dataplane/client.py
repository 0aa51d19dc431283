# --------------------------------------------------------------------------------------------
# The data-plane client: the asyncio layer over protocol.py. HTTPS calls (mint, delete) run on the event
# loop over kept-alive TLS connections (https.py: no thread hop, no handshake per session); through a
# proxy they go through requests on a small, bounded worker pool instead (requests speaks CONNECT). The
# websocket is websockets' asyncio client, over a TLS connection opened while the session is minted
# (warm.py). Every minted session is recorded until it is deleted, so aclose() can delete whatever is
# still live on exit (upstream leaks them), and journaled (journal.py) so that the next run deletes it when this
# one is killed before it could.
# --------------------------------------------------------------------------------------------
"""Mint, open and delete Bastion data-plane sessions."""

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Optional, Set, TypeVar
from urllib.parse import urlsplit

from . import protocol
from .errors import AnswerLostError, DataPlaneError, NotSentError, SessionUnavailableError, WebsocketOpenError
from .https import KeepAliveHttps
from .journal import SessionJournal
from .protocol import Endpoint, HttpAnswer, HttpRequest, RetryPolicy, Session, Target
from .redact import WebsocketLogger, install_log_redaction, redact_text
from .settings import ConnectionSettings
from .warm import WarmConnections
from .websocket import OpenedWebsocket, open_websocket

logger = logging.getLogger(__name__)
T = TypeVar('T')
_websocket_logger = WebsocketLogger(logging.getLogger(__name__ + '.websocket'))

HTTP_TIMEOUT = (10, 30)         # (connect, read) seconds for each data-plane HTTPS call
HTTP_WORKERS = 8                # concurrent HTTPS calls (and token fetches); beyond that they queue (bounded)


@dataclass(frozen=True)
class WebsocketOptions:
    """Websocket limits: the largest frame accepted (``max_size`` bytes), and seconds for the opening and the
    closing handshake. Flow control is the relay's (relay/pump.py). Compression is off (payloads are usually
    TLS/SSH: incompressible), and no keepalive pings are sent: upstream never sent any, and a host that did not
    answer them would have its tunnels cut."""
    max_size: int = 4 * 1024 * 1024
    open_timeout: float = 15.0
    close_timeout: float = 5.0


class DataPlaneClient:  # pylint: disable=too-many-instance-attributes
    """One per command run. ``get_arm_token()`` is asked for every session (so a long-lived tunnel never presents
    an expired token), on a worker thread unless its ``peek()`` (see tokens.CachedToken) has a valid one at hand.
    ``http_session``: a requests.Session to send every HTTPS call through (tests); ``prewarm``: open each
    websocket's TLS connection while its session is minted; ``journal``: where sessions are written down while
    they live, and whose orphans (left by runs that are gone) this client deletes once: at
    start_orphan_cleanup(), its first mint or aclose(), whichever comes first."""

    def __init__(self, endpoint: Endpoint, get_arm_token: Callable[[], str],  # pylint: disable=too-many-arguments
                 settings: Optional[ConnectionSettings] = None, retry: Optional[RetryPolicy] = None,
                 websocket_options: Optional[WebsocketOptions] = None, http_session: Any = None,
                 prewarm: bool = True, journal: Optional[SessionJournal] = None):
        install_log_redaction()
        self.endpoint = endpoint
        self._get_arm_token = get_arm_token
        self.settings = settings or ConnectionSettings.from_environ()
        self.retry = retry or RetryPolicy()
        self.websocket_options = websocket_options or WebsocketOptions()
        if not self.settings.verify:
            logger.warning('TLS certificate verification of the Bastion data plane is disabled '
                           '(AZURE_CLI_DISABLE_CONNECTION_VERIFICATION is set).')
        self._executor = concurrent.futures.ThreadPoolExecutor(HTTP_WORKERS, thread_name_prefix='bastion-http')
        self._ssl = self.settings.ssl_context()
        self._https = KeepAliveHttps(self._ssl, *HTTP_TIMEOUT, max_connections=HTTP_WORKERS,
                                     user_agent=self.settings.user_agent)
        self._requests = http_session           # created on first use through a proxy
        self._requests_given = http_session is not None
        self._verify = self.settings.requests_verify()
        self._warm = WarmConnections(self._ssl, self.websocket_options.open_timeout) if prewarm else None
        self._live: Dict[str, Session] = {}     # auth_token -> Session, minted and not yet deleted
        self._live_lock = threading.Lock()
        self._inflight: Set['asyncio.Future[Any]'] = set()     # mints/deletes/worker calls (waited for on close)
        self._proxies: Dict[str, Optional[str]] = {}    # endpoint host -> proxy URL or None, read once per run
        self._data_pods: Dict[Target, str] = {}         # Developer SKU: the host /api/connection named, asked once
        self._data_pod_lock = asyncio.Lock()
        self._closing = False
        self._journal = journal
        self._orphans_asked = journal is None

    # -- sessions --------------------------------------------------------------------------------
    @property
    def live_sessions(self) -> List[Session]:
        with self._live_lock:
            return list(self._live.values())

    async def mint(self, target: Target) -> Session:
        """Mint a session for ``target``. A failure is tried again (per the retry policy) only when Bastion
        certainly did not create a session (protocol.may_send_again): never blindly, since a session whose mint
        answer got lost can never be deleted."""
        if self._closing:
            raise DataPlaneError('The tunnel is shutting down.')
        self.start_orphan_cleanup()
        warm_host = self._warm_host()
        warm = self._warm if warm_host else None
        if warm is not None and warm_host:
            warm.open(warm_host)
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    return await self._detached(self._mint_once(target))
                except SessionUnavailableError as err:
                    delay = self.retry.delay(attempt, err.retry_after) if protocol.may_send_again(err) else None
                    if delay is None:
                        raise
                    logger.debug('session request failed (%s); retry %d in %.2fs', err.status, attempt, delay)
                    await asyncio.sleep(delay)
        except BaseException:
            if warm is not None and warm_host:
                warm.cancel_one(warm_host)
            raise

    async def delete(self, session: Session) -> bool:
        """Delete ``session``; True when it is gone. Never raises for HTTP or network failures."""
        if self._closing:
            return False            # aclose() deletes what is left
        return await self._detached(self._delete_once(session))

    async def connect(self, session: Session) -> OpenedWebsocket:
        """Open the session's websocket (binary frames both ways), for the relay to drive."""
        from websockets.exceptions import InvalidStatus, WebSocketException
        proxy = self._proxy_for(session.endpoint_host)
        options = self.websocket_options
        warm = await self._warm.take(session.endpoint_host) if self._warm is not None and not proxy else None
        headers = {'Origin': protocol.websocket_origin(session.endpoint_host)}
        if self.settings.user_agent:
            headers['User-Agent'] = self.settings.user_agent
        try:
            websocket = await open_websocket(
                protocol.websocket_url(session), ssl_context=self._ssl, warm=warm, proxy=proxy, proxy_ssl=self._ssl,
                headers=headers, max_size=options.max_size, open_timeout=options.open_timeout,
                close_timeout=options.close_timeout, logger=_websocket_logger)
        except InvalidStatus as err:
            status = err.response.status_code
            raise WebsocketOpenError(f'Bastion refused the tunnel websocket (HTTP {status}).', status) from None
        except (OSError, asyncio.TimeoutError, WebSocketException) as err:
            # The exception text may quote the URL; report its kind and our own redacted words only.
            raise WebsocketOpenError(f'Could not open the tunnel websocket to {session.endpoint_host}: '
                                     f'{redact_text(str(err)) or type(err).__name__}') from None
        # Its TLS session (ticket) lets the next connection skip the full handshake.
        remember = getattr(self._ssl, 'remember', None)
        ssl_object = websocket.ssl_object
        if remember is not None and ssl_object is not None and not proxy:
            remember(ssl_object)
        return websocket

    async def aclose(self, timeout: float = 10.0) -> None:
        """Delete every session still live (waiting, bounded, for mints in flight) and release resources."""
        self.start_orphan_cleanup()
        self._closing = True
        pending = [future for future in list(self._inflight) if not future.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        leftovers = self.live_sessions
        if leftovers:
            try:
                results = await asyncio.wait_for(asyncio.gather(
                    *(self._delete_once(session) for session in leftovers), return_exceptions=True), timeout)
            except asyncio.TimeoutError:
                results = []
            logger.debug('deleted %d of %d live sessions on exit', sum(r is True for r in results), len(leftovers))
        if self._warm is not None:
            self._warm.close()
        self._https.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._requests is not None:
            self._requests.close()
        if self._journal is not None:
            self._journal.close()

    def start_orphan_cleanup(self) -> None:
        """Start deleting the journaled sessions of runs that are gone, once per client (mint() and aclose() call
        it; a service that may wait long for its first connection calls it as it starts)."""
        if not self._orphans_asked:
            self._orphans_asked = True
            self._detached(self._delete_orphans())

    async def _delete_orphans(self) -> None:
        """Delete the journaled sessions of runs that are gone (killed before they could); no ARM token needed."""
        assert self._journal is not None
        try:
            orphans = self._journal.claim_orphans()
        except OSError as err:
            logger.debug('could not read the session journal: %s', err.strerror or err)
            return
        if orphans:
            results = await asyncio.gather(*(self._delete_once(session) for session in orphans),
                                           return_exceptions=True)
            logger.info('deleted %d of %d Bastion sessions left open by runs that ended without deleting them',
                        sum(result is True for result in results), len(orphans))

    # -- the calls -----------------------------------------------------------------------------------
    def _detached(self, coroutine: Coroutine[Any, Any, T]) -> 'asyncio.Future[T]':
        """Run ``coroutine`` as its own task, tracked until done: a caller cancelled meanwhile does not stop it,
        so a session minted for it is still recorded (and deleted by aclose())."""
        task = asyncio.ensure_future(coroutine)
        self._inflight.add(task)
        task.add_done_callback(self._call_done)
        return asyncio.shield(task)

    def _call_done(self, future: 'asyncio.Future[Any]') -> None:
        self._inflight.discard(future)
        if not future.cancelled():
            future.exception()      # retrieved: a failure whose caller has gone is not reported twice

    async def _arm_token(self) -> str:
        peek = getattr(self._get_arm_token, 'peek', None)
        token = peek() if peek is not None else None
        if token is None:
            future = asyncio.wrap_future(self._executor.submit(self._get_arm_token))
            self._inflight.add(future)
            future.add_done_callback(self._call_done)
            token = await future
        return token

    async def _mint_once(self, target: Target) -> Session:
        arm_token = await self._arm_token()
        secrets = (arm_token,)
        host = await self._session_host(target, arm_token)
        answer = await self._send(protocol.mint_request(host, target, arm_token))
        self._check_unavailable(answer, secrets)
        session = protocol.parse_mint(answer, host, self.endpoint.developer, secrets)
        with self._live_lock:
            self._live[session.auth_token] = session
        if self._journal is not None:
            try:
                self._journal.record(session)
            except OSError as err:
                logger.warning('could not journal a Bastion session (%s): if this run is killed, it stays open',
                               err.strerror or err)
        return session

    async def _session_host(self, target: Target, arm_token: str) -> str:
        """Where sessions are minted, deleted and connected: the host itself, or for the Developer SKU the data pod
        that /api/connection names, asked once per command and target, as upstream does (custom.py asks
        developer_sku_helper._get_data_pod once, then its tunnel mints every session on that host)."""
        if not self.endpoint.developer:
            return self.endpoint.host
        async with self._data_pod_lock:
            if target not in self._data_pods:
                answer = await self._send(protocol.developer_connection_request(self.endpoint, target, arm_token))
                self._check_unavailable(answer, (arm_token,))
                self._data_pods[target] = protocol.parse_developer_connection(answer, (arm_token,))
            return self._data_pods[target]

    async def _delete_once(self, session: Session) -> bool:
        try:
            answer = await self._send(protocol.delete_request(session))
        except DataPlaneError as err:
            logger.debug('session delete failed: %s', err)
            return False
        gone = protocol.delete_succeeded(answer)
        if gone:
            with self._live_lock:
                self._live.pop(session.auth_token, None)
            if self._journal is not None:
                self._journal.forget(session)
        else:
            logger.debug('session delete answered HTTP %d', answer.status)
        return gone

    @staticmethod
    def _check_unavailable(answer: HttpAnswer, secrets: Iterable[str]) -> None:
        if answer.status in protocol.UNAVAILABLE_STATUSES:
            raise SessionUnavailableError(
                f'Bastion could not start the tunnel session (HTTP {answer.status}): '
                f'{protocol.error_message(answer, secrets) or "no details"}', answer.status,
                retry_after=answer.headers.get('retry-after'))

    # -- transports ------------------------------------------------------------------------------------
    def _proxy_for(self, endpoint_host: str) -> Optional[str]:
        # Asked several times per connection; reading the proxy variables walks the whole environment.
        if endpoint_host not in self._proxies:
            host, _, port = endpoint_host.partition(':')
            self._proxies[endpoint_host] = self.settings.proxy_for(host, int(port or 443))
        return self._proxies[endpoint_host]

    def _warm_host(self) -> Optional[str]:
        """The host whose websocket a mint will open, when it is known before the mint and reached directly."""
        if self._warm is None or self.endpoint.developer:     # Developer: the node is named by /api/connection
            return None
        return None if self._proxy_for(self.endpoint.host) else self.endpoint.host

    async def _send(self, request: HttpRequest) -> HttpAnswer:
        netloc = urlsplit(request.url).netloc
        if not self._requests_given and not self._proxy_for(netloc):
            return await self._https.send(request)
        future = asyncio.wrap_future(self._executor.submit(self._send_with_requests, request))
        self._inflight.add(future)
        future.add_done_callback(self._call_done)
        return await future

    def _send_with_requests(self, request: HttpRequest) -> HttpAnswer:
        import requests
        with self._live_lock:
            if self._requests is None:
                self._requests = requests.Session()
                self._requests.mount('https://', requests.adapters.HTTPAdapter(pool_connections=4,
                                                                               pool_maxsize=HTTP_WORKERS))
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session-level setting.
            headers = {'User-Agent': self.settings.user_agent, **request.headers}
            response = self._requests.request(request.method, request.url, headers=headers, data=request.form,
                                              json=request.json_body, timeout=HTTP_TIMEOUT, allow_redirects=False,
                                              verify=self._verify)
        except requests.RequestException as err:
            # requests' messages quote the URL (and so the auth token of a DELETE): name the kind only.
            error = NotSentError if _never_sent(err) else AnswerLostError
            raise error(f'Could not reach the Bastion data plane at {urlsplit(request.url).netloc} '
                        f'({type(err).__name__}).') from None
        return HttpAnswer(response.status_code, response.content,
                          {key.lower(): value for key, value in response.headers.items()})


def _never_sent(error: Exception) -> bool:
    """Whether requests failed before the request could leave: no connection to the host or the proxy, or its TLS
    handshake failed. Anything later (a read timeout, a dropped connection) may have reached Bastion."""
    import requests
    import urllib3.exceptions
    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError,
                          requests.exceptions.SSLError)):
        return True
    reason = getattr(error.args[0], 'reason', None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)     # DNS failures included
