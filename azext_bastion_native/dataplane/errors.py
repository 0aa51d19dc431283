"""Errors raised by the Bastion data-plane client. Their text is shown to users and logged: it never carries a
token."""

from typing import Optional


class DataPlaneError(Exception):
    """A data-plane call failed. ``status`` is the HTTP status (None when no answer came)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.message = message


class SessionRefusedError(DataPlaneError):
    """Bastion refused to mint a session (401/403/404 and other 4xx): retrying will not help."""


class SessionUnavailableError(DataPlaneError):
    """Bastion could not mint a session now (429/5xx/network) and the retries allowed ran out (or none was).
    ``retry_after`` is the server's Retry-After header, when it sent one."""

    def __init__(self, message: str, status: Optional[int] = None, retry_after: Optional[str] = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class NotSentError(SessionUnavailableError):
    """No connection to the data plane could be opened: the request never left this machine, so Bastion cannot
    have acted on it (safe to send again)."""


class AnswerLostError(SessionUnavailableError):
    """The request was written (or may have been) but no complete answer came back: Bastion may have acted on
    it. A POST /api/tokens that ends so may have minted a session nobody can delete (no authToken)."""


class WebsocketOpenError(DataPlaneError):
    """The session was minted but its websocket could not be opened."""
