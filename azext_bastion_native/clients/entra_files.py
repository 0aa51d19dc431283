"""The per-user key pair and Entra ID SSH certificate that `ssh-config --auth-type aad` blocks name, kept in the
private directory of agent/entra_refresh.py (0700, reached through its descriptor; files 0600, replaced
atomically so ssh never reads half a certificate). Written by ssh-config, renewed by the connection agent; never
printed."""

import os
import time
from dataclasses import dataclass

from azext_bastion_native.agent import entra_refresh
from azext_bastion_native.errors import Kind, Refused

from .entra_cert import CertificateError, certificate_line_of, certificate_request_data, first_principal, public_jwk

_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)


@dataclass(frozen=True)
class EntraFiles:
    key_path: str
    certificate_path: str
    user: str               # the login name (entra_user)
    renewed: bool


def entra_user(principal):
    """The login name for a certificate's first principal, as Microsoft's `az ssh config` computes it:
    Azure/azure-cli-extensions src/ssh/azext_ssh/custom.py ``_get_and_write_certificate`` takes the first of
    ssh_utils.get_ssh_cert_principals (the certificate's valid principals, not the token's user name: "mismatched
    upn and email in guest scenarios") and returns ``username.lower()``; ssh_info.py writes it as ``User``."""
    return principal.lower()


def _open_directory():
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable
    try:
        return entra_refresh.credentials_directory()
    except AgentUnavailable as err:
        raise Refused(f'No private directory for the Entra ID SSH key and certificate: {err}.',
                      'Make the az configuration directory (AZURE_CONFIG_DIR, default ~/.azure) yours and not '
                      'writable by others.', Kind.FILE_OPERATION) from None


def _read(directory, name):
    try:
        descriptor = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=directory)
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, 'rb') as handle:
        return handle.read()


def _write(directory, name, data):
    """``data`` into ``name`` of ``directory``, 0600, atomically (a temporary name, then rename)."""
    temporary = f'.{name}.{os.getpid()}.tmp'
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600, dir_fd=directory)
    try:
        with os.fdopen(descriptor, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=directory)
        except OSError:
            pass
        raise


def _key_pair(directory):
    """The directory's RSA key (made once, then kept: the blocks name its path), as a cryptography private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from .entra_cert import KEY_BITS
    existing = _read(directory, entra_refresh.KEY_NAME)
    if existing:
        try:
            key = serialization.load_ssh_private_key(existing, password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                return key
        except (ValueError, TypeError):
            pass        # damaged or not ours: a new pair, and a new certificate for it
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(directory, entra_refresh.KEY_NAME + '.pub', public + b'\n')
    _write(directory, entra_refresh.KEY_NAME, key.private_bytes(serialization.Encoding.PEM,
                                                                serialization.PrivateFormat.OpenSSH,
                                                                serialization.NoEncryption()))
    return key


def _principal_if_current(line, public_key):
    try:
        return first_principal(line, public_key)
    except CertificateError:
        return None


def ensure_certificate(fetch_certificate, scope, margin=entra_refresh.RENEW_MARGIN, now=None):
    """The key pair and a certificate valid for more than ``margin`` seconds: the one in place when it is for this
    key and not yet due (entra_refresh.renewal_due), else a new one from Entra (``fetch_certificate(scopes, data)``
    as entra_cert.obtain_certificate takes it)."""
    directory = _open_directory()
    try:
        key = _key_pair(directory)
        public_key = key.public_key()
        current = entra_refresh.read_certificate(directory)
        principal = None
        if current and not entra_refresh.renewal_due(current, time.time() if now is None else now, margin):
            principal = _principal_if_current(current, public_key)
        renewed = principal is None
        if renewed:
            line = certificate_line_of(fetch_certificate([scope], certificate_request_data(public_jwk(public_key))))
            principal = first_principal(line, public_key)
            _write(directory, entra_refresh.CERTIFICATE_NAME, (line + '\n').encode('ascii'))
        where = _directory_path(directory)
    finally:
        os.close(directory)
    return EntraFiles(os.path.join(where, entra_refresh.KEY_NAME),
                      os.path.join(where, entra_refresh.CERTIFICATE_NAME), entra_user(principal), renewed)


def _directory_path(directory):
    """The path the blocks name: the configuration directory's, absolute (ssh needs no environment to find it)."""
    config = os.environ.get('AZURE_CONFIG_DIR') or os.path.join(os.path.expanduser('~'), '.azure')
    path = os.path.join(os.path.abspath(config), entra_refresh.DIRECTORY_NAME)
    if os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(directory)):
        return path
    raise Refused(f'{path} changed while it was written.', 'Run the command again.', Kind.FILE_OPERATION)


def renew_main():
    """What agent/entra_refresh.py runs in az's Python when a certificate is due: the certificate renewed with
    azure-cli's sign-in (az's configuration as `az` would load it); 0, or 1 with one line on stderr."""
    import sys
    from azure.cli.core import get_default_cli
    from azext_bastion_native.az_compat import entra_ssh_certificate
    from .entra_cert import SCOPE_CONFIG, ssh_certificate_scope
    cli = get_default_cli()
    try:
        scope = ssh_certificate_scope(cli.cloud.name, cli.config.get(*SCOPE_CONFIG, fallback=None))
        ensure_certificate(lambda scopes, data: entra_ssh_certificate(cli, scopes, data), scope)
    except Refused as err:
        sys.stderr.write(f'{err.message} {err.recommendation or ""}'.strip() + '\n')
        return 1
    except Exception as err:  # pylint: disable=broad-except
        # MSAL and azure-cli errors (not signed in, token expired): their words, one line, never a traceback.
        said = ' '.join(str(err).split()) or type(err).__name__
        sys.stderr.write(said + ('' if 'az login' in said else ' Sign in again with `az login`.') + '\n')
        return 1
    return 0


def renew_ahead(cli_ctx, now=None):
    """For the connection agent, on its token round: the certificate of `--auth-type aad` blocks renewed once it is
    due (the margin the blocks' own check uses), so that ssh finds it valid without waiting for Entra. Nothing when
    the user has no such certificate (no directory is made) or when a block's check is renewing it right now (it
    holds the lock). Returns the EntraFiles when renewed, else None."""
    import fcntl
    from azext_bastion_native.az_compat import entra_ssh_certificate
    from .entra_cert import SCOPE_CONFIG, ssh_certificate_scope
    config = os.environ.get('AZURE_CONFIG_DIR') or os.path.join(os.path.expanduser('~'), '.azure')
    if not os.path.isfile(os.path.join(config, entra_refresh.DIRECTORY_NAME, entra_refresh.CERTIFICATE_NAME)):
        return None
    now = time.time() if now is None else now
    directory = _open_directory()
    try:
        if not entra_refresh.renewal_due(entra_refresh.read_certificate(directory), now):
            return None
        lock = os.open(entra_refresh.LOCK_NAME, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, 0o600, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        scope = ssh_certificate_scope(cli_ctx.cloud.name, cli_ctx.config.get(*SCOPE_CONFIG, fallback=None))
        files = ensure_certificate(lambda scopes, data: entra_ssh_certificate(cli_ctx, scopes, data), scope, now=now)
        return files if files.renewed else None
    finally:
        os.close(lock)
