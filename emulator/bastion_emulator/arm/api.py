"""Azure Resource Manager: subscriptions, resource groups, Microsoft.Network and Microsoft.Compute resources.

PUT and DELETE of network resources are long-running the way Azure does them: the first answer
carries ``Azure-AsyncOperation`` (and ``Location`` for DELETE/POST), the operation reports
``InProgress`` and then ``Succeeded`` after ``app["lro_seconds"]``.
"""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from aiohttp import web

from . import validation
from ..dataplane.app import active_sessions, disconnect_sessions
from ..responses import ArmError, json_response
from ..state import EmulatorState, parse_resource_id

# api-versions we answer, per namespace: the ones azure-mgmt-network 33.1, azure-cli 2.91 and its
# compute/resource clients send, plus their recent neighbours.
API_VERSIONS = {
    "microsoft.network": {
        "2020-11-01", "2021-02-01", "2021-05-01", "2021-08-01", "2022-01-01", "2022-05-01", "2022-07-01",
        "2022-09-01", "2022-11-01", "2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01", "2023-09-01",
        "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01", "2025-01-01",
        "2025-03-01", "2025-05-01", "2025-07-01", "2025-09-01", "2026-01-01", "2026-03-01"},
    "microsoft.compute": {
        "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01",
        "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01"},
    "microsoft.resources": {
        "2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2021-04-01", "2022-09-01", "2022-12-01",
        "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01"},
}
_API_VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
RETRY_AFTER_MS = "200"   # ask pollers to come back soon (Azure says 10 s; tests should not wait that long)

PREPARE = {
    "microsoft.network/bastionhosts": validation.prepare_bastion_host,
    "microsoft.network/virtualnetworks": validation.prepare_virtual_network,
    "microsoft.network/virtualnetworks/subnets": validation.prepare_subnet,
    "microsoft.network/publicipaddresses": validation.prepare_public_ip,
    "microsoft.network/networksecuritygroups": validation.prepare_network_security_group,
    "microsoft.network/networksecuritygroups/securityrules": validation.prepare_security_rule,
    "microsoft.network/applicationsecuritygroups": validation.prepare_application_security_group,
}
READ_ONLY_TYPES = {"microsoft.network/networkinterfaces", "microsoft.compute/virtualmachines"}
BUSY_STATES = ("Updating", "Deleting", "Creating")


@dataclass
class Operation:
    op_id: str
    namespace: str
    started: str
    status: str = "InProgress"
    result: dict | None = None          # body of the final Location answer (POST actions)
    finish: Callable[[], object] | None = field(default=None, repr=False)


class Operations:
    """Long-running operations, completed by a timer whether or not anybody polls."""

    def __init__(self, delay: float):
        self.delay = delay
        self._ops: dict[str, Operation] = {}

    def start(self, namespace: str, finish: Callable[[], object]) -> Operation:
        op = Operation(uuid.uuid4().hex, namespace, _now_iso(), finish=finish)
        self._ops[op.op_id] = op
        asyncio.get_running_loop().call_later(self.delay, lambda: asyncio.ensure_future(self._complete(op)))
        return op

    async def _complete(self, op: Operation) -> None:
        outcome = op.finish()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        op.result, op.status = outcome, "Succeeded"

    def get(self, op_id: str) -> Operation | None:
        return self._ops.get(op_id)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _lro_headers(request: web.Request, op: Operation, with_location: bool) -> dict:
    state: EmulatorState = request.app["state"]
    base = f"https://{request.host}/subscriptions/{state.subscription_id}/providers/{op.namespace}/locations/" \
           f"{state.location}"
    version = request.query["api-version"]
    headers = {"Azure-AsyncOperation": f"{base}/operations/{op.op_id}?api-version={version}",
               "retry-after-ms": RETRY_AFTER_MS}
    if with_location:
        headers["Location"] = f"{base}/operationResults/{op.op_id}?api-version={version}"
    return headers


