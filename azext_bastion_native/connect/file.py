"""Upload and download files through Bastion with scp.

`az network bastion file upload / download`: the user's own scp over the in-process tunnel, as `az network bastion
ssh` runs ssh (same VM lookup, user name default, sign-in options and host-key pinning). The documentation's
support table (capabilities.SUPPORT_TABLE) gives file transfer to the tunnel row of every client OS; this is that
row. scp's stdout (where its progress meter goes, only when that is a terminal) is sent to our stderr, so stdout
stays empty; without a terminal one summary line follows instead."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS
from azext_bastion_native.errors import INVALID_ARGUMENT, NOT_INSTALLED, Refused

UPLOAD, DOWNLOAD = 'upload', 'download'
STDERR_FD = 2


@dataclass(frozen=True)
class Transfer:
    direction: str          # UPLOAD | DOWNLOAD
    source: str             # local path (upload) or path on the VM (download)
    destination: str        # path on the VM (upload) or local path (download)
    recursive: bool = False

    @property
    def local_path(self):
        return self.source if self.direction == UPLOAD else self.destination


class TransferRefused(Refused):
    """A local path or program that rules the transfer out; ``kind`` 'invalid-argument' or 'not-installed'."""

    def __init__(self, message, recommendation=None, kind=INVALID_ARGUMENT):
        super().__init__(message, recommendation, kind)


def local_operand(path):
    """A local path scp cannot mistake for ``host:path`` (a colon before the first slash) or an option."""
    return path if os.path.isabs(path) else os.path.join(os.curdir, path)


def remote_operand(path, host):
    return f'{host}:{path}'


def scp_argv(scp_program, port, login, alias, transfer, extra_args=(), name=None, proxy_command=None):
    """scp's argv: ``scp ROUTE [-r] [-o User=U] AUTH SESSION EXTRA HOSTKEY SOURCE DESTINATION``, the VM named
    ``name`` (clients.ssh.connection_name; the alias when None) in the remote operand; ROUTE as ssh_argv's.

    OpenSSH keeps the first value of an option: the route, sign-in method and session options come before the
    user's arguments so they hold, the host-key pinning after them so the user's own HostKeyAlias /
    StrictHostKeyChecking win."""
    from azext_bastion_native.clients.ssh import auth_options, port_options, session_options
    argv = [scp_program] + port_options('-P', port, proxy_command)
    if transfer.recursive:
        argv.append('-r')
    if login.username:
        argv += ['-o', f'User={login.username}']       # not user@host: Entra-style names may contain '@'
    argv += auth_options(login) + session_options()
    argv += list(extra_args)
    argv += ['-o', f'HostKeyAlias={alias}', '-o', 'StrictHostKeyChecking=accept-new']
    host = name or alias
    if transfer.direction == UPLOAD:
        return argv + [local_operand(transfer.source), remote_operand(transfer.destination, host)]
    return argv + [remote_operand(transfer.source, host), local_operand(transfer.destination)]


def check_local_paths(transfer):
    """What scp would fail on locally, refused before any Bastion session is opened."""
    path = transfer.local_path
    if transfer.direction == UPLOAD:
        if not os.path.exists(path):
            raise TransferRefused(f"--source '{path}': no such file or directory.",
                                  'Check the local path; relative paths start from the current directory.')
        if os.path.isdir(path) and not transfer.recursive:
            raise TransferRefused(f"--source '{path}' is a directory.", 'Add --recursive to copy it with its contents.')
        return
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise TransferRefused(f"--destination '{path}': the directory {parent} does not exist.",
                              f'Create it first (mkdir -p {parent}) or choose another destination.')


def local_size(path):
    """Bytes in a file, or in every file under a directory; 0 when absent."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def downloaded_path(transfer, destination_was_directory):
    """Where scp put a download: inside an existing destination directory, else the destination itself."""
    if destination_was_directory:
        return os.path.join(transfer.destination, os.path.basename(transfer.source.rstrip('/\\')))
    return transfer.destination


def summary_line(direction, size, seconds):
    rate = f', {size / seconds / 1e6:.1f} MB/s' if seconds > 0 else ''
    verb = 'Uploaded' if direction == UPLOAD else 'Downloaded'
    return f'{verb} {size} bytes in {seconds:.2f} s{rate}.'


