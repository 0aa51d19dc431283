"""Render, merge and write Bastion ssh_config Host blocks.

`az network bastion ssh-config`: an OpenSSH `Host` block whose ProxyCommand is `az network bastion proxy`, so plain
ssh, scp, sftp, rsync and Ansible reach the VM through Bastion. Blocks we write sit between marker comments, so an
update replaces exactly our lines and never the user's; the file is rewritten atomically (temp file in the same
directory + rename)."""

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS
from azext_bastion_native.errors import Refused

COMMAND_NAME = 'network bastion ssh-config'
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# A Host pattern that is one literal name: no whitespace, wildcards (*, ?), negation (!), lists (,) or comments.
_ALIAS = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')
_HOST_LINE = re.compile(r'^\s*host\s*[=\s]\s*(?P<patterns>.*)$', re.IGNORECASE)


class SshConfigError(Refused):
    """``kind``: 'invalid-argument' | 'exists' | 'damaged' (errors.py)."""

    def __init__(self, kind, message, recommendation=None):
        super().__init__(message, recommendation, kind)


def start_marker(alias):
    return f'# >>> bastion-native {alias} >>>'


def end_marker(alias):
    return f'# <<< bastion-native {alias} <<<'


def check_alias(alias):
    if not alias or not _ALIAS.match(alias):
        raise SshConfigError('invalid-argument', f"--host-alias '{alias}' is not a plain host name for ssh_config.",
                             'Use letters, digits, dots, dashes and underscores only (no spaces or wildcards).')
    return alias


def default_alias(target_resource_id):
    """The VM's name (``SCALESET_INSTANCE`` for a scale set instance, as Azure names those VMs)."""
    from azure.mgmt.core.tools import parse_resource_id
    parts = parse_resource_id(target_resource_id)
    if (parts.get('type') or '').lower() == 'virtualmachinescalesets' \
            and (parts.get('child_type_1') or '').lower() == 'virtualmachines':
        return f"{parts['name']}_{parts['child_name_1']}"
    return parts['resource_name']


def az_argv(executable=None, os_name=None, which=shutil.which):
    """How to start this same az again, as absolute argv: the az beside this interpreter (a venv or an MSI
    install), else the one on PATH, else ``python -m azure.cli``."""
    executable = executable or sys.executable
    os_name = os_name or os.name
    names = ('az.cmd', 'az.bat', 'az') if os_name == 'nt' else ('az',)
    for candidate in (os.path.join(os.path.dirname(executable), name) for name in names):
        if os.path.isfile(candidate):
            return [os.path.abspath(candidate)]
    found = which('az')
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(executable), '-m', 'azure.cli']


def proxy_argv(az, resource_group, name, target_resource_id, port):
    return [*az, 'network', 'bastion', 'proxy', '-g', resource_group, '-n', name,
            '--target-resource-id', target_resource_id, '--resource-port', str(port)]


def _command_line(argv, os_name):
    """One command line: POSIX ssh runs ProxyCommand through the shell; Windows' ssh through CreateProcess."""
    line = subprocess.list2cmdline(argv) if os_name == 'nt' else ' '.join(shlex.quote(arg) for arg in argv)
    return line.replace('%', '%%')      # ssh expands %h, %p, ... in ProxyCommand


def _config_path_value(path, os_name):
    """A path as an ssh_config value: ssh expands % tokens; quotes keep spaces in one argument."""
    if os_name == 'nt':
        path = path.replace('\\', '/')      # backslashes are escapes to ssh_config's tokenizer
    if '"' in path or '\n' in path:
        raise SshConfigError('invalid-argument', f"--ssh-key '{path}': ssh_config cannot hold that path.",
                             'Move the key to a path without double quotes or line breaks.')
    path = path.replace('%', '%%')
    return f'"{path}"' if any(char.isspace() for char in path) else path


def render_block(alias, proxy, username=None, key_path=None, host_key_alias=None, comment=None, os_name=None):
    """The marked Host block (text ending in a newline). ``proxy``: the ProxyCommand argv."""
    os_name = os_name or os.name
    lines = [start_marker(alias)]
    if comment:
        lines.append(f'# {comment}')
    lines += [f'Host {alias}', f'    ProxyCommand {_command_line(proxy, os_name)}']
    if username:
        if any(char.isspace() or char in '"%' for char in username):
            raise SshConfigError('invalid-argument', f"--username '{username}' cannot be written to ssh_config.")
        lines.append(f'    User {username}')
    if key_path:
        lines += [f'    IdentityFile {_config_path_value(key_path, os_name)}', '    IdentitiesOnly yes']
    if host_key_alias:
        lines.append(f'    HostKeyAlias {host_key_alias}')
    lines += ['    StrictHostKeyChecking accept-new', end_marker(alias)]
    return '\n'.join(lines) + '\n'


def _find_marked_block(lines, alias):
    """(first, last) line indexes of our block for ``alias``, or None; SshConfigError if it is damaged."""
    start, end = start_marker(alias), end_marker(alias)
    starts = [i for i, line in enumerate(lines) if line.rstrip('\r\n').strip() == start]
    ends = [i for i, line in enumerate(lines) if line.rstrip('\r\n').strip() == end]
    if not starts and not ends:
        return None
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise SshConfigError('damaged', f"The markers of the '{alias}' block are incomplete or repeated, so it "
                             'cannot be replaced exactly.',
                             f"Delete the lines from '{start}' to '{end}' by hand, then run the command again.")
    return starts[0], ends[0]


