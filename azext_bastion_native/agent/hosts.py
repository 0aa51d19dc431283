"""What the connection agent keeps between connections, on azure-cli's sign-in: each Bastion host read once from
ARM (kept HOST_TTL seconds, then read again), one DataPlaneClient per data-plane endpoint (its kept-alive TLS and
TLS session tickets serve every connection through that host), and one ARM token per subscription, refreshed
ahead of expiry. ARM and MSAL calls run on worker threads, off the event loop."""

import asyncio
import logging
import time
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

HOST_TTL = 300.0        # seconds a host read from ARM is trusted (native client turned off, DNS name changed...)


class BastionHosts:
    """``get(request)`` -> (DataPlaneClient, Target) for a proxy_helper "connect" request."""

    def __init__(self, cli_ctx, host_ttl: float = HOST_TTL):
        self.cli_ctx = cli_ctx
        self.host_ttl = host_ttl
        self._hosts: Dict[Tuple[str, str, str], Tuple[float, Any]] = {}     # (sub, rg, name) -> (read at, host)
        self._clients: Dict[Any, Any] = {}          # Endpoint -> DataPlaneClient
        self._tokens: Dict[str, Any] = {}           # subscription -> CachedToken
        self._locks: Dict[Tuple[str, str, str], asyncio.Lock] = {}
        self._default_subscription: Optional[str] = None

    def clients(self) -> List[Any]:
        return list(self._clients.values())

    def refresh_tokens(self) -> None:
        """Fetch any token that is close to expiry now, so no connection waits for MSAL (blocking); and the Entra
        SSH certificate of `ssh-config --auth-type aad` blocks, when there is one and it is due."""
        for token in list(self._tokens.values()):
            if token.peek() is None:
                token()
        self._renew_entra_certificate()

    def _renew_entra_certificate(self) -> None:
        from azext_bastion_native.clients.entra_files import renew_ahead
        from azext_bastion_native.errors import Refused
        try:
            files = renew_ahead(self.cli_ctx)
        except Exception as err:  # pylint: disable=broad-except
            # the blocks' own check renews it before ssh reads it, and says why if it cannot
            logger.warning('Entra ID SSH certificate not renewed ahead: %s',
                           err.message if isinstance(err, Refused) else type(err).__name__)
            return
        if files is not None:
            logger.info('Entra ID SSH certificate renewed ahead of expiry (login %s)', files.user)

    async def get(self, request: dict):
        from azext_bastion_native.connect.preflight import ConnectRequest, plan_connection
        from azext_bastion_native.connect.arm_token import arm_token_getter
        from azext_bastion_native.connect.data_plane import data_plane_client
        from azext_bastion_native.bastion_facts import subscription_of
        loop = asyncio.get_running_loop()
        subscription = str(request.get('subscription') or await loop.run_in_executor(None, self._default))
        key = (subscription.lower(), str(request['resource_group']).lower(), str(request['name']).lower())
        host = await self._host(key, subscription, request)
        connect = ConnectRequest(request['resource_group'], request['name'], int(request['port']),
                                 str(request['target']))
        endpoint, target = plan_connection(host, connect)
        client = self._clients.get(endpoint)
        if client is None:
            host_subscription = subscription_of(host.id) or subscription
            token = self._tokens.get(host_subscription.lower())
            if token is None:
                token = self._tokens[host_subscription.lower()] = arm_token_getter(self.cli_ctx, host_subscription)
            client = self._clients[endpoint] = data_plane_client(endpoint, token)
        return client, target

    def _default(self) -> str:
        if self._default_subscription is None:
            from azure.cli.core._profile import Profile
            self._default_subscription = Profile(cli_ctx=self.cli_ctx).get_subscription_id()
        return self._default_subscription

    async def _host(self, key, subscription: str, request: dict):
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:        # connections racing to the same new host: one ARM GET
            cached = self._hosts.get(key)
            if cached is not None and time.monotonic() - cached[0] < self.host_ttl:
                return cached[1]
            host = await asyncio.get_running_loop().run_in_executor(
                None, self._read_host, subscription, request['resource_group'], request['name'])
            self._hosts[key] = (time.monotonic(), host)
            return host

    def _read_host(self, subscription, resource_group, name):
        from azext_bastion_native.management.clients import cf_network
        from azext_bastion_native.management.hosts import get_host
        logger.debug("reading Bastion host '%s' in resource group '%s'", name, resource_group)
        return get_host(cf_network(self.cli_ctx, subscription_id=subscription), resource_group, name)

    async def delete_orphans(self) -> None:
        """Delete the journaled sessions of runs that are gone (dataplane/journal.py), at the agent's start rather
        than at its first connection: a data-plane client that never mints does just that as it closes (their
        DELETEs go to each session's own host and need no ARM token, so its endpoint is never used)."""
        from azext_bastion_native.connect.data_plane import data_plane_client
        from azext_bastion_native.dataplane.protocol import Endpoint
        await data_plane_client(Endpoint(host=''), _no_token).aclose()

    async def forward(self, request: dict):
        """`forward --background`: the forward planned and checked as the command does (ARM reads on a worker
        thread), its relay service listening -> (RelayService, its ready line). Refused as the command would be."""
        from azext_bastion_native.connect.forward import ForwardRequest, plan_forward
        wanted = ForwardRequest.from_wire(request)
        planned = await asyncio.get_running_loop().run_in_executor(None, plan_forward, self.cli_ctx, wanted)
        service = planned.service(self.cli_ctx, wanted)
        return service, await planned.listen(service)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Delete every session still live, on every client."""
        clients, self._clients = list(self._clients.values()), {}
        if clients:
            await asyncio.gather(*(client.aclose(timeout=timeout) for client in clients), return_exceptions=True)


def _no_token() -> str:
    raise AssertionError('a client that only deletes orphaned sessions never asks for an ARM token')