def find_scp(which=None):
    from azext_bastion_native.clients.launch import find_program
    path = (which or find_program)('scp')
    if not path:
        from azext_bastion_native.clients.ssh import INSTALL_OPENSSH
        raise TransferRefused('No OpenSSH scp was found on PATH.', INSTALL_OPENSSH, NOT_INSTALLED)
    return path


def run_scp(argv, environment):
    """scp in the foreground with its stdout on our stderr (its progress meter shows when that is a terminal)."""
    if environment.run is not None:
        return environment.run(argv)
    from azext_bastion_native.clients.launch import run_foreground
    return run_foreground(argv, popen=partial(subprocess.Popen, stdout=STDERR_FD))


def run_transfer(destination, login, transfer, scp_program, extra_args, environment, stderr=None,
                 clock=time.monotonic):
    """The tunnel, then scp through it; one summary line on a non-terminal stderr after a success.

    Returns scp's exit code; the tunnel (with every Bastion session) is gone when this returns."""
    from azext_bastion_native.clients.ssh import host_key_alias
    from azext_bastion_native.connect.ssh import destination_name
    stderr = stderr or sys.stderr
    destination_was_directory = transfer.direction == DOWNLOAD and os.path.isdir(transfer.destination)
    with environment.tunnel(destination, unix_socket=True) as tunnel:
        argv = scp_argv(scp_program, tunnel.port, login, host_key_alias(destination.target_label), transfer,
                        extra_args, name=destination_name(destination),
                        proxy_command=getattr(tunnel, 'proxy_command', None))
        started = clock()
        code = run_scp(argv, environment)
        elapsed = clock() - started
    if code == 0 and not stderr.isatty():
        written = transfer.source if transfer.direction == UPLOAD else \
            downloaded_path(transfer, destination_was_directory)
        stderr.write(summary_line(transfer.direction, local_size(written), elapsed) + '\n')
        stderr.flush()
    return code


def _refuse_before_network(cli_ctx, client, transfer, auth_type, username, ssh_key, which):
    """Limitations before any network call: Cloud Shell, the table's tunnel row, sign-in arguments, the key
    file, local paths, scp itself. Returns (key path, scp program)."""
    from azext_bastion_native.capabilities import decide
    from azext_bastion_native.connect.argument_checks import check_ssh_login_arguments
    from azext_bastion_native.guards import refuse_offline
    key_path = refuse_offline(cli_ctx, f'network bastion file {transfer.direction}', ssh_key, (
        lambda: decide(client, None, 'tunnel', file_transfer=True),
        lambda: check_ssh_login_arguments(auth_type, username, ssh_key)))
    check_local_paths(transfer)
    return key_path, find_scp(which)


def file_transfer_command(cmd, resource_group_name, name, target_resource_id, auth_type, source, destination,
                          username=None, ssh_key=None, resource_port=None, recursive=False, scp_args=None,
                          environment=None):
    """`az network bastion file upload|download` (the direction is the command's last word): scp's exit code becomes
    the command's."""
    direction = DOWNLOAD if cmd.name.rsplit(' ', 1)[-1] == DOWNLOAD else UPLOAD
    from azext_bastion_native.connect import argument_checks, resolve
    from azext_bastion_native.connect.environment import Environment
    from azext_bastion_native.exit_status import exit_with
    from azext_bastion_native.clients.ssh import SshLogin
    environment = environment or Environment()
    auth_type = (auth_type or '').lower()
    transfer = Transfer(direction, source, destination, bool(recursive))
    key_path, scp_program = _refuse_before_network(cmd.cli_ctx, environment.client, transfer, auth_type, username,
                                                   ssh_key, environment.which)
    request = argument_checks.connect_request(
        resource_group_name, name, target_resource_id, None,
        int(resource_port) if resource_port is not None else DEFAULT_METHOD_PORTS['ssh'])
    resolved = resolve.resolve_destination(cmd.cli_ctx, request)
    login = SshLogin(auth_type, username or resolved.admin_username, key_path)
    exit_with(lambda: run_transfer(
        resolved, login, transfer, scp_program, scp_args or [], environment))
