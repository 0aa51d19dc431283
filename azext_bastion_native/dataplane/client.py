# --------------------------------------------------------------------------------------------
# The data-plane client: the asyncio layer over protocol.py. HTTPS calls go through one kept-alive
# requests.Session on a small, bounded worker pool (never a thread per connection); the websocket is
# websockets' asyncio client. Every minted session is recorded until it is deleted, so aclose() can
# delete whatever is still live on exit (upstream leaks them).
# --------------------------------------------------------------------------------------------
"""Mint, open and delete Bastion data-plane sessions."""

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import protocol
from .errors import DataPlaneError, SessionUnavailableError, WebsocketOpenError
from .protocol import Endpoint, HttpAnswer, HttpRequest, RetryPolicy, Session, Target
from .redact import WebsocketLogger, install_log_redaction, redact_text
from .settings import ConnectionSettings

logger = logging.getLogger(__name__)
_websocket_logger = WebsocketLogger(logging.getLogger(__name__ + '.websocket'))

HTTP_TIMEOUT = (10, 30)         # (connect, read) seconds for each data-plane HTTPS call
HTTP_WORKERS = 8                # concurrent HTTPS calls; mints beyond that queue (bounded threads)


@dataclass(frozen=True)
class WebsocketOptions:
    """Websocket tuning. Flow control bounds memory per connection: at most ``max_queue`` received
    frames of ``max_size`` bytes wait for a slow local reader, and sends wait once ``write_limit``
    bytes are unsent. Compression is off (payloads are usually TLS/SSH: incompressible).
    No keepalive pings by default: upstream never sent any, and a host that did not answer them would
    have its tunnels cut after ping_timeout."""
    max_size: int = 4 * 1024 * 1024
    max_queue: int = 16
    write_limit: int = 256 * 1024
    open_timeout: float = 15.0
    close_timeout: float = 5.0
    ping_interval: Optional[float] = None


