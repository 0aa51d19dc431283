"""Entra ID (login endpoint) and cloud metadata, as MSAL and ``az cloud register`` see them."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from datetime import datetime, timezone

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from .certs import USER_CERT_LIFETIME, sign_user_certificate
from .responses import json_response

ARM_AUDIENCE = "https://management.core.windows.net/"
SSH_CERT_SCOPE_SUFFIX = "/CheckMyAccess/Linux/.default"


def base_url(request: web.Request) -> str:
    return f"https://{request.host}"


async def cloud_metadata(request: web.Request) -> web.Response:
    """One cloud object, the shape of ``https://management.azure.com/metadata/endpoints?api-version=2022-09-01``."""
    base = base_url(request)
    return json_response({
        "name": request.app["cloud_name"],
        "portal": f"{base}/portal",
        "resourceManager": f"{base}/",
        "authentication": {"loginEndpoint": base, "audiences": [ARM_AUDIENCE, f"{base}/"],
                           "tenant": "common", "identityProvider": "AAD"},
        "graph": f"{base}/graph/",
        "graphAudience": f"{base}/graph/",
        "microsoftGraphResourceId": f"{base}/msgraph/",
        "media": f"{base}/media/",
        "batch": f"{base}/batch/",
        "sqlManagement": f"{base}/sql/",
        "gallery": f"{base}/gallery/",
        "activeDirectoryDataLake": f"{base}/datalake/",
        "vmImageAliasDoc": f"{base}/vmimagealiases.json",
        "suffixes": {"keyVaultDns": "vault.azure.net", "storage": "core.windows.net",
                     "sqlServerHostname": "database.windows.net", "acrLoginServer": "azurecr.io",
                     "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                     "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                     "mhsmDns": "managedhsm.azure.net"},
    })


async def openid_configuration(request: web.Request) -> web.Response:
    tenant = request.match_info["tenant"]
    base = base_url(request)
    return json_response({
        "issuer": f"{base}/{tenant}/v2.0",
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "EU",
    })


def _entra_error(status: int, error: str, code: int, description: str) -> web.Response:
    """Entra's error body: AADSTS code first in the description, then trace and correlation ids."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return json_response({
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                             f"Timestamp: {stamp}",
        "error_codes": [code], "timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }, status=status)


_B64URL_PADDED = re.compile(r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$")


def _ssh_mpint(value: object, what: str) -> int:
    """A JWK number as the ``ssh`` extension writes it: padded base64url of the SSH wire mpint (RFC 4251)."""
    if not isinstance(value, str) or not value or not _B64URL_PADDED.match(value):
        raise ValueError(f"{what} is not padded base64url")
    raw = base64.urlsafe_b64decode(value)
    if raw[0] & 0x80 or (len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80):
        raise ValueError(f"{what} is not an SSH mpint (a leading zero byte exactly when the top bit is set)")
    return int.from_bytes(raw, "big")


def _ssh_cert_public_key(req_cnf: str, key_id: str) -> rsa.RSAPublicKey:
    """The RSA key of an ssh-cert request whose ``req_cnf`` and ``key_id`` are built exactly as Azure CLI's
    ``ssh`` extension builds them (Azure/azure-cli-extensions src/ssh/azext_ssh/rsa_parser.py and custom.py
    ``_prepare_jwk_data``): ``json.dumps({"kty", "n", "e", "kid"})`` with default separators, n and e the key's
    SSH wire fields in padded base64url, kid = sha256(n + e) hex, key_id = kid. That request is the only one real
    Entra is known to answer, so anything else is refused here; ValueError says what differs."""
    jwk = json.loads(req_cnf)
    if not isinstance(jwk, dict) or list(jwk) != ["kty", "n", "e", "kid"] or json.dumps(jwk) != req_cnf:
        raise ValueError('req_cnf is not json.dumps({"kty", "n", "e", "kid"}) with default separators')
    if jwk["kty"] != "RSA":
        raise ValueError("req_cnf must be an RSA JWK")
    modulus, exponent = _ssh_mpint(jwk["n"], "n"), _ssh_mpint(jwk["e"], "e")
    kid = hashlib.sha256(jwk["n"].encode() + jwk["e"].encode()).hexdigest()
    if jwk["kid"] != kid or key_id != kid:
        raise ValueError("kid and key_id must both be sha256(n + e) in hex")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


async def token(request: web.Request) -> web.Response:  # pylint: disable=too-many-return-statements
    state = request.app["state"]
    tenant = request.match_info["tenant"]
    form = await request.post()
    if tenant.lower() not in (state.tenant_id.lower(), "organizations"):
        return _entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                            "have the correct tenant ID and are signing into the correct cloud.")
    if form.get("grant_type") != "client_credentials":
        return _entra_error(400, "unsupported_grant_type", 70003,
                            "The app requested an unsupported grant type. Only client_credentials is emulated.")
    if form.get("client_id") != state.client_id:
        return _entra_error(400, "unauthorized_client", 700016,
                            f"Application with identifier '{form.get('client_id')}' was not found in the directory "
                            f"'{state.tenant_id}'.")
    if form.get("client_secret") != state.client_secret:
        return _entra_error(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in the request is the "
                            f"client secret value, not the client secret ID, for a secret added to app "
                            f"'{state.client_id}'.")
    scope = form.get("scope", "")
    now = int(time.time())
    if form.get("token_type") == "ssh-cert":
        if not any(s.endswith(SSH_CERT_SCOPE_SUFFIX) for s in scope.split()):
            return _entra_error(400, "invalid_scope", 70011, f"The provided value for scope {scope} is not valid "
                                "for an SSH certificate.")
        key_id = form.get("key_id", "")
        try:
            public_key = _ssh_cert_public_key(form.get("req_cnf", ""), key_id)
        except ValueError as exc:   # json.JSONDecodeError included
            return _entra_error(400, "invalid_request", 50001, f"The req_cnf parameter is not a valid RSA JWK: {exc}.")
        lifetime = USER_CERT_LIFETIME if state.ssh_cert_lifetime is None else state.ssh_cert_lifetime
        cert_line = sign_user_certificate(request.app["keys"].user_ca_key, public_key, state.login_name,
                                          key_id=key_id, lifetime=lifetime)
        cert_body = cert_line.split()[1].decode()
        state.remember_secret(cert_body)
        return json_response({"token_type": "ssh-cert", "scope": scope, "expires_in": lifetime,
                              "ext_expires_in": lifetime, "expires_on": now + lifetime,
                              "access_token": cert_body})
    audience = scope.split(" ")[0].removesuffix(".default").rstrip("/") + "/" if scope else ARM_AUDIENCE
    access_token, expires = state.issue_access_token(audience)
    return json_response({"token_type": "Bearer", "expires_in": expires - now, "ext_expires_in": expires - now,
                          "access_token": access_token})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metadata/endpoints", cloud_metadata)
    # `az cloud register` appends "/metadata/..." to an endpoint that ends with "/"
    app.router.add_get("//metadata/endpoints", cloud_metadata)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
