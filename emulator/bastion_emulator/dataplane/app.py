"""The Bastion data plane (docs/ARCHITECTURE.md, The emulator) and the emulator's data-plane test hooks.

Entry points the server uses:

- ``create_app(state, bastion_id)``: the aiohttp app one Bastion host's own listener serves (its ``dnsName``):
  ``POST /api/tokens``, ``DELETE /api/tokens/{authToken}``, websockets ``/webtunnelv2/{token}`` and
  ``/omni/webtunnel/{token}`` (Developer), ``GET /api/rdpfile``, ``POST /api/connection`` (Developer).
- ``add_control_routes(app, state)``: ``/_emulator/sessions``, ``/_emulator/faults``, ``/_emulator/stats`` on
  the main (ARM) server (re-pointing VM ports is the server's ``POST /_emulator/vm-endpoints``).
- ``active_sessions(state, bastion_id)`` / ``disconnect_sessions(state, bastion_id, ids)`` for ARM's
  getActiveSessions / disconnectActiveSessions.

Per-process data-plane state (sessions, faults, counters) lives in ``state.dataplane``
(a :class:`~bastion_emulator.dataplane.sessions.DataPlaneRegistry`). Tokens are never logged.
"""
from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web

from . import policy
from .relay import TunnelRelay
from .sessions import TunnelSession, registry_for

logger = logging.getLogger(__name__)

_MAX_WS_MESSAGE = 64 << 20      # websocket messages from clients: big frames are fine, unbounded is not


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)


