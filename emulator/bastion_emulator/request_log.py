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


_WORD = re.compile(r"[A-Za-z0-9_\-.~]{8,}")      # the shape of URL-safe tokens (JWTs, token_urlsafe)


class SecretIndex:
    """The issued secrets, kept for cheap redaction as they grow: URL-safe ones are looked up word by word in a
    set (cost independent of how many were issued); the few others (base64 certificates) by substring."""

    def __init__(self, secrets=()):
        self.words: set[str] = set()
        self.others: list[str] = []
        self.add(secrets)

    def add(self, secrets) -> None:
        for secret in secrets:
            if len(secret) < 8:
                continue
            if _WORD.fullmatch(secret):
                self.words.add(secret)
            elif secret not in self.others:
                self.others.append(secret)
        self.others.sort(key=len, reverse=True)     # longest first: a token may contain a shorter one

    def __len__(self) -> int:
        return len(self.words) + len(self.others)


def redact(text: str, secrets) -> str:
    """``secrets``: the issued secrets, or a SecretIndex of them (cheaper when reused)."""
    index = secrets if isinstance(secrets, SecretIndex) else SecretIndex(secrets)
    text = _FORM_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", text)
    text = _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    text = _PATH_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    if index.words:
        text = _WORD.sub(lambda m: REDACTED if m.group(0) in index.words else m.group(0), text)
    for secret in index.others:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RequestLog:
    """A bounded list of recent requests (method, path, query, status, body), secrets redacted on write."""

    def __init__(self, state, limit: int = 1000):
        self._state = state
        self._entries: collections.deque = collections.deque(maxlen=limit)
        # The issued secrets only grow: index the new ones when their number changes, not all on every request.
        self._index = SecretIndex()
        self._indexed = set()

    def record(self, *, listener: str, method: str, path: str, query: str, status: int, body: bytes | None,
               if_match: str | None = None) -> None:
        issued = self._state.issued_secrets
        if len(issued) != len(self._indexed):
            fresh = issued - self._indexed
            self._index.add(fresh)
            self._indexed |= fresh
        secrets = self._index
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