class DataPlaneClient:  # pylint: disable=too-many-instance-attributes
    """One per command run. ``get_arm_token()`` is called (on a worker thread) for every session, so a
    long-lived tunnel never presents an expired token."""

    def __init__(self, endpoint: Endpoint, get_arm_token: Callable[[], str],
                 settings: Optional[ConnectionSettings] = None, retry: Optional[RetryPolicy] = None,
                 websocket_options: Optional[WebsocketOptions] = None, http_session=None):
        import requests
        install_log_redaction()
        self.endpoint = endpoint
        self._get_arm_token = get_arm_token
        self.settings = settings or ConnectionSettings.from_environ()
        self.retry = retry or RetryPolicy()
        self.websocket_options = websocket_options or WebsocketOptions()
        if not self.settings.verify:
            logger.warning('TLS certificate verification of the Bastion data plane is disabled '
                           '(AZURE_CLI_DISABLE_CONNECTION_VERIFICATION is set).')
        self._http = http_session or requests.Session()
        self._verify = self.settings.requests_verify()
        self._http.verify = self._verify
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=HTTP_WORKERS)
        self._http.mount('https://', adapter)
        self._executor = concurrent.futures.ThreadPoolExecutor(HTTP_WORKERS, thread_name_prefix='bastion-http')
        self._ssl = self.settings.ssl_context()
        self._live = {}                 # auth_token -> Session, minted and not yet deleted
        self._live_lock = threading.Lock()
        self._inflight = set()          # concurrent futures of worker calls (waited for on close)
        self._closing = False

    # -- sessions --------------------------------------------------------------------------------
    @property
    def live_sessions(self):
        with self._live_lock:
            return list(self._live.values())

    async def mint(self, target: Target) -> Session:
        """Mint a session for ``target``, retrying 429/5xx/network failures per the retry policy."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._in_worker(self._mint_blocking, target)
            except SessionUnavailableError as err:
                delay = self.retry.delay(attempt, err.retry_after)
                if delay is None:
                    raise
                logger.debug('session request failed (%s); retry %d in %.2fs', err.status, attempt, delay)
                await asyncio.sleep(delay)

    async def delete(self, session: Session) -> bool:
        """Delete ``session``; True when it is gone. Never raises for HTTP or network failures."""
        try:
            return await self._in_worker(self._delete_blocking, session)
        except (DataPlaneError, RuntimeError) as err:
            logger.debug('session delete failed: %s', err)
            return False

    async def connect(self, session: Session):
        """Open the session's websocket (binary frames both ways)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException
        url = protocol.websocket_url(session)
        host, _, port = session.endpoint_host.partition(':')
        proxy = self.settings.proxy_for(host, int(port or 443))
        extra = {}
        if proxy and urlsplit(proxy).scheme == 'https':
            extra['proxy_ssl'] = self._ssl
        options = self.websocket_options
        try:
            return await connect(
                url, ssl=self._ssl, proxy=proxy, compression=None, logger=_websocket_logger,
                max_size=options.max_size, max_queue=options.max_queue, write_limit=options.write_limit,
                open_timeout=options.open_timeout, close_timeout=options.close_timeout,
                ping_interval=options.ping_interval, user_agent_header=None, **extra)
        except InvalidStatus as err:
            status = err.response.status_code
            raise WebsocketOpenError(f'Bastion refused the tunnel websocket (HTTP {status}).', status) from None
        except (OSError, asyncio.TimeoutError, WebSocketException) as err:
            # The exception text may quote the URL; report its kind and our own redacted words only.
            raise WebsocketOpenError(f'Could not open the tunnel websocket to {session.endpoint_host}: '
                                     f'{redact_text(str(err)) or type(err).__name__}') from None

    async def aclose(self, timeout: float = 10.0):
        """Delete every session still live (waiting, bounded, for mints in flight) and release resources."""
        self._closing = True
        pending = [asyncio.wrap_future(future) for future in list(self._inflight) if not future.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        leftovers = self.live_sessions
        if leftovers:
            results = await asyncio.wait_for(
                asyncio.gather(*(self._in_worker(self._delete_blocking, s, _closing_ok=True) for s in leftovers),
                               return_exceptions=True), timeout)
            logger.debug('deleted %d of %d live sessions on exit', sum(r is True for r in results), len(leftovers))
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # -- worker-thread side --------------------------------------------------------------------------
    def _in_worker(self, function, *args, _closing_ok=False):
        if self._closing and not _closing_ok:
            raise DataPlaneError('The tunnel is shutting down.')
        future = self._executor.submit(function, *args)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return asyncio.wrap_future(future)

    def _send(self, request: HttpRequest) -> HttpAnswer:
        import requests
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session-level setting.
            response = self._http.request(request.method, request.url, headers=dict(request.headers),
                                          data=request.form, json=request.json_body, timeout=HTTP_TIMEOUT,
                                          allow_redirects=False, verify=self._verify)
        except requests.RequestException as err:
            # requests' messages quote the URL (and so the auth token of a DELETE): name the kind only.
            raise SessionUnavailableError(f'Could not reach the Bastion data plane at '
                                          f'{urlsplit(request.url).netloc} ({type(err).__name__}).') from None
        return HttpAnswer(response.status_code, response.content,
                          {key.lower(): value for key, value in response.headers.items()})

    def _mint_blocking(self, target: Target) -> Session:
        arm_token = self._get_arm_token()
        secrets = (arm_token,)
        host = self.endpoint.host
        if self.endpoint.developer:
            answer = self._send(protocol.developer_connection_request(self.endpoint, target, arm_token))
            self._check_retryable(answer, secrets)
            host = protocol.parse_developer_connection(answer, secrets)
        answer = self._send(protocol.mint_request(host, target, arm_token))
        self._check_retryable(answer, secrets)
        session = protocol.parse_mint(answer, host, self.endpoint.developer, secrets)
        # Recorded here, on the worker, so a session minted for a caller that was cancelled meanwhile is
        # still deleted by aclose().
        with self._live_lock:
            self._live[session.auth_token] = session
        return session

    @staticmethod
    def _check_retryable(answer: HttpAnswer, secrets):
        if answer.status in protocol.RETRYABLE_STATUSES:
            raise SessionUnavailableError(
                f'Bastion could not start the tunnel session (HTTP {answer.status}): '
                f'{protocol.error_message(answer, secrets) or "no details"}', answer.status,
                retry_after=answer.headers.get('retry-after'))

    def _delete_blocking(self, session: Session) -> bool:
        answer = self._send(protocol.delete_request(session))
        gone = protocol.delete_succeeded(answer)
        if gone:
            with self._live_lock:
                self._live.pop(session.auth_token, None)
        else:
            logger.debug('session delete answered HTTP %d', answer.status)
        return gone
