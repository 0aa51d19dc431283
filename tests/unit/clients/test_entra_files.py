"""clients/entra_files.py: one key pair per user and az configuration, a certificate fetched only when the one in
place is missing or due, files 0600 in a 0700 directory, and the login name as Microsoft's `az ssh config` makes
it (the first principal, lower-cased)."""
import os
import stat
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from azext_bastion_native.agent import entra_refresh
from azext_bastion_native.clients import entra_files
from bastion_emulator.certs import sign_user_certificate

CA = ed25519.Ed25519PrivateKey.generate()


class Entra:
    """Signs the requested key's certificate as Entra would (the key comes back from req_cnf's JWK)."""

    def __init__(self, lifetime=3600, principal='Alice@Contoso.com'):
        self.lifetime, self.principal, self.requests = lifetime, principal, []

    def __call__(self, scopes, data):
        import base64
        import json
        self.requests.append((scopes, data))
        jwk = json.loads(data['req_cnf'])
        number = [int.from_bytes(base64.urlsafe_b64decode(jwk[part]), 'big') for part in ('e', 'n')]
        key = rsa.RSAPublicNumbers(*number).public_key()
        return sign_user_certificate(CA, key, self.principal, key_id=data['key_id'],
                                     lifetime=self.lifetime).split()[1].decode()


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('AZURE_CONFIG_DIR', str(tmp_path / 'azure'))
    return tmp_path / 'azure'


def test_the_login_name_is_the_first_principal_lower_cased():
    assert entra_files.entra_user('Alice@Contoso.COM') == 'alice@contoso.com'


def test_first_run_makes_the_key_pair_and_fetches_a_certificate_privately(config_dir):
    entra = Entra()
    files = entra_files.ensure_certificate(entra, 'scope/.default')
    assert files.renewed and files.user == 'alice@contoso.com' and len(entra.requests) == 1
    assert entra.requests[0][0] == ['scope/.default'] and entra.requests[0][1]['token_type'] == 'ssh-cert'
    directory = config_dir / entra_refresh.DIRECTORY_NAME
    assert files.key_path == str(directory / 'id_rsa') and files.certificate_path == str(directory / 'id_rsa-cert.pub')
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for name in ('id_rsa', 'id_rsa.pub', 'id_rsa-cert.pub'):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    assert sorted(os.listdir(directory)) == ['id_rsa', 'id_rsa-cert.pub', 'id_rsa.pub']   # no temporary left
    key = serialization.load_ssh_private_key((directory / 'id_rsa').read_bytes(), None)
    certificate = serialization.load_ssh_public_identity((directory / 'id_rsa-cert.pub').read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()


def test_a_valid_certificate_is_kept_and_a_due_one_renewed_for_the_same_key(config_dir):
    entra = Entra()
    first = entra_files.ensure_certificate(entra, 's')
    key = (config_dir / entra_refresh.DIRECTORY_NAME / 'id_rsa').read_bytes()
    again = entra_files.ensure_certificate(entra, 's')
    assert not again.renewed and len(entra.requests) == 1 and again.user == first.user
    later = time.time() + 3600 - entra_refresh.RENEW_MARGIN + 30        # within the margin of its end
    renewed = entra_files.ensure_certificate(entra, 's', now=later)
    assert renewed.renewed and len(entra.requests) == 2
    assert (config_dir / entra_refresh.DIRECTORY_NAME / 'id_rsa').read_bytes() == key     # the blocks' key stays


def test_a_directory_open_to_others_is_refused(config_dir):
    directory = config_dir / entra_refresh.DIRECTORY_NAME
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    with pytest.raises(entra_files.Refused) as raised:
        entra_files.ensure_certificate(Entra(), 's')
    assert 'private directory' in raised.value.message
    assert os.listdir(directory) == []


class CliContext:
    class cloud:  # pylint: disable=invalid-name,too-few-public-methods
        name = 'AzureCloud'

    class config:  # pylint: disable=invalid-name,too-few-public-methods
        @staticmethod
        def get(*_args, fallback=None):
            return fallback


def test_the_agent_renews_ahead_only_a_due_certificate_of_aad_blocks(config_dir, monkeypatch):
    entra = Entra()
    monkeypatch.setattr('azext_bastion_native.az_compat.entra_ssh_certificate',
                        lambda cli_ctx, scopes, data: entra(scopes, data))
    assert entra_files.renew_ahead(CliContext()) is None            # no aad blocks: nothing, no directory made
    assert not config_dir.exists() and entra.requests == []
    entra_files.ensure_certificate(entra, 's')
    assert entra_files.renew_ahead(CliContext()) is None and len(entra.requests) == 1     # not due yet
    later = time.time() + 3600 - entra_refresh.RENEW_MARGIN + 30
    renewed = entra_files.renew_ahead(CliContext(), now=later)
    assert renewed.renewed and len(entra.requests) == 2
    assert entra.requests[1][0] == ['https://pas.windows.net/CheckMyAccess/Linux/.default']


def test_the_agent_leaves_a_renewal_to_the_blocks_check_that_holds_the_lock(config_dir, monkeypatch):
    import fcntl
    entra = Entra()
    monkeypatch.setattr('azext_bastion_native.az_compat.entra_ssh_certificate',
                        lambda cli_ctx, scopes, data: entra(scopes, data))
    entra_files.ensure_certificate(entra, 's')
    held = os.open(str(config_dir / entra_refresh.DIRECTORY_NAME / entra_refresh.LOCK_NAME), os.O_WRONLY | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        later = time.time() + 3600
        assert entra_files.renew_ahead(CliContext(), now=later) is None and len(entra.requests) == 1
    finally:
        os.close(held)
