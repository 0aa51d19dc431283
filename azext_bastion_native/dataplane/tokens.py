# --------------------------------------------------------------------------------------------
# The ARM token each session presents. It must never be expired ("fetch the ARM token per session so
# long-lived tunnels never use an expired token"), but fetching it for every connection costs a call into
# MSAL (and, when it is stale, a network round trip). So it is kept with its expiry and fetched again once
# less than REFRESH_MARGIN remains: every session still gets a token valid for at least that long.
# --------------------------------------------------------------------------------------------
"""A thread-safe ARM token cache that refreshes ahead of expiry."""

import threading
import time
from typing import Callable, Optional, Tuple

REFRESH_MARGIN = 300.0      # seconds of validity a handed-out token has left, at least


class CachedToken:
    """``fetch()`` -> (token, expires_on as POSIX seconds, or None when unknown: then never cached).

    Calling the object returns a token with more than ``margin`` seconds left, fetching when needed (blocking:
    call it off the event loop). ``peek()`` returns such a token only if one is at hand, without fetching."""

    def __init__(self, fetch: Callable[[], Tuple[str, Optional[float]]], margin: float = REFRESH_MARGIN,
                 clock: Callable[[], float] = time.time):
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_on = 0.0

    def peek(self) -> Optional[str]:
        token, expires_on = self._token, self._expires_on
        if token is not None and expires_on - self._clock() > self._margin:
            return token
        return None

    def __call__(self) -> str:
        with self._lock:
            token = self.peek()
            if token is None:
                token, expires_on = self._fetch()
                if expires_on is not None:
                    self._token, self._expires_on = token, float(expires_on)
            return token

    def __repr__(self) -> str:
        return f'{type(self).__name__}(cached={self._token is not None})'     # never the token itself
