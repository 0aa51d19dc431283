"""The Entra ID SSH certificate of `ssh-config --auth-type aad` blocks, kept valid whenever ssh reads it.

Each block ends with `Match originalhost ALIAS exec "python -I -S entra_refresh.py"`. ssh runs that while it reads
its configuration, before it starts the ProxyCommand and before it loads IdentityFile and CertificateFile
(openssh-portable ssh.c main: the config is read, readconf.c match_cfg_line runs the `exec` through
execute_in_shell; then ssh_connect starts the ProxyCommand without waiting for it, and load_public_identity_files
reads the certificate right after). A renewal inside the ProxyCommand would come too late; this one does not.

It runs on every ssh, so it is stdlib-only and quick: it reads the certificate's valid-before time and is done
unless the certificate is missing, unreadable or within RENEW_MARGIN of its end. Then, under a lock in the
directory (ssh's started at once, e.g. Ansible's forks, renew once), this same Python (az's) renews it with
azure-cli's sign-in (clients/entra_files.py renew_main: Entra's token_type=ssh-cert request, the certificate replaced
atomically). Run as a script it loads proxy_helper.py beside it by path (-I leaves the script's directory off
sys.path).

The key pair and certificate live in a private (0700) directory of the user's az configuration directory
(bastion-entra-ssh), beside its sign-in: one key pair and certificate per user and sign-in, not per VM."""

import binascii
import os
import sys
import time

DIRECTORY_NAME = 'bastion-entra-ssh'
KEY_NAME = 'id_rsa'
CERTIFICATE_NAME = 'id_rsa-cert.pub'
# Renew when less than this is left: MSAL serves a cached token (the certificate too: its cache query includes the
# key_id) until it is within 5 minutes of expiry (msal/application.py, `if expires_in < 5*60:  # Then consider it
# expired`), so a renewal earlier than that would be answered with the same certificate.
RENEW_MARGIN = 300
MAX_CERTIFICATE = 64 * 1024
ERROR_PREFIX = 'az network bastion: Entra ID SSH certificate: '
# The OpenSSH certificate types we can read the validity of (PROTOCOL.certkeys): the fields before `valid before`.
_RSA_CERTIFICATE = b'ssh-rsa-cert-v01@openssh.com'


_LOADED: dict = {}


def _proxy_helper():
    """proxy_helper: imported in the package, loaded once by path when run as a script."""
    if __package__:
        from . import proxy_helper
        return proxy_helper
    if 'proxy_helper' not in _LOADED:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            'proxy_helper', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'proxy_helper.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED['proxy_helper'] = module
    return _LOADED['proxy_helper']


def _number(data, offset, size):
    if offset + size > len(data):
        raise ValueError('truncated certificate')
    return int.from_bytes(data[offset:offset + size], 'big'), offset + size


def _string(data, offset):
    length, start = _number(data, offset, 4)
    if start + length > len(data):
        raise ValueError('truncated certificate')
    return data[start:start + length], start + length


def valid_before(certificate_line):
    """The `valid before` time (seconds since the epoch) of an RSA OpenSSH user certificate line
    (``ssh-rsa-cert-v01@openssh.com BASE64 [comment]``); ValueError when it is not one."""
    words = certificate_line.split()
    if len(words) < 2 or words[0].encode('ascii', 'replace') != _RSA_CERTIFICATE:
        raise ValueError('not an ssh-rsa-cert-v01@openssh.com certificate')
    try:    # binascii rather than base64, whose import (re) would cost more than the rest of this check
        data = binascii.a2b_base64(words[1].encode('ascii', 'replace'), strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError('not base64') from None
    kind, offset = _string(data, 0)
    if kind != _RSA_CERTIFICATE:
        raise ValueError('the certificate says another type')
    for _ in ('nonce', 'e', 'n'):
        _, offset = _string(data, offset)
    offset += 8 + 4             # serial, type
    for _ in ('key id', 'valid principals'):
        _, offset = _string(data, offset)
    _, offset = _number(data, offset, 8)            # valid after
    return _number(data, offset, 8)[0]


def renewal_due(certificate_line, now, margin=RENEW_MARGIN):
    """Whether a certificate must be renewed before ssh reads it: missing (None), unreadable, or less than
    ``margin`` seconds from its end at ``now``."""
    if not certificate_line:
        return True
    try:
        return valid_before(certificate_line) - now < margin
    except ValueError:
        return True


def credentials_directory(environ=None, uid=None):
    """A descriptor of the private directory holding the key pair and certificate (module docstring);
    proxy_helper.AgentUnavailable says why there is none."""
    helper = _proxy_helper()
    environ = os.environ if environ is None else environ
    home = environ.get('HOME') or os.path.expanduser('~')
    config = environ.get('AZURE_CONFIG_DIR') or os.path.join(home, '.azure')
    return helper.open_private_directory(config, DIRECTORY_NAME, os.getuid() if uid is None else uid)


def read_certificate(directory):
    """The certificate line in the directory ``directory`` (a descriptor), or None when there is none."""
    try:
        descriptor = os.open(CERTIFICATE_NAME, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0), dir_fd=directory)
    except OSError:
        return None
    with os.fdopen(descriptor, 'rb') as handle:
        return handle.read(MAX_CERTIFICATE).decode('ascii', 'replace').strip() or None


