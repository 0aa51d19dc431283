"""ssh command lines for password, key and Entra certificate sign-in, with host keys pinned per VM.

The user's own OpenSSH client, pointed at a local tunnel (a port, or a Unix socket reached through a ProxyCommand).
Only argv is built here (no shell); running it lives in launch.py."""

import re
import shutil
from dataclasses import dataclass
from typing import Optional

PASSWORD = 'password'
SSH_KEY = 'ssh-key'
AAD = 'aad'

LOOPBACK = '127.0.0.1'
_ALIAS_UNSAFE = re.compile(r'[^a-z0-9._-]+')


class SshClientNotFound(Exception):
    pass


@dataclass(frozen=True)
class SshLogin:
    auth_type: str
    username: Optional[str] = None
    key_path: Optional[str] = None          # ssh-key: the user's key; aad: the ephemeral key
    certificate_path: Optional[str] = None  # aad only


def host_key_alias(target):
    """A known_hosts name for the VM behind the tunnel: stable per target, not per (random) local port.

    ``target``: the VM resource id or its IP address. Resource ids are case-insensitive in Azure."""
    return 'bastion.' + _ALIAS_UNSAFE.sub('-', target.strip().lower()).strip('-.')


def auth_options(login):
    """ssh options for the sign-in method: nothing else is tried (upstream still offers keys with a password)."""
    if login.auth_type == PASSWORD:
        return ['-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no']
    if login.auth_type == SSH_KEY:
        return ['-i', login.key_path, '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey']
    if login.auth_type == AAD:
        return ['-i', login.key_path, '-o', f'CertificateFile={login.certificate_path}', '-o', 'IdentitiesOnly=yes',
                '-o', 'PreferredAuthentications=publickey']
    raise ValueError(f'unknown auth type {login.auth_type!r}')


def ssh_argv(ssh_program, port, login, alias, extra_args=(), host=LOOPBACK, proxy_command=None):
    """ssh's argv: ``ssh -p PORT [-l USER] AUTH HOSTKEY HOST EXTRA...``; with ``proxy_command`` (a tunnel on a
    Unix socket, ``port`` None) ``-o ProxyCommand=...`` instead of ``-p PORT``.

    OpenSSH keeps the first value it sees for an option, so ours come first where they must hold (port,
    sign-in method); the host-key options are left out when the user gives their own (that is how to
    override them). The user's arguments follow the destination verbatim: OpenSSH reads options after the
    destination too, then the remote command (``-- -L 8080:localhost:80 uptime``)."""
    extra_args = list(extra_args)
    user_options = _user_option_names(extra_args)
    argv = [ssh_program] + port_options('-p', port, proxy_command)
    if login.username:
        argv += ['-l', login.username]
    argv += auth_options(login)
    for name, value in (('hostkeyalias', f'HostKeyAlias={alias}'),
                        ('stricthostkeychecking', 'StrictHostKeyChecking=accept-new')):
        if name not in user_options:
            argv += ['-o', value]
    return argv + [host] + extra_args


def port_options(port_flag, port, proxy_command):
    """How ssh (``-p``) or scp (``-P``) reaches the tunnel: its port, or the ProxyCommand to its Unix socket.
    Ours comes first, so it holds over a ProxyCommand in the user's ssh_config."""
    if proxy_command is not None:
        return ['-o', f'ProxyCommand={proxy_command}']
    return [port_flag, str(port)]


def _user_option_names(extra_args):
    """Lower-case names of the ``-o Name=value`` options among the user's arguments."""
    names = set()
    for index, arg in enumerate(extra_args):
        value = None
        if arg == '-o' and index + 1 < len(extra_args):
            value = extra_args[index + 1]
        elif arg.startswith('-o') and len(arg) > 2:
            value = arg[2:]
        if value:
            names.add(re.split(r'[=\s]', value.strip(), maxsplit=1)[0].lower())
    return names


def find_ssh(which=shutil.which):
    path = which('ssh')
    if not path:
        raise SshClientNotFound('No OpenSSH client (ssh) was found on PATH.')
    return path
