"""The emulator's HTTPS service: identity, ARM, test hooks, and one data-plane listener per Bastion host."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from . import identity
from .arm.api import ArmApi, Operations, add_routes as add_arm_routes
from .certs import USER_CERT_LIFETIME, KeyMaterial, load_or_create, sign_user_certificate
from .dataplane.app import add_control_routes as add_dataplane_control_routes
from .dataplane.hosts import DataPlaneHosts
from .request_log import RequestLog
from .responses import ArmError, arm_error, json_response
from .state import EmulatorState

log = logging.getLogger("bastion_emulator")
MAX_BODY_TO_RECORD = 64 * 1024
_FAULT_CODES = {409: "Conflict", 412: "PreconditionFailed", 429: "TooManyRequests", 500: "InternalServerError",
                502: "BadGateway", 503: "ServiceUnavailable"}


def cloud_name_for(state_dir: str | Path) -> str:
    """Stable per state directory, distinct between directories (several emulators may coexist)."""
    digest = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]
    return f"BastionEmu{digest}"


def make_recording_middleware(request_log: RequestLog):
    @web.middleware
    async def record(request: web.Request, handler):
        body = None
        if request.body_exists and (request.content_length or 0) <= MAX_BODY_TO_RECORD:
            body = await request.read()  # cached: the handler reads it again
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            listener = request.app.get("bastion_id") or "main"
            request_log.record(listener=listener, method=request.method, path=request.path,
                               query=request.query_string, status=status, body=body,
                               if_match=request.headers.get("If-Match"))
            log.debug("%s %s -> %d", request.method, request.path if listener == "main" else listener, status)
    return record


@web.middleware
async def arm_errors(request: web.Request, handler):
    """ARM-shaped bodies for every failure; never a traceback to the client."""
    try:
        return await handler(request)
    except ArmError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}.get(exc.status, "BadRequest")
        return arm_error(exc.status, code, exc.reason)
    except Exception:  # pylint: disable=broad-except
        log.exception("unhandled error in %s %s", request.method, request.path)
        return arm_error(500, "InternalServerError", "The server encountered an internal error. Please retry.")


class ArmFaults:
    """``POST /_emulator/arm-faults``: the next N requests matching method + path substring get a status."""

    def __init__(self):
        self.rules: list[dict] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if not request.path.startswith("/_emulator/"):
            for rule in self.rules:
                if rule["remaining"] > 0 and rule["method"] in ("*", request.method) \
                        and rule["path_contains"].lower() in request.path.lower():
                    rule["remaining"] -= 1
                    return arm_error(rule["status"], rule["code"], rule["message"], rule["headers"])
        return await handler(request)

    async def add(self, request: web.Request) -> web.Response:
        spec = await request.json()
        status = int(spec["status"])
        rule = {"method": spec.get("method", "*").upper(), "path_contains": spec.get("path_contains", ""),
                "status": status, "remaining": int(spec.get("count", 1)),
                "code": spec.get("code") or _FAULT_CODES.get(status, "InjectedFault"),
                "message": spec.get("message") or f"Injected fault: HTTP {status}.",
                "headers": {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}}
        self.rules.append(rule)
        return json_response(rule, status=201)

    async def list(self, _request: web.Request) -> web.Response:
        return json_response({"faults": self.rules})

    async def clear(self, _request: web.Request) -> web.Response:
        self.rules.clear()
        return web.Response(status=204)


def _add_test_hooks(app: web.Application, state: EmulatorState, request_log: RequestLog, faults: ArmFaults) -> None:
    async def requests_(_request):
        return json_response({"requests": request_log.entries()})

    async def clear_requests(_request):
        request_log.clear()
        return web.Response(status=204)

    async def secrets_(_request):
        return json_response({"secrets": sorted(state.issued_secrets)})

    async def vm_endpoint(request):
        spec = await request.json()
        vm = state.get_resource(spec["vm_id"])
        if vm is None:
            raise ArmError(404, "ResourceNotFound", f"VM {spec['vm_id']} is not in the emulator.")
        state.set_vm_endpoint(vm["id"], int(spec["port"]), spec.get("host", "127.0.0.1"), int(spec["target_port"]))
        return json_response({"vm_id": vm["id"], "port": int(spec["port"]),
                              "target": list(state.vm_target(vm["id"], int(spec["port"])) or [])})

    async def vm_power(request):
        spec = await request.json()
        if spec.get("power_state") not in ("running", "stopped", "deallocated"):
            raise ArmError(400, "InvalidPowerState", "power_state must be running, stopped or deallocated.")
        state.set_vm_power_state(spec["vm_id"], spec["power_state"])
        return json_response({"vm_id": spec["vm_id"], "power_state": state.vm_power_state(spec["vm_id"])})

    app.router.add_get("/_emulator/requests", requests_)
    app.router.add_delete("/_emulator/requests", clear_requests)
    app.router.add_get("/_emulator/secrets", secrets_)
    app.router.add_post("/_emulator/arm-faults", faults.add)
    app.router.add_get("/_emulator/arm-faults", faults.list)
    app.router.add_delete("/_emulator/arm-faults", faults.clear)
    app.router.add_post("/_emulator/vm-endpoints", vm_endpoint)
    app.router.add_post("/_emulator/vm-power", vm_power)

    async def ssh_cert_lifetime(request):
        """Seconds the SSH certificates Entra issues from now on are valid (tests: short-lived or, negative, already
        expired ones); {"seconds": null} goes back to the default."""
        spec = await request.json()
        seconds = spec.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            raise ArmError(400, "InvalidLifetime", "seconds must be a whole number or null.")
        state.ssh_cert_lifetime = seconds
        return json_response({"seconds": seconds})

    async def ssh_cert(request):
        """An SSH user certificate for {"public_key": "ssh-rsa ..."} from Entra's CA, for the login name, valid
        {"seconds": N} from now (negative: already expired): a certificate put in place by a test."""
        spec = await request.json()
        try:
            public_key = serialization.load_ssh_public_key(str(spec["public_key"]).encode())
        except (KeyError, ValueError, TypeError) as exc:
            raise ArmError(400, "InvalidPublicKey", f"public_key is not an OpenSSH public key: {exc}") from None
        seconds = int(spec.get("seconds", USER_CERT_LIFETIME))
        line = sign_user_certificate(request.app["keys"].user_ca_key, public_key, state.login_name,
                                     key_id="emulator-test", lifetime=seconds)
        state.remember_secret(line.split()[1].decode())
        return json_response({"certificate": line.decode()})

    app.router.add_post("/_emulator/ssh-cert-lifetime", ssh_cert_lifetime)
    app.router.add_post("/_emulator/ssh-cert", ssh_cert)


def create_app(state: EmulatorState, keys: KeyMaterial, *, cloud_name: str = "BastionEmu",
               lro_seconds: float = 0.2) -> web.Application:
    request_log = RequestLog(state)
    faults = ArmFaults()
    recorder = make_recording_middleware(request_log)
    app = web.Application(middlewares=[recorder, arm_errors, faults.middleware], client_max_size=8 * 1024 * 1024)
    hosts = DataPlaneHosts(state, keys.server_ssl_context(), middlewares=[recorder])
    api = ArmApi(state, Operations(lro_seconds), hosts)
    app.update(state=state, keys=keys, cloud_name=cloud_name, request_log=request_log, dataplane_hosts=hosts)
    identity.add_routes(app)
    _add_test_hooks(app, state, request_log, faults)
    add_dataplane_control_routes(app, state)
    add_arm_routes(app, api)

    async def start_seeded_hosts(_app):
        for host in state.list_resources("microsoft.network/bastionhosts", f"/subscriptions/{state.subscription_id}"):
            state.set_properties(host["id"], dnsName=await hosts.start(host["id"]))

    async def stop_hosts(_app):
        await hosts.stop_all()

    app.on_startup.append(start_seeded_hosts)
    app.on_cleanup.append(stop_hosts)
    return app


def write_ready_file(state_dir: Path, content: dict) -> Path:
    """Atomically (temp + rename): a reader never sees half a file."""
    path = state_dir / "ready.json"
    tmp = state_dir / f".ready.json.{os.getpid()}"
    tmp.write_text(json.dumps(content, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


async def serve(state_dir: Path, port: int = 0, seed: str | None = None, lro_seconds: float = 0.2) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "ready.json").unlink(missing_ok=True)
    keys = load_or_create(state_dir)
    state = EmulatorState.from_file(seed, default_client_secret=keys.client_secret, token_key=keys.token_key)
    app = create_app(state, keys, cloud_name=cloud_name_for(state_dir), lro_seconds=lro_seconds)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=keys.server_ssl_context())
    await site.start()
    actual_port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    write_ready_file(state_dir, {
        "arm": f"https://127.0.0.1:{actual_port}/", "ca_bundle": str(keys.ca_pem.resolve()),
        "tenant": state.tenant_id, "client_id": state.client_id, "client_secret": state.client_secret,
        "subscription": state.subscription_id, "user_ca_pub": str(keys.user_ca_pub.resolve()),
        "cloud_name": cloud_name_for(state_dir), "login_name": state.login_name, "pid": os.getpid(),
    })
    log.info("bastion emulator ready on https://127.0.0.1:%d/ (state %s)", actual_port, state_dir)
    try:
        await stop.wait()
    finally:
        (state_dir / "ready.json").unlink(missing_ok=True)
        await runner.cleanup()
        log.info("bastion emulator stopped")