def _certificate_at_a_glance(environ=None):
    """The certificate line, read by path without proxy_helper (whose imports cost more than the rest of a check
    that finds it valid): a file of ours, not a symlink, that others may not write, else None (the renewal then
    opens the private directory with every check)."""
    environ = os.environ if environ is None else environ
    home = environ.get('HOME') or os.path.expanduser('~')
    path = os.path.join(environ.get('AZURE_CONFIG_DIR') or os.path.join(home, '.azure'), DIRECTORY_NAME,
                        CERTIFICATE_NAME)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0))
    except OSError:
        return None
    with os.fdopen(descriptor, 'rb') as handle:
        info = os.fstat(descriptor)
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return None
        return handle.read(MAX_CERTIFICATE).decode('ascii', 'replace').strip() or None


RENEW_TIMEOUT = 120.0       # seconds for az's Python to get a certificate from Entra
LOCK_NAME = 'renew.lock'
# What az's Python runs to renew: the extension's directory first on its path (a dev extension or one installed
# under ~/.azure/cliextensions is found this way, as azure-cli's extension loader would).
RENEW_CODE = ('import sys; sys.path.insert(0, sys.argv[1]); '
              'from azext_bastion_native.clients.entra_files import renew_main; sys.exit(renew_main())')
EXTENSION_DIRECTORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RenewalFailed(Exception):
    """The one line for the user on why the certificate could not be renewed."""


def renew(directory, python=None):
    """Renew the certificate unless, once the lock is ours, another ssh's run already has."""
    import fcntl
    import subprocess
    lock = os.open(LOCK_NAME, os.O_WRONLY | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600, dir_fd=directory)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not renewal_due(read_certificate(directory), time.time()):
            return
        try:
            result = subprocess.run([python or sys.executable, '-c', RENEW_CODE, EXTENSION_DIRECTORY],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=RENEW_TIMEOUT,
                                    check=False)
        except subprocess.TimeoutExpired:
            raise RenewalFailed(f'no certificate from Entra ID within {RENEW_TIMEOUT:.0f} seconds') from None
        if result.returncode != 0:
            said = [line for line in result.stderr.decode('utf-8', 'replace').splitlines() if line.strip()]
            raise RenewalFailed(said[-1].strip() if said else f'exit code {result.returncode}')
    finally:
        os.close(lock)


def main(argv):
    """`entra_refresh.py`: exit 0 when the certificate is (now) valid, 1 with one line on stderr when it could not
    be renewed (ssh goes on, and the VM's sshd says no)."""
    if len(argv) != 1:
        sys.stderr.write('usage: entra_refresh.py\n')
        return 2
    if not renewal_due(_certificate_at_a_glance(), time.time()):
        return 0
    helper = _proxy_helper()
    try:
        directory = credentials_directory()
        try:
            if renewal_due(read_certificate(directory), time.time()):
                renew(directory)
        finally:
            os.close(directory)
    except (helper.AgentUnavailable, RenewalFailed, OSError) as err:
        sys.stderr.write(f'{ERROR_PREFIX}{getattr(err, "strerror", None) or err}\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