def unmarked_host_lines(text, alias):
    """Line numbers (1-based) of `Host` lines outside our blocks that name ``alias`` literally."""
    found, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith('# >>> bastion-native '):
            inside = True
        elif stripped.startswith('# <<< bastion-native '):
            inside = False
        match = None if inside else _HOST_LINE.match(line)
        if match and alias.lower() in (pattern.strip('"').lower() for pattern in match.group('patterns').split()):
            found.append(number)
    return found


def merge_block(text, alias, block, overwrite=False):
    """``text`` with ``block`` in place of our block for ``alias`` (overwrite only), or appended after
    everything else (prepending would pull the user's leading global options into our Host)."""
    lines = text.splitlines(keepends=True)
    span = _find_marked_block(lines, alias)
    if span is not None:
        if not overwrite:
            raise SshConfigError('exists', f"The ssh config already has a Bastion block for '{alias}'.",
                                 'Add --overwrite to replace it, or choose another --host-alias.')
        newline = '\r\n' if lines[span[0]].endswith('\r\n') else '\n'
        replacement = block.replace('\n', newline) if newline != '\n' else block
        return ''.join(lines[:span[0]]) + replacement + ''.join(lines[span[1] + 1:]), True
    if not text:
        return block, False
    separator = '' if text.endswith('\n') else '\n'
    return text + separator + '\n' + block, False


def check_can_write(path, alias, overwrite):
    """Refuse early (before any network call) what write_block would refuse."""
    path = os.path.realpath(os.path.expanduser(path))
    if os.path.isdir(path):
        raise SshConfigError('invalid-argument', f"--file '{path}' is a directory.",
                             'Give the config file itself, e.g. ~/.ssh/config.')
    if os.path.exists(path):
        merge_block(_read(path), alias, '', overwrite)


def _read(path):
    with open(path, encoding='utf-8', newline='') as handle:
        return handle.read()


def write_block(path, alias, block, overwrite=False):
    """Add (or with ``overwrite`` replace) our block for ``alias`` in the config at ``path``.

    A new file is made 0600 (its directory 0700); an existing one keeps its mode and every other line. A
    symlinked config is updated where it points. Returns (real path, True if a block was replaced)."""
    path = os.path.realpath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIRECTORY_MODE)
        os.chmod(directory, DIRECTORY_MODE)     # makedirs' mode is filtered by the umask
    exists = os.path.exists(path)
    text = _read(path) if exists else ''
    merged, replaced = merge_block(text, alias, block, overwrite)
    mode = os.stat(path).st_mode & 0o7777 if exists else FILE_MODE
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(descriptor, 'w', encoding='utf-8', newline='') as handle:
            handle.write(merged)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path, replaced


# -- the command ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _file_errors(config_file):
    from azure.cli.core.azclierror import FileOperationError
    from azext_bastion_native.cli_errors import cli_error
    try:
        yield
    except SshConfigError as err:
        raise cli_error(err) from None
    except (OSError, UnicodeError) as err:
        raise FileOperationError(f"Cannot update '{config_file}': {getattr(err, 'strerror', None) or err}.") \
            from None


def _refuse_offline(cli_ctx, request_args, host_alias, ssh_key, config_file, overwrite):
    """Cloud Shell, the key, the arguments, the file: (key path, ConnectRequest, alias); no network call."""
    from azext_bastion_native.connect.session import connect_request
    from azext_bastion_native.guards import check_ssh_key_file, cloud_vault_suffixes, refuse_in_cloud_shell
    refuse_in_cloud_shell(COMMAND_NAME)
    key_path = check_ssh_key_file(ssh_key, cloud_vault_suffixes(cli_ctx)) if ssh_key else None
    request = connect_request(*request_args)
    with _file_errors(config_file):
        alias = check_alias(host_alias or default_alias(request.target_resource_id))
        if config_file:
            check_can_write(config_file, alias, overwrite)
    return key_path, request, alias


def ssh_config_command(cmd, resource_group_name, name, target_resource_id, host_alias=None, username=None,
                       ssh_key=None, resource_port=None, config_file=None, overwrite=False):
    """`az network bastion ssh-config`: print the Host block, or write it into ``config_file``."""
    from knack.log import get_logger
    from azext_bastion_native.clients.ssh import host_key_alias
    from azext_bastion_native.connect import session
    port = int(resource_port) if resource_port is not None else DEFAULT_METHOD_PORTS['ssh']
    key_path, request, alias = _refuse_offline(
        cmd.cli_ctx, (resource_group_name, name, target_resource_id, None, port), host_alias, ssh_key,
        config_file, overwrite)
    # What `ssh` and `proxy` would refuse: host without native client (the proxy's pre-flight), missing VM.
    destination = session.resolve_destination(cmd.cli_ctx, request)
    proxy = proxy_argv(az_argv(), resource_group_name, name, target_resource_id, port)
    with _file_errors(config_file):
        block = render_block(alias, proxy, username=username or destination.admin_username,
                             key_path=os.path.abspath(key_path) if key_path else None,
                             # the same known_hosts name as `az network bastion ssh` uses for this VM
                             host_key_alias=host_key_alias(destination.target_label),
                             comment=f'Written by `az {COMMAND_NAME}`: through Bastion host {name} '
                                     f'(resource group {resource_group_name}).')
        if not config_file:
            sys.stdout.write(block)
            sys.stdout.flush()
            return
        path, replaced = write_block(config_file, alias, block, overwrite)
        shadowing = unmarked_host_lines(_read(path), alias)
    if shadowing:
        get_logger(__name__).warning(
            "%s also has its own 'Host %s' (line %s); ssh takes the first value it finds for each option, so "
            'those lines may override this block.', path, alias, ', '.join(map(str, shadowing)))
    sys.stderr.write(f"{'Replaced' if replaced else 'Added'} the Bastion block for '{alias}' in {path}. "
                     f"Connect with: ssh {alias}\n")
