"""Redaction of data-plane secrets in text and log records. Two third-party loggers would print them at --debug:
websockets logs the handshake path (/webtunnelv2/<websocketToken>) and every frame; urllib3 logs request paths
(DELETE /api/tokens/<authToken>). Both are handled here, and our own messages pass the same redaction. Names are
matched in any case (``AuthToken=``, ``bearer``), and credentials in a URL (``scheme://user:password@host``, as
websockets' InvalidProxy message quotes a proxy URL) are removed too."""

import logging
import re
import sys
from typing import Any, Iterable, TYPE_CHECKING

REDACTED = '<redacted>'

# Token-bearing URL paths and form/query fields of the data plane, bearer credentials, the user information of a
# URL, and JWTs (ARM tokens) anywhere.
_PATTERNS = (
    re.compile(r'(/api/tokens/|/webtunnelv2/|/omni/webtunnel/)[^\s?"\'<>]+', re.IGNORECASE),
    re.compile(r'((?:az|auth|websocket|access_|refresh_)?token["\']?\s*[=:]\s*["\']?)[^\s&"\',}]+', re.IGNORECASE),
    re.compile(r'(bearer\s+)[\w\-.~+/]+=*', re.IGNORECASE),
    re.compile(r'(\b[a-z][a-z0-9+.-]*://)[^\s/?#"\'<>]+@', re.IGNORECASE),     # up to the last @: p@ss too
    re.compile(r'()eyJ[\w-]+\.[\w-]+\.[\w-]*'),
)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with token-bearing paths, fields, JWTs and each of ``secrets`` replaced."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_prefix, text)
    return text


def _keep_prefix(match: 're.Match[str]') -> str:
    """The name or scheme the secret follows stays; a URL's user information keeps its ``@``."""
    kept = match.group(1) + REDACTED
    return kept + '@' if match.group(0).endswith('@') else kept


class RedactingFilter(logging.Filter):  # pylint: disable=too-few-public-methods
    """A logging filter that rewrites a record's message with :func:`redact_text` (it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # pylint: disable=broad-except
            return True     # a broken record is the logging module's business, not ours
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = RedactingFilter()
# urllib3 logs each request line ("DELETE /api/tokens/... HTTP/1.1") at DEBUG from connectionpool.
THIRD_PARTY_LOGGERS = ('urllib3.connectionpool', 'websockets.client', 'websockets.protocol')


def install_log_redaction() -> None:
    """Attach the redacting filter to the third-party loggers that can see request paths (idempotent)."""
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]      # generic for the type checker only (3.11+ at run time)
else:
    _LoggerAdapter = logging.LoggerAdapter


class WebsocketLogger(_LoggerAdapter):
    """The ``logger=`` we hand to websockets: it reports nothing below INFO (websockets would otherwise log
    the handshake path, which holds the websocket token, and one line per frame) and redacts the rest."""

    def __init__(self, logger: logging.Logger):
        super().__init__(logger, {})

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        kwargs.pop('stacklevel', None)
        text = redact_text(str(msg) % args if args else str(msg))
        # exc_info would print the exception's text (it may name the URL): keep only its type.
        exc_info = kwargs.pop('exc_info', None)
        if exc_info:
            if isinstance(exc_info, tuple):
                error = exc_info[1]
            else:
                error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
            if isinstance(error, BaseException):
                text = f'{text} ({type(error).__name__})'
        self.logger.log(level, '%s', text)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)
