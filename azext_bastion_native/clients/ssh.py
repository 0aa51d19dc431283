"""ssh command lines for password, key and Entra certificate sign-in, with host keys pinned per VM.

The user's own OpenSSH client, pointed at a local tunnel (a port, or a Unix socket reached through a ProxyCommand).
Only argv is built here (no shell); running it lives in launch.py."""

import hashlib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Optional

from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.errors import Kind, Refused

PASSWORD = 'password'
SSH_KEY = 'ssh-key'
AAD = 'aad'

LOOPBACK = '127.0.0.1'
_ALIAS_UNSAFE = re.compile(r'[^a-z0-9._-]+')
_NAME_UNSAFE = re.compile(r'[^a-z0-9-]+')
NAME_LABEL_LENGTH = 20
NAME_HASH_LENGTH = 10
# ssh options that take a value (OpenSSH 9 ssh(1) synopsis); the others are flags and may be bundled (-fNT).
_OPTIONS_WITH_VALUE = frozenset('BbcDEeFIiJLlmOoPpQRSWw')


INSTALL_OPENSSH = ('Install OpenSSH (Debian/Ubuntu: apt-get install openssh-client; Windows: Settings > Optional '
                   'features > OpenSSH Client).')


class SshClientNotFound(Refused):
    """No OpenSSH client on PATH."""

    def __init__(self, message):
        super().__init__(message, INSTALL_OPENSSH, Kind.NOT_INSTALLED)


@dataclass(frozen=True)
class SshLogin:
    auth_type: str
    username: Optional[str] = None
    key_path: Optional[str] = None          # ssh-key: the user's key; aad: the ephemeral key
    certificate_path: Optional[str] = None  # aad only


def escape_percent(value):
    """% doubled: ssh expands %-tokens in ProxyCommand, IdentityFile and more."""
    return value.replace('%', '%%')


def proxy_command_line(argv, os_name=None):
    """The one home of ProxyCommand quoting: ``argv`` as one ProxyCommand line (POSIX ssh runs it through the
    user's shell, so every word is shell-quoted; Windows' ssh through CreateProcess), % doubled."""
    line = subprocess.list2cmdline(argv) if (os_name or os.name) == 'nt' else ' '.join(shlex.quote(arg) for arg in argv)
    return escape_percent(line)


def host_key_alias(target):
    """A known_hosts name for the VM behind the tunnel: stable per target, not per (random) local port.

    ``target``: the VM resource id or its IP address. Resource ids are case-insensitive in Azure."""
    return 'bastion.' + _ALIAS_UNSAFE.sub('-', target.strip().lower()).strip('-.')


def connection_name(target_label, endpoint_host, target_resource_id, port):
    """The host name ssh and scp are given for a target, e.g. ``bastion-linux-vm-1f0c2d9e4a``: one per (Bastion
    host, target, port), so the user's ``%h``/``%C`` (ControlPath) differ per VM and no ``Host 127.0.0.1`` block of
    theirs applies. The ProxyCommand (or HostName) routes it; it is never resolved. Short, because a ControlPath
    such as ``~/.ssh/cm-%r@%h:%p`` must fit a Unix socket path (about 104 bytes, with ssh's 17-byte temp suffix).
    Host keys stay pinned under host_key_alias() (unchanged, so no VM is pinned anew)."""
    label = target_label.strip().lower()
    parts = [part for part in label.split('/') if part]
    if len(parts) >= 4 and parts[-2] == 'virtualmachines' and parts[-4] == 'virtualmachinescalesets':
        label = f'{parts[-3]}-{parts[-1]}'
    elif parts:
        label = parts[-1]
    label = _NAME_UNSAFE.sub('-', label).strip('-')[:NAME_LABEL_LENGTH].strip('-') or 'vm'
    identity = '\n'.join((endpoint_host, target_resource_id, str(port))).lower().encode('utf-8')
    return f'bastion-{label}-{hashlib.sha256(identity).hexdigest()[:NAME_HASH_LENGTH]}'


def background_option(ssh_args):
    """The user's ssh argument that would send ssh to the background (``-f``, ``-o ForkAfterAuthentication=yes``)
    or keep a master behind it (``-o ControlPersist=...``), or None. Only options are read: they end at the first
    argument that is not one (the remote command) or at ``--``."""
    args = list(ssh_args)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == '--' or not arg.startswith('-') or arg == '-':
            return None
        for position, flag in enumerate(arg[1:], start=1):
            if flag == 'f':
                return arg
            if flag in _OPTIONS_WITH_VALUE:
                value = arg[position + 1:]
                if not value:
                    index += 1
                    value = args[index] if index < len(args) else ''
                if flag == 'o' and _keeps_running(value):
                    return f'-o {value}'
                break
        index += 1
    return None


def _keeps_running(option):
    name, _, value = option.strip().replace('=', ' ', 1).partition(' ')
    value = value.strip().lower()
    if name.lower() == 'forkafterauthentication':
        return value in ('yes', 'true')
    return name.lower() == 'controlpersist' and value not in ('no', 'false')


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


def ssh_argv(ssh_program, port, login, alias, extra_args=(), name=None, proxy_command=None):
    """ssh's argv: ``ssh ROUTE [-l USER] AUTH SESSION HOSTKEY NAME EXTRA...``. ``name``: connection_name() (the
    alias when None); ROUTE: ``-o ProxyCommand=...`` to a tunnel on a Unix socket (``port`` None), else
    ``-o HostName=127.0.0.1 -p PORT``.

    Options on the command line beat every ssh_config file, and OpenSSH keeps the first value it sees, so ours
    come first where they must hold (route, sign-in method, no master outliving the tunnel); the host-key options
    are left out when the user gives their own on the command line (that is how to override them). The user's
    arguments follow the destination verbatim: OpenSSH reads options after the destination too, then the remote
    command (``-- -L 8080:localhost:80 uptime``)."""
    extra_args = list(extra_args)
    user_options = _user_option_names(extra_args)
    argv = [ssh_program] + port_options('-p', port, proxy_command)
    if login.username:
        argv += ['-l', login.username]
    argv += auth_options(login) + session_options()
    for option, value in (('hostkeyalias', f'HostKeyAlias={alias}'),
                          ('stricthostkeychecking', 'StrictHostKeyChecking=accept-new')):
        if option not in user_options:
            argv += ['-o', value]
    return argv + [name or alias] + extra_args


def port_options(port_flag, port, proxy_command):
    """How ssh (``-p``) or scp (``-P``) reaches the tunnel, whatever name it is given: the ProxyCommand to its
    Unix socket, or its loopback port. Ours comes first, so it holds over a ProxyCommand or HostName in the
    user's ssh_config."""
    if proxy_command is not None:
        return ['-o', f'ProxyCommand={proxy_command}']
    return ['-o', f'HostName={LOOPBACK}', port_flag, str(port)]


def session_options():
    """A user's ``ControlMaster auto`` still shares one connection per VM (connection_name), but the master is
    this run's own ssh, in the foreground: a ``ControlPersist`` master would outlive the tunnel (it ends when az
    returns) and carry later sessions into a dead connection."""
    return ['-o', 'ControlPersist=no']


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


def find_ssh(which=find_program):
    path = which('ssh')
    if not path:
        raise SshClientNotFound('No OpenSSH client (ssh) was found on PATH.')
    return path
