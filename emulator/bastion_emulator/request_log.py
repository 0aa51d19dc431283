"""Recent requests, with every secret taken out, for ``GET /_emulator/requests``."""
from __future__ import annotations

import collections
import re
import time

REDACTED = "<redacted>"
MAX_RECORDED_BODY = 16 * 1024
# form fields, JSON keys and query parameters that carry secrets
_SECRET_KEYS = ("client_secret", "client_assertion", "aztoken", "azToken", "token", "access_token", "refresh_token",
                "password", "websocketToken", "authToken", "assertion")
_KEY_ALTERNATION = "|".join(_SECRET_KEYS)
_FORM_SECRET = re.compile(rf"(?i)(^|[&?])({_KEY_ALTERNATION})=[^&]*")
_JSON_SECRET = re.compile(rf'(?i)("({_KEY_ALTERNATION})"\s*:\s*)"(?:[^"\\]|\\.)*"')
# path segments that are tokens: /webtunnelv2/{token}, /omni/webtunnel/{token}, /api/tokens/{token}
_PATH_TOKEN = re.compile(r"(?i)(/webtunnelv2/|/webtunnel/|/api/tokens/)[^/?]+")


def secret_pattern(secrets) -> re.Pattern | None:
    """One alternation of every secret worth matching, longest first (a token may contain a shorter one)."""
    usable = sorted((secret for secret in secrets if len(secret) >= 8), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, usable))) if usable else None


def redact(text: str, secrets: set[str] | re.Pattern | None) -> str:
    """``secrets``: the issued secrets, or a pattern from ``secret_pattern`` (cheaper when reused)."""
    text = _FORM_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", text)
    text = _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    text = _PATH_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    pattern = secrets if isinstance(secrets, re.Pattern) or secrets is None else secret_pattern(secrets)
    return pattern.sub(REDACTED, text) if pattern is not None else text


class RequestLog:
    """A bounded list of recent requests (method, path, query, status, body), secrets redacted on write."""

    def __init__(self, state, limit: int = 1000):
        self._state = state
        self._entries: collections.deque = collections.deque(maxlen=limit)
        # The issued secrets only grow: rebuild the pattern when their number changes, not on every request.
        self._pattern_for = -1
        self._pattern: re.Pattern | None = None

    def record(self, *, listener: str, method: str, path: str, query: str, status: int, body: bytes | None,
               if_match: str | None = None) -> None:
        issued = self._state.issued_secrets
        if len(issued) != self._pattern_for:
            self._pattern, self._pattern_for = secret_pattern(set(issued)), len(issued)
        secrets = self._pattern
        text = ""
        if body:
            text = body[:MAX_RECORDED_BODY].decode("utf-8", errors="replace")
        self._entries.append({
            "time": time.time(), "listener": listener, "method": method,
            "path": redact(path, secrets), "query": redact(query, secrets),
            "status": status, "body": redact(text, secrets), "if_match": if_match,
        })

    def entries(self) -> list[dict]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
