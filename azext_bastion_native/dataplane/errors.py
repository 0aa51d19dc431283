# --------------------------------------------------------------------------------------------
# Typed data-plane errors. Their text is shown to users and logged: it never carries a token.
# --------------------------------------------------------------------------------------------
"""Errors raised by the Bastion data-plane client."""


class DataPlaneError(Exception):
    """A data-plane call failed. ``status`` is the HTTP status (None when no answer came)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status
        self.message = message


class SessionRefusedError(DataPlaneError):
    """Bastion refused to mint a session (401/403/404 and other 4xx): retrying will not help."""


class SessionUnavailableError(DataPlaneError):
    """Bastion could not mint a session now (429/5xx/network) and the bounded retries ran out.
    ``retry_after`` is the server's Retry-After header, when it sent one."""

    def __init__(self, message, status=None, retry_after=None):
        super().__init__(message, status)
        self.retry_after = retry_after


class WebsocketOpenError(DataPlaneError):
    """The session was minted but its websocket could not be opened."""
