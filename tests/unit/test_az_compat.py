"""az_compat.entra_ssh_certificate on both shapes of azure-cli's Profile: with get_msal_token (2.91) and without it
(2.67, where the signed-in credential is asked with the certificate request). The real 2.67 path runs in
tests/compat (ssh --auth-type aad through that az)."""
from azure.cli.core import _profile

from azext_bastion_native.az_compat import entra_ssh_certificate

DATA = {'token_type': 'ssh-cert', 'req_cnf': '{"kty": "RSA"}', 'key_id': 'k'}
SCOPES = ['https://pas.windows.net/CheckMyAccess/Linux/.default']


class _Token:  # pylint: disable=too-few-public-methods
    def __init__(self, token):
        self.token = token


class _Credential:  # pylint: disable=too-few-public-methods
    def __init__(self, asked):
        self.asked = asked

    def get_token(self, *scopes, **kwargs):
        self.asked.append((scopes, kwargs))
        return _Token('cert-from-credential')


def test_without_get_msal_token_the_credential_is_asked_with_the_request(monkeypatch):
    asked = []

    class Profile267:
        def __init__(self, cli_ctx=None):
            self.cli_ctx = cli_ctx

        @staticmethod
        def get_subscription():
            return {'id': 'sub-1'}

        @staticmethod
        def get_login_credentials(subscription_id=None):
            assert subscription_id == 'sub-1'
            return _Credential(asked), 'sub-1', 'tenant'

    monkeypatch.setattr(_profile, 'Profile', Profile267)
    assert entra_ssh_certificate(object(), SCOPES, DATA) == 'cert-from-credential'
    assert asked == [(tuple(SCOPES), {'data': DATA})]


def test_with_get_msal_token_it_is_used(monkeypatch):
    class Profile291:
        def __init__(self, cli_ctx=None):
            self.cli_ctx = cli_ctx

        @staticmethod
        def get_msal_token(scopes, data):
            assert (scopes, data) == (SCOPES, DATA)
            return 'principal', 'cert-from-msal'

    monkeypatch.setattr(_profile, 'Profile', Profile291)
    assert entra_ssh_certificate(object(), SCOPES, DATA) == 'cert-from-msal'
