"""Ephemeral key pair + Entra-issued OpenSSH certificate for `--auth-type aad`.

Entra ID (AAD) sign-in to Linux VMs: an ephemeral RSA key pair, and an OpenSSH user certificate for its public key
that Entra issues (token_type=ssh-cert). Same wire facts as the upstream `ssh` extension,
without depending on it. The caller owns the directory and deletes it."""

import base64
import hashlib
import json
import os
from dataclasses import dataclass

from azext_bastion_native.errors import Kind, Refused

from .tempfiles import write_private_file

CERTIFICATE_TYPE = 'ssh-rsa-cert-v01@openssh.com'
KEY_BITS = 3072
# The Entra application that issues SSH certificates, per cloud: the three Microsoft's ssh extension knows
# (src/ssh/azext_ssh/custom.py `_get_and_write_certificate`, which refuses any other cloud as unsupported).
_SCOPE_PATH = '/CheckMyAccess/Linux/.default'
_SCOPE_HOSTS = {
    'azurecloud': 'https://pas.windows.net',
    'azurechinacloud': 'https://pas.chinacloudapi.cn',
    'azureusgovernment': 'https://pasff.usgovcloudapi.net',
}
# az config for a cloud outside that table: the scope, given by the user, never guessed.
SCOPE_CONFIG = ('bastion_native', 'ssh_certificate_scope')


class CertificateError(Refused):
    """Entra's answer was not a usable OpenSSH user certificate."""

    def __init__(self, message):
        super().__init__(message, 'Check that you signed in with `az login` as a user who has the Virtual Machine '
                         'User Login role on the VM.', Kind.AUTHENTICATION)


@dataclass(frozen=True)
class EntraCredentials:
    private_key_path: str
    certificate_path: str
    principal: str          # the login name: the certificate's first valid principal


def ssh_certificate_scope(cloud_name, configured=None):
    """The scope to ask Entra for an SSH certificate in the cloud ``cloud_name`` (azure-cli's cloud name): the one
    ``configured`` (az config bastion_native.ssh_certificate_scope) when given, else the cloud's from the table;
    another cloud is refused, as Microsoft's ssh extension refuses it, rather than sent a guessed scope."""
    if configured:
        return configured
    host = _SCOPE_HOSTS.get((cloud_name or '').lower())
    if host is None:
        section, option = SCOPE_CONFIG
        raise Refused(f"Entra ID SSH certificates are not known for the cloud '{cloud_name}': the clouds with one "
                      f"are {', '.join(sorted(_SCOPE_HOSTS))}.",
                      'Use --auth-type ssh-key or password; or, if this cloud has the SSH certificate application, '
                      f'give its scope: az config set {section}.{option}=https://<its host>{_SCOPE_PATH}',
                      Kind.INVALID_ARGUMENT)
    return host + _SCOPE_PATH


def _b64url_ssh_mpint(value):
    """``value`` as the SSH wire format writes it (RFC 4251 mpint: big-endian, a leading zero byte when the top bit
    is set), base64url-encoded with its padding kept."""
    return base64.urlsafe_b64encode(value.to_bytes(value.bit_length() // 8 + 1, 'big')).decode('ascii')


def public_jwk(public_key):
    """The RSA public key as the JWK {kty, n, e, kid} the ``ssh`` extension sends, the form Entra has seen.

    Not RFC 7518's minimal unpadded base64url: Azure/azure-cli-extensions src/ssh/azext_ssh/rsa_parser.py
    base64url-encodes the key's SSH wire fields as they are (so ``n`` keeps the mpint's leading zero byte) with
    padding, and custom.py ``_prepare_jwk_data`` derives ``kid`` as sha256 over ``n`` then ``e``, no separator."""
    numbers = public_key.public_numbers()
    n, e = _b64url_ssh_mpint(numbers.n), _b64url_ssh_mpint(numbers.e)
    kid = hashlib.sha256(n.encode('utf-8') + e.encode('utf-8')).hexdigest()
    return {'kty': 'RSA', 'n': n, 'e': e, 'kid': kid}


def certificate_request_data(jwk):
    """The extra token-request fields that make Entra answer an SSH certificate for ``jwk``'s key.

    ``req_cnf`` is ``json.dumps`` with its default separators, as custom.py ``_prepare_jwk_data`` sends it."""
    return {'token_type': 'ssh-cert', 'req_cnf': json.dumps(jwk), 'key_id': jwk['kid']}


def generate_key_pair(directory):
    """Write a fresh RSA private key (OpenSSH format, 0600) and its .pub into ``directory``.

    Returns (private_key_path, public_key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_path = os.path.join(directory, 'id_rsa')
    write_private_file(private_path, key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.OpenSSH,
                                                       serialization.NoEncryption()))
    public_key = key.public_key()
    write_private_file(private_path + '.pub', public_key.public_bytes(serialization.Encoding.OpenSSH,
                                                                      serialization.PublicFormat.OpenSSH) + b'\n')
    return private_path, public_key


def certificate_line_of(body):
    """The OpenSSH certificate line for what Entra answered: its base64 body, with or without the type in front."""
    if not isinstance(body, str) or not body.strip():
        raise CertificateError('Entra ID answered no SSH certificate.')
    body = body.strip()
    if body.startswith(CERTIFICATE_TYPE + ' '):
        body = body.split()[1]
    return f'{CERTIFICATE_TYPE} {body}'


def first_principal(certificate_line, public_key=None):
    """The certificate's first valid principal; checks it is a user certificate (for ``public_key``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import SSHCertificateType
    try:
        certificate = serialization.load_ssh_public_identity(certificate_line.encode('ascii'))
    except (ValueError, TypeError, UnicodeEncodeError) as err:
        raise CertificateError(f'Entra ID did not answer a valid OpenSSH certificate ({type(err).__name__}).') \
            from None
    if not isinstance(certificate, serialization.SSHCertificate):
        raise CertificateError('Entra ID answered a plain public key, not an OpenSSH certificate.')
    if certificate.type is not SSHCertificateType.USER:
        raise CertificateError('Entra ID answered a host certificate, not a user certificate.')
    if public_key is not None and certificate.public_key().public_numbers() != public_key.public_numbers():
        raise CertificateError('The certificate Entra ID answered is for a different key.')
    principals = [p.decode('utf-8', 'replace') for p in certificate.valid_principals]
    if not principals:
        raise CertificateError('The certificate Entra ID answered names no principal (login name).')
    return principals[0]


def obtain_certificate(directory, fetch_certificate, cloud_name, configured_scope=None):
    """Make a key pair in ``directory``, have Entra certify it, write the certificate next to the key.

    ``fetch_certificate(scopes, data)`` returns the certificate body (Profile.get_msal_token's second value)."""
    scope = ssh_certificate_scope(cloud_name, configured_scope)
    private_path, public_key = generate_key_pair(directory)
    jwk = public_jwk(public_key)
    line = certificate_line_of(fetch_certificate([scope], certificate_request_data(jwk)))
    principal = first_principal(line, public_key)
    # ssh picks "<key>-cert.pub" up by itself too; we also pass it explicitly with CertificateFile.
    certificate_path = write_private_file(private_path + '-cert.pub', line + '\n')
    return EntraCredentials(private_path, certificate_path, principal)
