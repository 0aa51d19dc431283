"""Connection settings for the data plane: CA bundle, verification switch and proxies, read from the environment
the way azure-cli reads them (so the websocket trusts exactly what az's HTTPS calls trust), and the User-Agent."""

import os
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

CA_BUNDLE_VARIABLE = 'REQUESTS_CA_BUNDLE'
CLIENT_NAME = 'bastion-native'
NO_VERIFY_VARIABLE = 'AZURE_CLI_DISABLE_CONNECTION_VERIFICATION'


def _default_ca_bundle() -> Optional[str]:
    """requests' own default (certifi), so HTTPS calls and the websocket agree when no bundle is set."""
    try:
        import certifi
        return certifi.where()
    except ImportError:   # pragma: no cover - certifi ships with requests
        return None


def client_user_agent(az_version: Optional[str] = None, extension_version: Optional[str] = None) -> str:
    """The User-Agent of every data-plane call: azure-cli's product token (its own requests say
    ``AZURECLI/<version>``) and ours, e.g. ``AZURECLI/2.91.0 bastion-native/0.1.0``. The caller knows the versions
    (this package imports nothing from azure.cli)."""
    ours = f'{CLIENT_NAME}/{extension_version}' if extension_version else CLIENT_NAME
    return f'AZURECLI/{az_version} {ours}' if az_version else ours


@dataclass(frozen=True)
class ConnectionSettings:
    verify: bool = True
    ca_bundle: Optional[str] = None
    # The environment proxies are read from (None: os.environ at call time, like urllib and requests).
    environ: Optional[Mapping[str, str]] = None
    user_agent: str = CLIENT_NAME       # HTTPS calls and the websocket handshake

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None,
                     user_agent: str = CLIENT_NAME) -> 'ConnectionSettings':
        env = os.environ if environ is None else environ
        verify = not env.get(NO_VERIFY_VARIABLE)
        ca_bundle = env.get(CA_BUNDLE_VARIABLE) or env.get('CURL_CA_BUNDLE') or _default_ca_bundle()
        return cls(verify=verify, ca_bundle=ca_bundle, environ=environ, user_agent=user_agent)

    def requests_verify(self) -> Union[bool, str]:
        """The ``verify=`` value for requests."""
        if not self.verify:
            return False
        return self.ca_bundle or True

    def ssl_context(self) -> 'ResumingContext':
        """The data plane's TLS context: same CA bundle as requests, or no verification when switched off."""
        context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)     # hostname check and CERT_REQUIRED on
        if self.verify and self.ca_bundle:
            context.load_verify_locations(cafile=self.ca_bundle)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def proxy_for(self, host: str, port: int = 443) -> Optional[str]:
        """The HTTPS proxy URL for ``host`` per HTTPS_PROXY/NO_PROXY, or None for a direct connection."""
        env = os.environ if self.environ is None else self.environ
        proxies: Dict[str, Tuple[Tuple[bool, bool], str]] = {}
        bypass = ''
        for key, value in env.items():
            lower = key.lower()
            if lower in ('https_proxy', 'all_proxy') and value:
                # lower-case wins over upper-case, as in urllib; https beats all
                rank = (lower == 'https_proxy', key.islower())
                if lower not in proxies or rank > proxies[lower][0]:
                    proxies[lower] = (rank, value)
            elif lower == 'no_proxy' and value and (not bypass or key.islower()):
                bypass = value
        chosen = proxies.get('https_proxy') or proxies.get('all_proxy')
        if not chosen:
            return None
        if bypass and _bypassed(host, port, bypass):
            return None
        return chosen[1]


class ResumingContext(ssl.SSLContext):
    """A client SSLContext that resumes TLS sessions: each new connection to a host offers the session (ticket)
    last remembered for it, so the server may skip the certificate exchange. The server decides; a refused
    ticket just means a full handshake. asyncio creates every TLS connection through ``wrap_bio``."""

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: Union[str, bytes, None] = None,
                 session: Optional[ssl.SSLSession] = None) -> ssl.SSLObject:
        if session is None and not server_side:
            session = self._resumable().get(server_hostname)
        return super().wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=server_hostname,
                                session=session)

    def remember(self, ssl_object: Any) -> bool:
        """Keep ``ssl_object``'s session (a completed connection made with this context) for its host."""
        session = getattr(ssl_object, 'session', None)
        if session is None or not session.has_ticket:
            return False
        self._resumable()[ssl_object.server_hostname] = session
        return True

    def _resumable(self) -> Dict[Any, ssl.SSLSession]:
        sessions: Dict[Any, ssl.SSLSession] = self.__dict__.setdefault('resumable_sessions', {})
        return sessions


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """NO_PROXY matching as urllib does it (``*``, domain suffixes, host:port)."""
    return bool(urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]  # public, not in typeshed
        f'{host}:{port}', {'no': no_proxy}))
