"""An in-process emulator for the data-plane tests: the real EmulatorState (default seed), the real TLS
material, one data-plane listener per Bastion host (``create_app``) and the control routes, served by one
aiohttp event loop in a background thread. Clients (requests, websockets) talk to it over real TLS sockets.
"""
from __future__ import annotations

import asyncio
import copy
import ssl
import threading

from aiohttp import web

from bastion_emulator import certs
from bastion_emulator.dataplane.app import add_control_routes, create_app
from bastion_emulator.state import EmulatorState

DEVELOPER_HOST = "dev-bastion"


class InProcessEmulator:
    def __init__(self, state_dir):
        self.state = EmulatorState.from_file()
        self.keys = certs.load_or_create(state_dir)
        self.ca_bundle = str(self.keys.ca_pem)
        self.sub = self.state.subscription_id
        self.rg_id = f"/subscriptions/{self.sub}/resourceGroups/demo-rg"
        self._add_developer_host()
        self.loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        self.endpoints: dict[str, str] = {}      # bastion name -> "127.0.0.1:port"
        self.control_url = ""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("in-process emulator did not start")

    def _add_developer_host(self) -> None:
        demo = self.state.get_resource(self.bastion_id("demo-bastion"))
        developer = copy.deepcopy(demo)
        developer["sku"] = {"name": "Developer"}
        developer["properties"].update(enableTunneling=False, enableIpConnect=False)
        self.state.put_resource(self.bastion_id(DEVELOPER_HOST), developer)

    def bastion_id(self, name: str) -> str:
        return f"{self.rg_id}/providers/Microsoft.Network/bastionHosts/{name}"

    def vm_id(self, name: str) -> str:
        return f"{self.rg_id}/providers/Microsoft.Compute/virtualMachines/{name}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        ready.set()
        self.loop.run_forever()

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.keys.server_ssl_context())
        await site.start()
        self._runners.append(runner)
        return site._server.sockets[0].getsockname()[1]     # pylint: disable=protected-access

    async def _start(self) -> None:
        control = web.Application()
        add_control_routes(control, self.state)
        self.control_url = f"https://127.0.0.1:{await self._serve(control)}"
        for host in self.state.list_resources("microsoft.network/bastionhosts", self.rg_id):
            port = await self._serve(create_app(self.state, host["id"]))
            self.endpoints[host["name"]] = f"127.0.0.1:{port}"
            self.state.set_properties(host["id"], dnsName=f"127.0.0.1:{port}")

    def call(self, func, *args):
        """Run a plain function on the emulator's loop (for APIs that schedule work there)."""
        async def wrapper():
            return func(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    def token(self) -> str:
        return self.state.issue_access_token("https://management.core.windows.net/")[0]

    def stop(self) -> None:
        async def cleanup():
            for runner in self._runners:
                await runner.cleanup()
        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
