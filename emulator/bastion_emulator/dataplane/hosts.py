"""One HTTPS listener per Bastion host: its ``dnsName`` is ``127.0.0.1:<that listener's port>``."""
from __future__ import annotations

import logging
import ssl

from aiohttp import web

from .app import create_app

log = logging.getLogger("bastion_emulator")


class DataPlaneHosts:
    """Starts and stops the per-host data-plane listeners."""

    def __init__(self, state, ssl_context: ssl.SSLContext, middlewares: list | None = None):
        self._state = state
        self._ssl = ssl_context
        self._middlewares = middlewares or []
        self._runners: dict[str, web.AppRunner] = {}

    async def start(self, bastion_id: str) -> str:
        """Serve the host's data plane on a free loopback port; returns its dnsName."""
        key = bastion_id.lower()
        if key in self._runners:
            await self.stop(bastion_id)
        app = create_app(self._state, bastion_id)
        app["bastion_id"] = bastion_id
        app.middlewares.extend(self._middlewares)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        port = runner.addresses[0][1]
        self._runners[key] = runner
        log.debug("data plane for %s on port %d", bastion_id, port)
        return f"127.0.0.1:{port}"

    async def stop(self, bastion_id: str) -> None:
        runner = self._runners.pop(bastion_id.lower(), None)
        if runner is not None:
            await runner.cleanup()

    async def stop_all(self) -> None:
        for key in list(self._runners):
            await self.stop(key)