class _HostDataPlane:
    """Request handlers of one Bastion host's data-plane listener."""

    def __init__(self, state, bastion_id: str):
        self.state = state
        self.bastion_id = bastion_id
        self.registry = registry_for(state)

    # --- shared checks ---------------------------------------------------------------------------
    def _bastion(self) -> dict:
        bastion = self.state.get_resource(self.bastion_id)
        if bastion is None:
            raise policy.AccessRefused(404, "The Bastion host of this endpoint no longer exists.")
        return bastion

    def _claims(self, token: str | None) -> dict:
        claims = self.state.verify_access_token(token) if token else None
        if not claims:
            raise policy.AccessRefused(401, "Unauthorized: the Azure access token (aztoken) is missing, invalid "
                                            "or expired. Sign in again (az login) and retry.")
        return claims

    def _vm_private_ip(self, vm: dict) -> str:
        ips = self.state.vm_private_ips(vm) if hasattr(self.state, "vm_private_ips") else []
        return ips[0] if ips else ""

    def _resolve_target(self, bastion: dict, resource_id: str, port: int, hostname: str) -> tuple[dict, str]:
        """The target VM's ARM JSON and private IP for a VM id or an IP-connect id; refuses what Azure refuses."""
        target_ip = policy.host_connect_ip(resource_id)
        if target_ip is not None:
            policy.check_ip_connect(bastion, port)
            if hostname and hostname != target_ip:
                raise policy.AccessRefused(400, f"The hostname '{hostname}' does not match the IP address in "
                                                "the resource id.")
            vm = self.state.find_vm_by_private_ip(target_ip)
            if vm is None:
                raise policy.AccessRefused(404, f"No virtual machine with private IP address {target_ip} is "
                                                "reachable from this Bastion host.")
            return vm, target_ip
        if not policy.is_vm_id(resource_id):
            raise policy.AccessRefused(400, f"Invalid target resource id '{resource_id}': expected a virtual "
                                            "machine id or an IP-based connection id.")
        vm = self.state.get_resource(resource_id)
        if vm is None:
            raise policy.AccessRefused(404, f"The target virtual machine '{resource_id}' was not found.")
        return vm, self._vm_private_ip(vm)

    def _check_target(self, bastion: dict, vm: dict, target_ip: str, port: int) -> None:
        policy.check_power_state(vm.get("name", ""), self.state.vm_power_state(vm["id"]))
        policy.check_nsg(self.state.bastion_subnet_nsg(bastion["id"]), target_ip or None, port)

    # --- POST /api/tokens ------------------------------------------------------------------------
    async def mint(self, request: web.Request) -> web.Response:
        stats, faults = self.registry.stats, self.registry.faults
        fault = faults.take_mint_fault()
        if fault is not None:
            status, retry_after = fault
            stats["mints_refused"] += 1
            headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after is not None else None
            return _error(status, _FAULT_MESSAGES.get(status, "Injected failure."), headers)
        form = await request.post()
        try:
            claims = self._claims(form.get("aztoken"))
            bastion = self._bastion()
            policy.check_developer_host(bastion, request.host, data_pod=True)
            policy.check_native_client(bastion)
            policy.check_mint_form(form)
            if (form.get("protocol") or "").lower() != "tcptunnel":
                raise policy.AccessRefused(400, f"Unsupported protocol '{form.get('protocol', '')}': native "
                                                "client sessions use protocol=tcptunnel.")
            port = policy.parse_port(form.get("workloadHostPort"))
            policy.check_developer_port(bastion, port)
            vm, target_ip = self._resolve_target(bastion, form.get("resourceId") or "", port,
                                                 form.get("hostname") or "")
            self._check_target(bastion, vm, target_ip, port)
            policy.check_developer_concurrency(
                bastion, sum(1 for s in self.registry.for_bastion(bastion["id"]) if s.state == "connected"))
        except policy.AccessRefused as refused:
            stats["mints_refused"] += 1
            return _error(refused.status, refused.message)
        session = self._new_session(bastion, vm, target_ip, port, claims)
        session.client["mint_user_agent"] = request.headers.get("User-Agent", "")
        if faults.no_node_id:
            session.node_id = ""
        stats["mints"] += 1
        return web.json_response({"authToken": session.auth_token, "nodeId": session.node_id or None,
                                  "websocketToken": session.websocket_token})

    def _new_session(self, bastion: dict, vm: dict, target_ip: str, port: int, claims: dict) -> TunnelSession:
        parts = vm["id"].split("/")
        session = TunnelSession(
            bastion_id=bastion["id"], target_resource_id=vm["id"], target_name=vm.get("name", parts[-1]),
            target_ip=target_ip, port=port, developer=policy.is_developer_sku(bastion),
            user_name=claims.get("upn") or claims.get("unique_name") or claims.get("appid") or "",
            subscription_id=parts[2], resource_group=parts[4])
        self.state.remember_secret(session.auth_token)
        self.state.remember_secret(session.websocket_token)
        self.registry.add(session)
        return session

    # --- DELETE /api/tokens/{authToken} ----------------------------------------------------------
    async def delete(self, request: web.Request) -> web.Response:
        session = self.registry.sessions.get(request.match_info["auth_token"])
        if session is None or session.bastion_id.lower() != self.bastion_id.lower():
            self.registry.stats["deletes_unknown"] += 1
            return _error(404, "The session was not found; it has already ended or was never created.")
        try:
            policy.check_developer_host(self._bastion(), request.host, data_pod=session.developer)
        except policy.AccessRefused as refused:
            return _error(refused.status, refused.message)
        node_id = request.headers.get("X-Node-Id")
        if not session.node_id and node_id is not None:
            # upstream's tunnel.py (cleanup) sends no X-Node-Id when the mint named no node
            return _error(400, "X-Node-Id names a node, but this session was minted without one.")
        if node_id and node_id != session.node_id:
            return _error(400, "The X-Node-Id header does not match the node that holds this session.")
        self.registry.remove(session)
        self.registry.stats["deletes"] += 1
        return web.Response(status=204)

    # --- websockets ------------------------------------------------------------------------------
    async def websocket_v2(self, request: web.Request) -> web.StreamResponse:
        return await self._websocket(request, developer=False)

    async def websocket_developer(self, request: web.Request) -> web.StreamResponse:
        return await self._websocket(request, developer=True)

    async def _websocket(self, request: web.Request, developer: bool) -> web.StreamResponse:
        registry, stats = self.registry, self.registry.stats
        delay = registry.faults.handshake_delay
        if delay:
            await asyncio.sleep(delay)
        session = registry.by_websocket_token(request.match_info["ws_token"])
        refusal = self._websocket_refusal(request, session, developer)
        if refusal is not None:
            stats["websockets_refused"] += 1
            return _error(*refusal)
        session.websocket_used = True
        session.client.update(websocket_origin=request.headers.get("Origin", ""),
                              websocket_user_agent=request.headers.get("User-Agent", ""))
        if not self.state.bastion_reaches_vm(session.bastion_id, session.target_resource_id):
            # Azure mints the session, then has no route to the VM: the gateway error of a refused connection.
            stats["websockets_refused"] += 1
            session.state = "closed"
            return _error(502, f"The target virtual machine '{session.target_name}' is on a virtual network this "
                               "Bastion host does not reach (neither its own nor a connected peering).")
        target = self.state.vm_target(session.target_resource_id, session.port)
        try:
            if target is None:
                raise ConnectionRefusedError
            reader, writer = await asyncio.open_connection(target[0], target[1], limit=4 * (1 << 20))
        except OSError:
            stats["websockets_refused"] += 1
            session.state = "closed"
            return _error(502, f"The target virtual machine '{session.target_name}' did not accept the "
                               f"connection on port {session.port}.")
        ws = web.WebSocketResponse(autoclose=False, max_msg_size=_MAX_WS_MESSAGE, compress=False)
        await ws.prepare(request)
        stats["websockets_opened"] += 1
        session.state = "connected"
        relay = TunnelRelay(ws, reader, writer, stats, transport=request.transport,
                            drop_after=registry.faults.take_drop_after())
        session.relay = relay
        try:
            await relay.run()
        finally:
            session.relay = None
            session.state = "closed"
            stats["websockets_closed"] += 1
        return ws

    def _websocket_refusal(self, request: web.Request, session: TunnelSession | None,
                           developer: bool) -> tuple[int, str] | None:
        if session is None or session.bastion_id.lower() != self.bastion_id.lower():
            return 404, "Unknown or expired websocket token: mint a new session with POST /api/tokens."
        if session.websocket_used:
            return 403, "This websocket token was already used: each session carries one connection."
        if session.developer != developer:
            path = "/omni/webtunnel" if session.developer else "/webtunnelv2"
            return 404, f"This session connects through {path}/{{token}} on this host."
        node_id = request.query.get("X-Node-Id")
        if not developer and node_id != session.node_id:
            return 400, "The X-Node-Id query parameter is missing or does not match the session's node."
        origin_refusal = policy.websocket_origin_refusal(request.headers.get("Origin"), request.host)
        if origin_refusal:
            return 403, origin_refusal
        try:
            policy.check_developer_host(self._bastion(), request.host, data_pod=developer)
        except policy.AccessRefused as refused:
            return refused.status, refused.message
        return None

    # --- GET /api/rdpfile ------------------------------------------------------------------------
    async def rdpfile(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        query = request.query
        try:
            self._claims(token)
            bastion = self._bastion()
            policy.check_native_client(bastion)
            if (query.get("format") or "rdp").lower() != "rdp":
                raise policy.AccessRefused(400, f"Unsupported format '{query.get('format')}': only rdp.")
            port = policy.parse_port(query.get("rdpport") or "3389")
            vm, target_ip = self._resolve_target(bastion, query.get("resourceId") or "", port, "")
            self._check_target(bastion, vm, target_ip, port)
        except policy.AccessRefused as refused:
            return _error(refused.status, refused.message)
        self.registry.stats["rdpfiles"] += 1
        gateway_token = secrets.token_urlsafe(48)
        self.state.remember_secret(gateway_token)
        aad = (query.get("enablerdsaad") or "").lower() in ("1", "true", "yes")
        lines = [
            f"full address:s:{target_ip}:{port}",
            f"alternate full address:s:{target_ip}:{port}",
            f"gatewayhostname:s:{request.host}",
            "gatewayusagemethod:i:1",
            "gatewaycredentialssource:i:5",
            "gatewayprofileusagemethod:i:1",
            f"gatewayaccesstoken:s:{gateway_token}",
            f"enablerdsaadauth:i:{1 if aad else 0}",
            "prompt for credentials on client:i:1",
            "authentication level:i:2",
            f"targetresourceid:s:{vm['id']}",
        ]
        return web.Response(text="\r\n".join(lines) + "\r\n", content_type="application/x-rdp")

    # --- POST /api/connection (Developer / QuickConnect) -----------------------------------------
    async def connection(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body must be JSON.")
        try:
            self._claims(body.get("azToken"))
            bastion = self._bastion()
            if not policy.is_developer_sku(bastion):
                raise policy.AccessRefused(400, "This endpoint serves Developer SKU hosts; use POST /api/tokens.")
            policy.check_developer_host(bastion, request.host, data_pod=False)
            if (body.get("bastionResourceId") or "").lower() != self.bastion_id.lower():
                raise policy.AccessRefused(400, "bastionResourceId does not name this Bastion host.")
            if (body.get("connectionType") or "").lower() != "nativeclient":
                raise policy.AccessRefused(400, "connectionType must be 'nativeclient'.")
            port = policy.parse_port(body.get("vmPort"))
            policy.check_developer_port(bastion, port)
            vm, target_ip = self._resolve_target(bastion, body.get("resourceId") or "", port, "")
            self._check_target(bastion, vm, target_ip, port)
        except policy.AccessRefused as refused:
            return _error(refused.status, refused.message)
        self.registry.stats["connections"] += 1
        # The answer names the data pod to mint on: another host name for this same listener.
        return web.Response(text=policy.data_pod_host(request.host), content_type="text/plain")


_FAULT_MESSAGES = {
    401: "Unauthorized: the Azure access token (aztoken) is missing, invalid or expired.",
    429: "Too many requests: the Bastion host is throttling session creation. Retry later.",
    500: "An internal error occurred in the Bastion service. Retry later.",
    503: "The Bastion service is temporarily unavailable. Retry later.",
}


def create_app(state, bastion_id: str) -> web.Application:
    """The data-plane app of one Bastion host, served on that host's own listener (its dnsName)."""
    host = _HostDataPlane(state, bastion_id)
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/api/tokens", host.mint)
    app.router.add_delete("/api/tokens/{auth_token}", host.delete)
    app.router.add_get("/webtunnelv2/{ws_token}", host.websocket_v2)
    app.router.add_get("/omni/webtunnel/{ws_token}", host.websocket_developer)
    app.router.add_get("/api/rdpfile", host.rdpfile)
    app.router.add_post("/api/connection", host.connection)
    return app


# --- ARM sessions API ----------------------------------------------------------------------------
def active_sessions(state, bastion_id: str) -> list[dict]:
    """BastionActiveSession JSON of every live session on the host (minted and not yet deleted)."""
    return [s.active_session_json() for s in registry_for(state).for_bastion(bastion_id)]


def disconnect_sessions(state, bastion_id: str, session_ids: list[str]) -> list[dict]:
    """End the named sessions (closing their websockets); BastionSessionState JSON for each id."""
    registry = registry_for(state)
    by_id = {s.session_id: s for s in registry.for_bastion(bastion_id)}
    results = []
    for session_id in session_ids:
        session = by_id.get(session_id)
        if session is None:
            results.append({"sessionId": session_id, "message": "Session not found.", "state": "NotFound"})
            continue
        registry.remove(session, "session disconnected by administrator")
        results.append({"sessionId": session_id, "message": "Session disconnected.", "state": "Disconnected"})
    return results


# --- test hooks on the main server ---------------------------------------------------------------
def add_control_routes(app: web.Application, state) -> None:
    registry = registry_for(state)

    async def list_sessions(request: web.Request) -> web.Response:
        return web.json_response([s.public_view() for s in registry.for_bastion(request.query.get("bastion"))])

    async def get_faults(_request: web.Request) -> web.Response:
        return web.json_response(registry.faults.as_json())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            registry.faults.update(await request.json())
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"message": f"bad fault description: {exc}"}, status=400)
        return web.json_response(registry.faults.as_json())

    async def clear_faults(_request: web.Request) -> web.Response:
        registry.faults = type(registry.faults)()
        return web.Response(status=204)

    async def get_stats(_request: web.Request) -> web.Response:
        return web.json_response(dict(registry.stats, live_sessions=len(registry.sessions)))

    app.router.add_get("/_emulator/sessions", list_sessions)
    app.router.add_get("/_emulator/faults", get_faults)
    app.router.add_post("/_emulator/faults", set_faults)
    app.router.add_delete("/_emulator/faults", clear_faults)
    app.router.add_get("/_emulator/stats", get_stats)