def _not_found(resource_id: str) -> ArmError:
    parsed = parse_resource_id(resource_id)
    kind = parsed["type"] if parsed else resource_id
    name = "/".join(resource_id.strip("/").split("/")[7::2]) if parsed else resource_id
    group = parsed["resource_group"] if parsed else "?"
    return ArmError(404, "ResourceNotFound", f"The Resource '{kind.split('/')[0]}/{kind.split('/')[1]}/{name}' under "
                    f"resource group '{group}' was not found. For more details please go to "
                    "https://aka.ms/ARMResourceNotFoundFix")


def _etag_matches(header: str, etag: str) -> bool:
    def bare(value: str) -> str:
        return value.strip().removeprefix("W/").strip('"')
    return any(bare(candidate) == bare(etag) for candidate in header.split(","))


class ArmApi:  # pylint: disable=too-few-public-methods
    """Dispatches ``/subscriptions/...`` and ``/tenants`` the way ARM routes them."""

    def __init__(self, state: EmulatorState, operations: Operations, dataplane_hosts):
        self.state = state
        self.operations = operations
        self.dataplane_hosts = dataplane_hosts  # start(bastion_id) -> dnsName, stop(bastion_id)
        self.api_versions = {ns: set(v) for ns, v in API_VERSIONS.items()}

    # --- entry point ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        parts = [p for p in request.path.split("/") if p]
        lower = [p.lower() for p in parts]
        self._check_api_version(request, lower)
        if lower == ["tenants"]:
            return self._tenants()
        if lower == ["subscriptions"]:
            return json_response({"value": [self._subscription()], "count": {"type": "Total", "value": 1}})
        if parts[1].lower() != self.state.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
        rest = lower[2:]
        if not rest:
            return json_response(self._subscription())
        if rest[0] == "resourcegroups":
            return await self._resource_group_scope(request, parts)
        if rest[0] == "providers" and len(rest) == 6 and rest[2] == "locations" \
                and rest[4] in ("operations", "operationresults"):
            return self._operation(rest[4], parts[7])
        if rest[0] == "providers" and len(rest) == 3 and request.method == "GET":
            namespace, type_name = parts[3], parts[4]
            return self._list(f"{namespace}/{type_name}", f"/subscriptions/{self.state.subscription_id}")
        raise ArmError(404, "NotFound", f"No route for {request.method} {request.path}.")

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="https://{request.host}/{self.state.tenant_id}", '
                                         'error="invalid_token", error_description="The access token is invalid."'}
        if not header:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                           "missing.", challenge)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or self.state.verify_access_token(token.strip()) is None:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid or has expired.",
                           challenge)

    def _check_api_version(self, request: web.Request, lower: list[str]) -> None:
        version = request.query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        namespace = "microsoft.resources"
        if "providers" in lower and len(lower) > lower.index("providers") + 1:
            namespace = lower[lower.index("providers") + 1]
        supported = self.api_versions.get(namespace, set())
        if version in supported:
            return
        shown = ", ".join(sorted(supported, reverse=True))
        if _API_VERSION_FORMAT.match(version) and namespace != "microsoft.resources":
            # A well-formed version a resource provider does not serve (yet): ARM's answer names the type.
            at = lower.index("providers")
            type_name = request.path.strip("/").split("/")[at + 2] if len(lower) > at + 2 else namespace
            raise ArmError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for location '{self.state.location}' and API "
                           f"version '{version}' for type '{type_name}'. The supported api-versions are '{shown}'. "
                           f"The supported locations are '{self.state.location}'.")
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are '{shown}'.")

    # --- test hook: a cloud that does not serve some versions (as sovereign clouds lag public Azure) ----
    async def withdraw_api_versions(self, request: web.Request) -> web.Response:
        """``POST /_emulator/api-versions`` ``{"namespace": "microsoft.network", "withdraw": ["2024-05-01"]}``."""
        spec = await _json_body(request)
        self.api_versions[spec["namespace"].lower()] -= set(spec.get("withdraw") or [])
        return json_response({ns: sorted(v) for ns, v in self.api_versions.items()})

    async def restore_api_versions(self, _request: web.Request) -> web.Response:
        """``DELETE /_emulator/api-versions``: every version served again."""
        self.api_versions = {ns: set(v) for ns, v in API_VERSIONS.items()}
        return web.Response(status=204)

    # --- subscription level --------------------------------------------------------------------
    def _subscription(self) -> dict:
        sub = self.state.subscription_id
        return {"id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
                "subscriptionId": sub, "tenantId": self.state.tenant_id, "displayName": self.state.subscription_name,
                "state": "Enabled", "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                             "quotaId": "PayAsYouGo_2014-09-01",
                                                             "spendingLimit": "Off"}}

    def _tenants(self) -> web.Response:
        tenant = self.state.tenant_id
        return json_response({"value": [{"id": f"/tenants/{tenant}", "tenantId": tenant, "countryCode": "US",
                                         "displayName": "Bastion emulator tenant", "domains": ["emulator.invalid"],
                                         "tenantCategory": "Home", "defaultDomain": "emulator.invalid",
                                         "tenantType": "AAD"}]})

    def _operation(self, kind: str, op_id: str) -> web.Response:
        op = self.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
        if kind == "operations":
            body = {"id": op_id, "name": op_id, "status": op.status, "startTime": op.started}
            headers = {"retry-after-ms": RETRY_AFTER_MS} if op.status == "InProgress" else None
            return json_response(body, headers=headers)
        if op.status == "InProgress":
            return web.Response(status=202, headers={"retry-after-ms": RETRY_AFTER_MS})
        if op.result is None:
            return web.Response(status=204)
        return json_response(op.result)

    def _list(self, type_name: str, scope: str) -> web.Response:
        return json_response({"value": self.state.list_resources(type_name.lower(), scope)})

    # --- resource group level ------------------------------------------------------------------
    async def _resource_group_scope(self, request: web.Request, parts: list[str]) -> web.Response:
        if len(parts) == 3:
            return json_response({"value": self.state.list_resource_groups()})
        group = self.state.get_resource_group(parts[1], parts[3])
        if len(parts) == 4:
            return await self._resource_group(request, parts[3], group)
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        if len(parts) < 7 or parts[4].lower() != "providers":
            raise ArmError(404, "NotFound", f"No route for {request.method} {request.path}.")
        tail = parts[6:]
        if len(tail) == 1:
            if request.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed on a collection.")
            return self._list(f"{parts[5]}/{tail[0]}", group["id"])
        resource_id = "/" + "/".join(parts)
        if len(tail) % 2 == 0:
            return await self._resource(request, resource_id)
        return await self._sub_path(request, "/" + "/".join(parts[:-1]), parts[-1])

    async def _resource_group(self, request: web.Request, name: str, group: dict | None) -> web.Response:
        if request.method in ("PUT", "PATCH"):
            body = await _json_body(request)
            created = group is None
            group = self.state.put_resource_group(name, body.get("location"))
            return json_response(group, status=201 if created else 200)
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        if request.method == "HEAD":
            return web.Response(status=204)
        if request.method == "GET":
            return json_response(group)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} on a resource group is not emulated.")

    async def _sub_path(self, request: web.Request, parent_id: str, segment: str) -> web.Response:
        """A child collection (``subnets``), an action (``getActiveSessions``) or ``instanceView``."""
        parent = self.state.get_resource(parent_id)
        if parent is None:
            raise _not_found(parent_id)
        kind = parent["type"].lower()
        action = segment.lower()
        if request.method == "GET" and f"{kind}/{action}" in PREPARE:
            return self._list(f"{kind}/{action}", parent["id"])
        if kind == "microsoft.compute/virtualmachines" and action == "instanceview" and request.method == "GET":
            return json_response(self._instance_view(parent))
        if kind == "microsoft.network/bastionhosts" and request.method == "POST":
            if action == "getactivesessions":
                return self._get_active_sessions(request, parent)
            if action == "disconnectactivesessions":
                return await self._disconnect_active_sessions(request, parent)
        raise ArmError(404, "NotFound", f"No route for {request.method} {request.path}.")

    # --- one resource --------------------------------------------------------------------------
    async def _resource(self, request: web.Request, resource_id: str) -> web.Response:
        parsed = parse_resource_id(resource_id)
        kind = parsed["type"].lower()
        if kind not in PREPARE and kind not in READ_ONLY_TYPES:
            raise ArmError(404, "InvalidResourceType", f"The resource type '{parsed['type'].split('/', 1)[1]}' could "
                           f"not be found in the namespace '{parsed['type'].split('/')[0]}' for api version "
                           f"'{request.query['api-version']}'.")
        existing = self.state.get_resource(resource_id)
        self._check_preconditions(request, existing)
        if request.method == "GET":
            if existing is None:
                raise _not_found(resource_id)
            if kind == "microsoft.compute/virtualmachines" and request.query.get("$expand", "").lower() \
                    == "instanceview":
                existing["properties"]["instanceView"] = self._instance_view(existing)
            return json_response(existing, headers={"ETag": existing["etag"]})
        if kind in READ_ONLY_TYPES:
            raise ArmError(405, "OperationNotSupportedByEmulator",
                           f"{parsed['type']} resources are read-only here: they come from the emulator's seed.")
        if request.method == "PUT":
            return await self._put(request, resource_id, kind, existing)
        if existing is None:
            if request.method == "DELETE":
                return web.Response(status=204)
            raise _not_found(resource_id)
        if request.method == "PATCH":
            return await self._patch_tags(request, resource_id, existing)
        if request.method == "DELETE":
            return self._delete(request, resource_id, kind, existing)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed on {parsed['type']}.")

    @staticmethod
    def _check_preconditions(request: web.Request, existing: dict | None) -> None:
        if_match, if_none_match = request.headers.get("If-Match"), request.headers.get("If-None-Match")
        stale = existing is None or (if_match and if_match.strip() != "*"
                                     and not _etag_matches(if_match, existing["etag"]))
        if if_match and stale:
            raise ArmError(412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) "
                           "is not met. The resource's ETag does not match the If-Match header.")
        if if_none_match and existing is not None and (if_none_match.strip() == "*"
                                                       or _etag_matches(if_none_match, existing["etag"])):
            raise ArmError(412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) "
                           "is not met. The resource already exists (If-None-Match).")

    @staticmethod
    def _check_not_busy(existing: dict | None) -> None:
        busy = (existing or {}).get("properties", {}).get("provisioningState")
        if busy in BUSY_STATES:
            raise ArmError(409, "AnotherOperationInProgress",
                           f"Another operation on this or dependent resource is in progress. Resource "
                           f"{existing['id']} is in provisioning state {busy}; retry when it has finished.")

    async def _put(self, request: web.Request, resource_id: str, kind: str, existing: dict | None) -> web.Response:
        self._check_not_busy(existing)
        body = await _json_body(request)
        parsed = parse_resource_id(resource_id)
        if parsed["parent_id"] and self.state.get_resource(parsed["parent_id"]) is None:
            raise ArmError(404, "ParentResourceNotFound", f"Can not perform requested operation on nested resource. "
                           f"Parent resource '{parsed['parent_id'].rsplit('/', 1)[1]}' not found.")
        if parsed["parent_id"] is None and not (body.get("location") or existing):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        validation.check_resource_name(kind, parsed["name"])
        validation.check_api_version_properties(kind, body, request.query["api-version"])
        prepared = PREPARE[kind](self.state, resource_id, body, existing)
        prepared.setdefault("properties", {})["provisioningState"] = "Updating"
        stored = self.state.put_resource(resource_id, prepared)
        if kind == "microsoft.network/bastionhosts" and not stored["properties"].get("dnsName"):
            dns_name = await self.dataplane_hosts.start(stored["id"])
            self.state.set_properties(stored["id"], dnsName=dns_name)
            stored["properties"]["dnsName"] = dns_name
        op = self.operations.start(parsed["type"].split("/")[0],
                                   lambda: self.state.set_properties(stored["id"], provisioningState="Succeeded"))
        headers = _lro_headers(request, op, with_location=False)
        headers["ETag"] = stored["etag"]
        return json_response(stored, status=200 if existing else 201, headers=headers)

    async def _patch_tags(self, request: web.Request, resource_id: str, existing: dict) -> web.Response:
        self._check_not_busy(existing)
        body = await _json_body(request)
        if set(body) - {"tags"}:
            raise ArmError(400, "InvalidRequestContent", "PATCH accepts only 'tags' on this resource type.")
        existing["tags"] = body.get("tags") or {}
        stored = self.state.put_resource(resource_id, existing)
        return json_response(stored, headers={"ETag": stored["etag"]})

    def _delete(self, request: web.Request, resource_id: str, kind: str, existing: dict) -> web.Response:
        self._check_not_busy(existing)
        self._check_not_referenced(existing)
        if kind == "microsoft.network/networksecuritygroups/securityrules":
            validation.check_security_rule_delete(self.state, resource_id)
        self.state.set_properties(resource_id, provisioningState="Deleting")

        async def finish():
            if kind == "microsoft.network/bastionhosts":
                await self.dataplane_hosts.stop(existing["id"])
            self.state.delete_resource(resource_id)

        op = self.operations.start(existing["type"].split("/")[0], finish)
        return web.Response(status=202, headers=_lro_headers(request, op, with_location=True))

    def _check_not_referenced(self, resource: dict) -> None:
        """Azure refuses to delete a subnet, VNet, NSG or public IP that something still uses."""
        own = resource["id"].lower()
        for other in self.state.list_resources("", f"/subscriptions/{self.state.subscription_id}"):
            other_id = other["id"].lower()
            if other_id == own or other_id.startswith(own + "/") or own.startswith(other_id + "/"):
                continue
            if other["type"] == "Microsoft.Network/networkSecurityGroups":
                other["properties"].pop("subnets", None)  # a back-reference, not a use
            text = json.dumps(other).lower()
            for needle in (f'"{own}"', f'"{own}/'):
                if needle in text:
                    code = {"microsoft.network/virtualnetworks/subnets": "InUseSubnetCannotBeDeleted",
                            "microsoft.network/virtualnetworks": "InUseSubnetCannotBeDeleted",
                            "microsoft.network/networksecuritygroups": "InUseNetworkSecurityGroupCannotBeDeleted",
                            "microsoft.network/publicipaddresses": "PublicIPAddressCannotBeDeleted",
                            }.get(resource["type"].lower(), "InUseResourceCannotBeDeleted")
                    raise ArmError(400, code, f"{resource['type'].split('/')[-1]} {resource['name']} is in use by "
                                   f"{other['id']} and cannot be deleted.")

    # --- compute -------------------------------------------------------------------------------
    def _instance_view(self, vm: dict) -> dict:
        power = self.state.vm_power_state(vm["id"])
        os_type = vm["properties"].get("storageProfile", {}).get("osDisk", {}).get("osType", "Linux")
        return {
            "computerName": vm["properties"].get("osProfile", {}).get("computerName", vm["name"]),
            "osName": "ubuntu" if os_type == "Linux" else "Windows Server 2022 Datacenter",
            "vmAgent": {"vmAgentVersion": "2.13.1.1", "statuses": [{
                "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                "time": _now_iso()}]},
            "statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
                 "time": _now_iso()},
                {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"},
            ],
        }

    # --- bastion actions -----------------------------------------------------------------------
    def _get_active_sessions(self, request: web.Request, host: dict) -> web.Response:
        def finish():
            return {"value": active_sessions(self.state, host["id"]), "nextLink": None}
        op = self.operations.start("Microsoft.Network", finish)
        return web.Response(status=202, headers=_lro_headers(request, op, with_location=True))

    async def _disconnect_active_sessions(self, request: web.Request, host: dict) -> web.Response:
        body = await _json_body(request)
        ids = body.get("sessionIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ArmError(400, "InvalidRequestContent", "sessionIds must be a list of session ids.")
        return json_response({"value": disconnect_sessions(self.state, host["id"], ids), "nextLink": None})


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json() if request.body_exists else {}
    except ValueError:
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                       "deserialized.") from None
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def add_routes(app: web.Application, api: ArmApi) -> None:
    app.router.add_route("*", "/subscriptions", api.handle)
    app.router.add_route("*", "/subscriptions/{tail:.*}", api.handle)
    app.router.add_route("*", "/tenants", api.handle)
    app.router.add_post("/_emulator/api-versions", api.withdraw_api_versions)
    app.router.add_delete("/_emulator/api-versions", api.restore_api_versions)
