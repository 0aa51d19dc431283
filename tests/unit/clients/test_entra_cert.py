"""clients/entra_cert.py: the Entra ID SSH certificate, its scope per cloud, and answers that are refused."""
import json
import os
import stat
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from azext_bastion_native.clients import entra_cert

VM_ID = '/subscriptions/S1/resourceGroups/My-RG/providers/Microsoft.Compute/virtualMachines/Vm-1'


# -- Entra SSH certificate ----------------------------------------------------------------------------------
def _ca_signing_fetcher(principals=(b'alice@contoso.com', b'second'), seen=None, cert_type=None):
    """A stand-in for Entra: signs the JWK's key with a throwaway CA, as the token endpoint does."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import SSHCertificateBuilder, SSHCertificateType
    import base64
    ca = ed25519.Ed25519PrivateKey.generate()

    def fetch(scopes, data):
        if seen is not None:
            seen.append((scopes, data))
        jwk = json.loads(data['req_cnf'])

        def number(value):
            return int.from_bytes(base64.urlsafe_b64decode(value + '=' * (-len(value) % 4)), 'big')
        public_key = rsa.RSAPublicNumbers(number(jwk['e']), number(jwk['n'])).public_key()
        now = int(time.time())
        builder = SSHCertificateBuilder().public_key(public_key).serial(1) \
            .type(cert_type or SSHCertificateType.USER).key_id(b'k').valid_after(now - 60).valid_before(now + 600)
        builder = builder.valid_principals(list(principals)) if principals else builder.valid_for_all_principals()
        return builder.sign(ca).public_bytes().split()[1].decode()
    return fetch


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_certificate_is_written_next_to_an_ephemeral_key(tmp_path):
    seen = []
    credentials = entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(seen=seen), 'AzureCloud')
    assert credentials.principal == 'alice@contoso.com'
    scopes, data = seen[0]
    assert scopes == ['https://pas.windows.net/CheckMyAccess/Linux/.default']
    assert data['token_type'] == 'ssh-cert'
    jwk = json.loads(data['req_cnf'])
    assert jwk['kty'] == 'RSA' and data['key_id'] == jwk['kid'] and set(jwk) == {'kty', 'n', 'e', 'kid'}
    certificate = open(credentials.certificate_path, encoding='ascii').read()
    assert certificate.startswith('ssh-rsa-cert-v01@openssh.com ')
    assert credentials.certificate_path == credentials.private_key_path + '-cert.pub'
    for path in (credentials.private_key_path, credentials.certificate_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = serialization.load_ssh_private_key(open(credentials.private_key_path, 'rb').read(), None)
    assert key.public_key().public_numbers().n == int.from_bytes(
        __import__('base64').urlsafe_b64decode(jwk['n'] + '=' * (-len(jwk['n']) % 4)), 'big')


@pytest.mark.skipif(not __import__('shutil').which('ssh-keygen'), reason='ssh-keygen not installed')
def test_openssh_accepts_the_written_certificate(tmp_path):
    credentials = entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(), 'AzureCloud')
    listing = subprocess.run(['ssh-keygen', '-L', '-f', credentials.certificate_path], capture_output=True,
                             text=True, check=True).stdout
    assert 'user certificate' in listing and 'alice@contoso.com' in listing


@pytest.mark.parametrize('cloud, host', [('AzureCloud', 'https://pas.windows.net'),
                                         ('AzureChinaCloud', 'https://pas.chinacloudapi.cn'),
                                         ('AzureUSGovernment', 'https://pasff.usgovcloudapi.net')])
def test_certificate_scope_follows_the_cloud(cloud, host):
    assert entra_cert.ssh_certificate_scope(cloud) == host + '/CheckMyAccess/Linux/.default'


def test_an_unknown_cloud_is_refused_not_given_a_guessed_scope(tmp_path):
    """As Microsoft's ssh extension (custom.py _get_and_write_certificate): another cloud is an error, not
    pas.windows.net; nothing is generated or asked for."""
    asked = []
    with pytest.raises(entra_cert.Refused) as refused:
        entra_cert.obtain_certificate(str(tmp_path), lambda *args: asked.append(args), 'MyStackHub')
    assert "'MyStackHub'" in refused.value.message and 'azurecloud' in refused.value.message
    assert 'bastion_native.ssh_certificate_scope' in refused.value.recommendation
    assert asked == [] and list(tmp_path.iterdir()) == []


def test_a_configured_scope_is_used_for_any_cloud():
    scope = 'https://pas.example.test/CheckMyAccess/Linux/.default'
    assert entra_cert.ssh_certificate_scope('MyStackHub', scope) == scope


@pytest.mark.parametrize('answer', ['', 'not-base64!', 'AAAA'])
def test_unusable_answer_is_a_certificate_error(tmp_path, answer):
    with pytest.raises(entra_cert.CertificateError):
        entra_cert.obtain_certificate(str(tmp_path), lambda *_: answer, 'AzureCloud')


def test_certificate_without_principal_is_refused(tmp_path):
    with pytest.raises(entra_cert.CertificateError, match='principal'):
        entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(principals=()), 'AzureCloud')


def test_host_certificate_is_refused(tmp_path):
    from cryptography.hazmat.primitives.serialization import SSHCertificateType
    with pytest.raises(entra_cert.CertificateError, match='host certificate'):
        entra_cert.obtain_certificate(str(tmp_path), _ca_signing_fetcher(cert_type=SSHCertificateType.HOST),
                                      'AzureCloud')


def test_certificate_for_another_key_is_refused(tmp_path):
    other_dir = tmp_path / 'other'
    other_dir.mkdir()
    foreign = _ca_signing_fetcher()
    stolen = {}

    def fetch_for_other_key(scopes, data):
        _, other_key = entra_cert.generate_key_pair(str(other_dir))
        stolen['body'] = foreign(scopes, entra_cert.certificate_request_data(entra_cert.public_jwk(other_key)))
        return stolen['body']
    with pytest.raises(entra_cert.CertificateError, match='different key'):
        entra_cert.obtain_certificate(str(tmp_path), fetch_for_other_key, 'AzureCloud')
