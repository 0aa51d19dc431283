"""Probe the Bastion data plane and time it.

`az network bastion doctor`'s data-plane probes: a TLS handshake with the host's dnsName, or (with a target) one
session through DataPlaneClient - minted, its websocket opened (Bastion connects to the target port) and closed
with nothing sent, deleted - which proves sign-in, host, tunnelling, NSG, target and port together. No azure.cli
imports; nothing here logs a token."""

import asyncio
import socket
import time

from azext_bastion_native.dataplane.errors import DataPlaneError
from azext_bastion_native.doctor.checks import MINT, WEBSOCKET, ProbeResult

TLS_TIMEOUT = 10.0


def _split(endpoint_host):
    host, _, port = endpoint_host.rpartition(':') if endpoint_host.count(':') == 1 else (endpoint_host, '', '')
    return (host, int(port)) if port.isdigit() else (endpoint_host, 443)


def tls_handshake(endpoint_host, settings, timeout=TLS_TIMEOUT, clock=time.perf_counter):
    """Connect and complete a TLS handshake with `endpoint_host` ('name' or 'name:port') the way the tunnel
    would: same CA bundle, same verification switch; through the HTTPS proxy when one applies."""
    host, port = _split(endpoint_host)
    start = clock()
    try:
        if settings.proxy_for(host, port):
            _through_proxy(endpoint_host, settings, timeout)
        else:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                with settings.ssl_context().wrap_socket(raw, server_hostname=host):
                    pass
    except (OSError, ValueError) as err:
        return ProbeResult('tls', endpoint_host, False, error=_describe(err), verify=settings.verify)
    return ProbeResult('tls', endpoint_host, True, (clock() - start) * 1000, verify=settings.verify)


def _through_proxy(endpoint_host, settings, timeout):
    import requests
    try:
        requests.head(f'https://{endpoint_host}/', verify=settings.requests_verify(), timeout=timeout,
                      allow_redirects=False)
    except requests.RequestException as err:
        # requests' messages quote the URL and the proxy (which may carry a password): name the kind only.
        raise OSError(f'HTTPS through the proxy failed ({type(err).__name__})') from None


def _describe(err):
    import ssl
    if isinstance(err, ssl.SSLCertVerificationError):
        return f'TLS certificate not trusted ({err.verify_message or err.reason})'
    if isinstance(err, ssl.SSLError):
        return f'TLS handshake failed ({err.reason or type(err).__name__})'
    if isinstance(err, socket.timeout):
        return 'no answer in time (timeout)'
    return f'cannot connect ({err.strerror or err})' if isinstance(err, OSError) else str(err)


def session_round_trip(client, target, clock=time.perf_counter):
    """Mint a session for `target`, open its websocket and close it at once, delete the session; the client is
    closed (deleting anything still live, e.g. after a failed websocket or delete, or Ctrl+C) on every way out.
    Opening the websocket is what a real connection does first: Bastion refuses it when nothing accepts the TCP
    connection on the target port, which a mint alone never shows."""
    async def probe():
        start = clock()
        stage = MINT
        try:
            session = await client.mint(target)
            stage = WEBSOCKET
            close_websocket(await client.connect(session))
            await client.delete(session)
            return (clock() - start) * 1000, None, stage
        except DataPlaneError as err:
            return 0.0, err, stage
        finally:
            await client.aclose()
    elapsed_ms, error, stage = asyncio.run(probe())
    # aclose() retried any delete that failed; what is still recorded as live was not deleted.
    deleted = not client.live_sessions
    if error is not None:
        return ProbeResult('session', client.endpoint.host, False, error=error.message, status=error.status,
                           deleted=deleted, verify=client.settings.verify, stage=stage)
    return ProbeResult('session', client.endpoint.host, True, elapsed_ms, deleted=deleted,
                       verify=client.settings.verify)


def close_websocket(websocket):
    """Close an opened tunnel websocket (dataplane.websocket.OpenedWebsocket) the normal way (1000) and its
    connection, sending nothing through it."""
    from websockets.protocol import State
    if websocket.protocol.state is State.OPEN and not websocket.lost:
        websocket.protocol.send_close(1000)
        websocket.tls.send(websocket.transport, [data for data in websocket.protocol.data_to_send() if data])
    websocket.transport.close()
