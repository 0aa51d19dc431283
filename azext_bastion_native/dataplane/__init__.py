"""The Bastion data plane: session mint/delete and the tunnel websocket (no azure.cli imports)."""

from .errors import DataPlaneError, SessionRefusedError, SessionUnavailableError, WebsocketOpenError
from .protocol import Endpoint, RetryPolicy, Session, Target

__all__ = ['DataPlaneError', 'SessionRefusedError', 'SessionUnavailableError', 'WebsocketOpenError',
           'Endpoint', 'RetryPolicy', 'Session', 'Target']
