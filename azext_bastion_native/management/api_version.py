"""The one Microsoft.Network api-version this extension speaks, pinned where the network client is built.

azure-mgmt-network 33.x sends its newest version (2026-03-01) for every operation. Clouds roll versions out
unevenly (sovereign clouds and Azure Stack Hub lag public Azure), so we send one chosen on purpose instead:
2024-05-01 is the oldest stable version with everything we send (Premium and Developer SKUs, Developer's
``virtualNetwork``, ``enableSessionRecording``, ``enablePrivateOnlyBastion``), out since mid-2024, also the version
Pulumi azure-native pins for bastionHosts; bastionHosts, NSGs and VNets all exist in it. Checked against
Azure/azure-rest-api-specs specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/bastionHost.json
and its BastionHostDeveloperPut.json / BastionHostPutWithPrivateOnly.json examples."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy

NETWORK_API_VERSION = '2024-05-01'
_API_VERSION_PARAMETER = re.compile(r'([?&]api-version=)[^&#]*', re.IGNORECASE)


def pin_api_version(url: str, version: str = NETWORK_API_VERSION) -> str:
    """`url` with its api-version query parameter (if any) set to `version`; the rest of it byte for byte."""
    return _API_VERSION_PARAMETER.sub(lambda match: match.group(1) + version, url)


def api_version_policy(version: str = NETWORK_API_VERSION) -> SansIOHTTPPolicy[Any, Any]:
    """An azure-core per-call policy that sends `version` on every request of the client it is given to,
    long-running-operation polls included (their URLs echo the version of the request that started them)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class PinApiVersion(SansIOHTTPPolicy[Any, Any]):
        def on_request(self, request: PipelineRequest[Any]) -> None:
            request.http_request.url = pin_api_version(request.http_request.url, version)

    return PinApiVersion()
