"""Per-process data-plane bookkeeping: live tunnel sessions, injected faults and counters.

One :class:`DataPlaneRegistry` hangs on the emulator state as ``state.dataplane`` (made on first use by
:func:`registry_for`), shared by every Bastion host's data-plane listener and the control routes. Everything
runs on the emulator's single event loop, so plain dicts are enough.
"""
from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class TunnelSession:
    """One minted session: created by POST /api/tokens, connected by the websocket, removed by DELETE."""
    bastion_id: str
    target_resource_id: str     # the VM's id, also for IP connect
    target_name: str
    target_ip: str
    port: int
    developer: bool             # Developer/QuickConnect hosts take the /omni/webtunnel path
    user_name: str
    subscription_id: str
    resource_group: str
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    auth_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    websocket_token: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    node_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.time)
    state: str = "minted"       # minted -> connected -> closed (stays listed until DELETE, like Azure)
    websocket_used: bool = False
    relay: object | None = None         # the live TunnelRelay while the websocket is open
    client: dict = field(default_factory=dict)     # what the client sent: User-Agents, websocket Origin

    @property
    def protocol(self) -> str:
        return "RDP" if self.port == 3389 else "SSH"

    def public_view(self) -> dict:
        """The test-hook view: no tokens."""
        return {"sessionId": self.session_id, "bastionId": self.bastion_id, "target": self.target_resource_id,
                "targetIp": self.target_ip, "port": self.port, "state": self.state, "created": self.created,
                "client": dict(self.client)}

    def active_session_json(self) -> dict:
        """BastionActiveSession as ARM's getActiveSessions returns it."""
        return {
            "sessionId": self.session_id,
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "targetSubscriptionId": self.subscription_id,
            "resourceType": "VM",
            "targetHostName": self.target_name,
            "targetResourceGroup": self.resource_group,
            "userName": self.user_name,
            "targetIpAddress": self.target_ip,
            "protocol": self.protocol,
            "targetResourceId": self.target_resource_id,
            "sessionDurationInMins": round((time.time() - self.created) / 60.0, 3),
        }


@dataclass
class Faults:
    """Faults injected by tests through POST /_emulator/faults; cleared by DELETE."""
    drop_after_bytes: int | None = None     # one-shot: the next websocket is cut after N bytes VM -> client
    mint_status: int | None = None          # the next `mint_count` mints answer this status
    mint_count: int = 0
    retry_after: int | None = None          # Retry-After header on a 429 mint answer
    handshake_delay: float = 0.0            # seconds before every websocket upgrade, until cleared
    no_node_id: bool = False                # mints answer "nodeId": null (a gateway without nodes), until cleared

    def take_mint_fault(self) -> tuple[int, int | None] | None:
        if self.mint_status is None or self.mint_count <= 0:
            return None
        self.mint_count -= 1
        status = self.mint_status
        if self.mint_count == 0:
            self.mint_status = None
        return status, self.retry_after

    def take_drop_after(self) -> int | None:
        value, self.drop_after_bytes = self.drop_after_bytes, None
        return value

    def update(self, body: dict) -> None:
        if "drop_after_bytes" in body:
            self.drop_after_bytes = max(0, int(body["drop_after_bytes"]))
        if "mint_status" in body:
            self.mint_status = int(body["mint_status"])
            self.mint_count = int(body.get("count", 1))
            self.retry_after = int(body["retry_after"]) if body.get("retry_after") is not None else None
        if "handshake_delay" in body:
            self.handshake_delay = max(0.0, float(body["handshake_delay"]))
        if "no_node_id" in body:
            self.no_node_id = bool(body["no_node_id"])

    def as_json(self) -> dict:
        return {"drop_after_bytes": self.drop_after_bytes, "mint_status": self.mint_status,
                "count": self.mint_count, "retry_after": self.retry_after,
                "handshake_delay": self.handshake_delay, "no_node_id": self.no_node_id}


STAT_NAMES = ("mints", "mints_refused", "deletes", "deletes_unknown", "websockets_opened", "websockets_closed",
              "websockets_refused", "websockets_dropped", "bytes_client_to_vm", "bytes_vm_to_client",
              "rdpfiles", "connections")


class DataPlaneRegistry:
    def __init__(self):
        self.sessions: dict[str, TunnelSession] = {}        # by auth token
        self._by_websocket: dict[str, TunnelSession] = {}
        self.faults = Faults()
        self.stats = dict.fromkeys(STAT_NAMES, 0)

    def add(self, session: TunnelSession) -> None:
        self.sessions[session.auth_token] = session
        self._by_websocket[session.websocket_token] = session

    def by_websocket_token(self, token: str) -> TunnelSession | None:
        return self._by_websocket.get(token)

    def remove(self, session: TunnelSession, reason: str = "session deleted") -> None:
        """Forget the session; a websocket still open on it is closed with 1008 and the reason."""
        self.sessions.pop(session.auth_token, None)
        self._by_websocket.pop(session.websocket_token, None)
        if session.relay is not None:
            session.relay.stop(1008, reason)

    def for_bastion(self, bastion_id: str | None) -> list[TunnelSession]:
        return [s for s in self.sessions.values()
                if bastion_id is None or s.bastion_id.lower() == bastion_id.lower()]


def registry_for(state) -> DataPlaneRegistry:
    registry = getattr(state, "dataplane", None)
    if registry is None:
        registry = DataPlaneRegistry()
        state.dataplane = registry
    return registry
