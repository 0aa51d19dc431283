"""Key material of the emulator: a TLS CA + server certificate, and an SSH user CA.

Everything lives in the state directory and is reused when present, so a restarted emulator keeps
the CA that clients were told to trust.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USER_CERT_LIFETIME = 3600


@dataclass
class KeyMaterial:
    ca_pem: Path            # what clients trust (REQUESTS_CA_BUNDLE)
    server_cert: Path
    server_key: Path
    user_ca_pub: Path       # for sshd's TrustedUserCAKeys
    user_ca_key: ed25519.Ed25519PrivateKey
    token_key: bytes        # signs ARM access tokens; kept so tokens cached by MSAL survive a restart
    client_secret: str      # used when the seed names none; kept so a restart needs no new az login

    def server_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        return context


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_tls(state_dir: Path, ca_pem: Path, server_cert: Path, server_key: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Bastion emulator CA {int(time.time())}")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=364))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(state_dir / "ca.key", _pem_key(ca_key))
    _write_private(server_key, _pem_key(key))
    server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))


def load_or_create(state_dir: str | Path) -> KeyMaterial:
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, server_cert, server_key = state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server.key"
    if not (ca_pem.exists() and server_cert.exists() and server_key.exists()):
        _make_tls(state_dir, ca_pem, server_cert, server_key)
    user_ca_path, user_ca_pub = state_dir / "user_ca", state_dir / "user_ca.pub"
    if user_ca_path.exists() and user_ca_pub.exists():
        user_ca_key = serialization.load_ssh_private_key(user_ca_path.read_bytes(), password=None)
    else:
        user_ca_key = ed25519.Ed25519PrivateKey.generate()
        _write_private(user_ca_path, user_ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        user_ca_pub.write_bytes(user_ca_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" bastion-emulator-user-ca\n")
    token_key = _read_or_create(state_dir / "token.key", lambda: os.urandom(32))
    client_secret = _read_or_create(state_dir / "client_secret", lambda: secrets.token_urlsafe(24).encode())
    return KeyMaterial(ca_pem, server_cert, server_key, user_ca_pub, user_ca_key, token_key,
                       client_secret.decode())


def _read_or_create(path: Path, make) -> bytes:
    if path.exists():
        return path.read_bytes()
    value = make()
    _write_private(path, value)
    return value


def sign_user_certificate(ca_key: ed25519.Ed25519PrivateKey, public_key: rsa.RSAPublicKey, principal: str,
                          key_id: str, lifetime: int = USER_CERT_LIFETIME) -> bytes:
    """An OpenSSH user certificate for ``public_key``, in the ``ssh-rsa-cert-v01@openssh.com BASE64`` form."""
    now = int(time.time())
    cert = (serialization.SSHCertificateBuilder()
            .public_key(public_key)
            .serial(int.from_bytes(os.urandom(8), "big"))
            .type(serialization.SSHCertificateType.USER)
            .key_id(key_id.encode())
            .valid_principals([principal.encode()])
            .valid_after(now - 60 + min(lifetime, 0))     # a negative lifetime: expired, yet a valid interval
            .valid_before(now + lifetime)
            .add_extension(b"permit-pty", b"")
            .add_extension(b"permit-port-forwarding", b"")
            .add_extension(b"permit-agent-forwarding", b"")
            .add_extension(b"permit-user-rc", b"")
            .add_extension(b"permit-X11-forwarding", b"")
            .sign(ca_key))
    return cert.public_bytes()
