"""Render, merge and write Bastion ssh_config Host blocks.

`az network bastion ssh-config`: an OpenSSH `Host` block whose ProxyCommand is `az network bastion proxy`, so plain
ssh, scp, sftp, rsync and Ansible reach the VM through Bastion. Blocks we write sit between marker comments, so an
update replaces exactly our lines and never the user's; the file is rewritten atomically (temp file in the same
directory + rename) after the real `ssh -G` has read the new text without complaint.

Placement: ssh takes the FIRST value it finds for each option, so a block after the user's `Host *` (or any `Match`)
would lose User, IdentityFile, StrictHostKeyChecking... to it. New blocks go right before the first `Host` line that
matches their alias, or the first `Match` line, and at the end only when there is neither. We insert rather than
`Include` a file of ours: an Include has to sit above the user's first Host line to win, which means editing the
top of their file anyway, and one file keeps what ssh will do readable in one place."""

import contextlib
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tempfile

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS
from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.errors import Kind, Refused

COMMAND_NAME = 'network bastion ssh-config'
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# A Host pattern that is one literal name: no whitespace, wildcards (*, ?), negation (!), lists (,) or comments.
_ALIAS = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')
_HOST_LINE = re.compile(r'^\s*host\s*[=\s]\s*(?P<patterns>.*)$', re.IGNORECASE)
_MATCH_LINE = re.compile(r'^\s*match\s*[=\s]', re.IGNORECASE)
# Characters that make ssh_config's tokenizer split or end a value unless it is in double quotes.
_NEEDS_QUOTES = re.compile(r"[\s'#]")
VALIDATE_TIMEOUT = 15.0


class SshConfigError(Refused):
    """An ssh-config refusal; ``kind`` an errors.Kind."""

    def __init__(self, kind, message, recommendation=None):
        super().__init__(message, recommendation, kind)


def start_marker(alias):
    return f'# >>> bastion-native {alias} >>>'


def end_marker(alias):
    return f'# <<< bastion-native {alias} <<<'


def check_alias(alias):
    if not alias or not _ALIAS.match(alias):
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"--host-alias '{alias}' is not a plain host name for ssh_config.",
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


def az_argv(executable=None, os_name=None, which=None):
    """How to start this same az again, as absolute argv: the az beside this interpreter (a venv or an MSI
    install), else the one on PATH (never from the current directory: find_program), else ``python -m azure.cli``."""
    executable = executable or sys.executable
    os_name = os_name or os.name
    names = ('az.cmd', 'az.bat', 'az') if os_name == 'nt' else ('az',)
    for candidate in (os.path.join(os.path.dirname(executable), name) for name in names):
        if os.path.isfile(candidate):
            return [os.path.abspath(candidate)]
    found = which('az') if which is not None else find_program('az', os_name)
    if found:
        return [found]
    return [os.path.abspath(executable), '-m', 'azure.cli']


HELPER_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'agent',
                             'proxy_helper.py')


def agent_helper_argv(az, resource_group, name, target_resource_id, port, subscription=None, python=None):
    """The connection agent's ProxyCommand: this interpreter, isolated (-I: nothing from the environment or the
    current directory on its path; -S: no site-packages, whose start-up hooks would cost more than the rest of a
    warm connection) runs the stand-alone helper, which starts the agent with ``az`` if need be."""
    return [python or sys.executable, '-I', '-S', HELPER_SCRIPT, resource_group, name, target_resource_id, str(port),
            subscription or '-', *az]


def proxy_argv(az, resource_group, name, target_resource_id, port, subscription=None):
    subscription_args = ['--subscription', subscription] if subscription else []
    return [*az, 'network', 'bastion', 'proxy', '-g', resource_group, '-n', name,
            '--target-resource-id', target_resource_id, '--resource-port', str(port), *subscription_args]


def _command_line(argv, os_name):
    """One command line: POSIX ssh runs ProxyCommand through the shell; Windows' ssh through CreateProcess."""
    line = subprocess.list2cmdline(argv) if os_name == 'nt' else ' '.join(shlex.quote(arg) for arg in argv)
    return line.replace('%', '%%')      # ssh expands %h, %p, ... in ProxyCommand


def config_value(value, what):
    """``value`` as one ssh_config argument: in double quotes when it holds a space, an apostrophe or a #
    (ssh's tokenizer pairs apostrophes as quotes too: one alone is "invalid quotes" for the whole file), a
    backslash doubled (an escape character to that tokenizer), % doubled (ssh expands %-tokens). A double
    quote or a line break cannot be written at all."""
    if '"' in value or '\n' in value or '\r' in value or not value:
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"{what} '{value}' cannot be written to ssh_config.",
                             'Use a value without double quotes or line breaks.')
    value = value.replace('\\', '\\\\').replace('%', '%%')
    return f'"{value}"' if _NEEDS_QUOTES.search(value) else value


def _config_path_value(path, os_name):
    if os_name == 'nt':
        path = path.replace('\\', '/')      # backslashes are escapes to ssh_config's tokenizer
    return config_value(path, '--ssh-key')


def tag_line(tag):
    """The comment line that marks a block as one of a set written together (a resource group's VMs)."""
    return f'# bastion-native set: {tag}'


def render_block(alias, proxy, username=None, key_path=None, host_key_alias=None, comment=None, os_name=None,
                 tag=None):
    """The marked Host block (text ending in a newline). ``proxy``: the ProxyCommand argv; ``tag``: the set it
    belongs to (tagged_aliases finds it again, for --prune)."""
    os_name = os_name or os.name
    lines = [start_marker(alias)]
    if comment:
        lines.append(f'# {comment}')
    if tag:
        lines.append(tag_line(tag))
    lines += [f'Host {alias}', f'    ProxyCommand {_command_line(proxy, os_name)}']
    if username:
        if any(char.isspace() or char in '"%\\' for char in username):
            raise SshConfigError(Kind.INVALID_ARGUMENT, f"--username '{username}' cannot be written to ssh_config.",
                                 'Use a user name without spaces, double quotes, % or backslashes.')
        lines.append(f'    User {config_value(username, "--username")}')
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
        raise SshConfigError(Kind.DAMAGED, f"The markers of the '{alias}' block are incomplete or repeated, so it "
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


def _host_matches(patterns, alias):
    """OpenSSH's pattern-list rule for a Host line: any negated pattern that matches excludes; else any pattern."""
    alias, matched = alias.lower(), False
    for pattern in patterns.replace(',', ' ').split():
        pattern = pattern.strip('"').lower()
        negated = pattern.startswith('!')
        if fnmatch.fnmatchcase(alias, pattern.lstrip('!')):
            if negated:
                return False
            matched = True
    return matched


def _first_shadowing_line(lines, aliases):
    """Index of the first line outside our blocks that starts a section ssh would read before a block appended
    at the end for any of ``aliases``: a Host line matching one of them, or any Match line (not evaluated)."""
    inside = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith('# >>> bastion-native '):
            inside = True
        elif stripped.startswith('# <<< bastion-native '):
            inside = False
        elif not inside:
            host = _HOST_LINE.match(line)
            if _MATCH_LINE.match(line) or (host and any(_host_matches(host.group('patterns'), alias)
                                                        for alias in aliases)):
                return index
    return None


def tagged_aliases(text, tag):
    """Aliases of our blocks in ``text`` that carry ``tag``."""
    found, alias, wanted = [], None, tag_line(tag)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('# >>> bastion-native ') and stripped.endswith(' >>>'):
            alias = stripped[len('# >>> bastion-native '):-len(' >>>')]
        elif stripped.startswith('# <<< bastion-native '):
            alias = None
        elif alias is not None and stripped == wanted:
            found.append(alias)
    return found


def merge_blocks(text, blocks, overwrite=False, remove=()):
    """``text`` with ``blocks`` ({alias: block text}) merged in and our blocks for the aliases in ``remove``
    taken out: (new text, aliases whose block was replaced). A block is replaced where it is, unless something
    ssh reads first would shadow it there; new (and moved) blocks go before the first shadowing line, else
    at the end (module docstring). Without ``overwrite`` an existing block is refused."""
    lines = text.splitlines(keepends=True)
    newline = '\r\n' if lines and lines[0].endswith('\r\n') else '\n'
    replaced, pending = [], {}
    for alias, block in blocks.items():
        span = _find_marked_block(lines, alias)
        if span is None:
            pending[alias] = block
            continue
        if not overwrite:
            raise SshConfigError(Kind.EXISTS, f"The ssh config already has a Bastion block for '{alias}'.",
                                 'Add --overwrite to replace it, or choose another --host-alias.')
        replaced.append(alias)
        shadow = _first_shadowing_line(lines, [alias])
        if shadow is not None and shadow < span[0]:
            del lines[span[0]:span[1] + 1]
            pending[alias] = block
        else:
            lines[span[0]:span[1] + 1] = block.replace('\n', newline).splitlines(keepends=True)
    for alias in remove:
        span = _find_marked_block(lines, alias)
        if span is not None:
            end = span[1] + 1
            if end < len(lines) and not lines[end].strip():
                end += 1        # the blank line we put after it
            del lines[span[0]:end]
    if pending:
        added = ''.join(pending.values()).replace('\n', newline)
        shadow = _first_shadowing_line(lines, list(pending))
        if shadow is not None:
            lines[shadow:shadow] = (added + newline).splitlines(keepends=True)
        elif lines:
            if not lines[-1].endswith('\n'):
                lines[-1] += newline
            lines.append(newline)
            lines += added.splitlines(keepends=True)
        else:
            lines = added.splitlines(keepends=True)
    return ''.join(lines), replaced


def merge_block(text, alias, block, overwrite=False):
    """``text`` with ``block`` merged in for ``alias`` (merge_blocks): (new text, True if it replaced one)."""
    merged, replaced = merge_blocks(text, {alias: block}, overwrite)
    return merged, bool(replaced)


def check_can_write(path, alias, overwrite):
    """Refuse early (before any network call) what write_block would refuse."""
    path = os.path.realpath(os.path.expanduser(path))
    if os.path.isdir(path):
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"--file '{path}' is a directory.",
                             'Give the config file itself, e.g. ~/.ssh/config.')
    if os.path.exists(path):
        merge_block(read_config(path), alias, '', overwrite)


def read_config(path):
    with open(path, encoding='utf-8', newline='') as handle:
        return handle.read()


def validate_with_ssh(path, alias, ssh=None):
    """Let the real OpenSSH client parse the config at ``path`` (`ssh -G -F PATH ALIAS`: no connection), so a
    value it cannot read never reaches the user's file; SshConfigError with ssh's own words if it refuses.
    Skipped (True) when there is no ssh to ask; returns False then."""
    ssh = ssh or find_program('ssh')
    if ssh is None:
        return False
    try:
        result = subprocess.run([ssh, '-G', '-F', path, alias], capture_output=True, text=True, check=False,
                                timeout=VALIDATE_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode != 0:
        said = ' '.join(result.stderr.strip().replace(path, '<config>').split())[:500]
        raise SshConfigError(Kind.DAMAGED, f'ssh cannot read the config with this block, so it was not written: {said}',
                             'Check the lines ssh names (they may be your own), or write the block to another '
                             'file with --file.')
    return True


def write_blocks(path, blocks, overwrite=False, remove=()):
    """Merge ``blocks`` ({alias: text}) into the config at ``path`` and take out ours for ``remove``
    (merge_blocks), check the result with `ssh -G`, then put it in place atomically.

    A new file is made 0600 (its directory 0700); an existing one keeps its mode and every other line. A
    symlinked config is updated where it points. Returns (real path, aliases whose block was replaced)."""
    path = os.path.realpath(os.path.expanduser(path))
    text = read_config(path) if os.path.exists(path) else ''
    merged, replaced = merge_blocks(text, blocks, overwrite, remove)
    probe = next(iter(blocks), None) or 'bastion-native-check'
    return write_atomically(path, merged, lambda temporary: validate_with_ssh(temporary, probe)), replaced


def write_atomically(path, text, check=None):
    """Write ``text`` to a temporary file beside ``path``, ``check(temporary path)`` it, then rename it over
    ``path``: readers see the old file or the new one, never half of one. A new file is 0600 (its directory
    0700); an existing one keeps its mode. Returns the real path."""
    path = os.path.realpath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIRECTORY_MODE)
        os.chmod(directory, DIRECTORY_MODE)     # makedirs' mode is filtered by the umask
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else FILE_MODE
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(descriptor, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path


def write_block(path, alias, block, overwrite=False):
    """write_blocks for one block: (real path, True if it replaced ours for ``alias``)."""
    path, replaced = write_blocks(path, {alias: block}, overwrite)
    return path, bool(replaced)


# -- the command ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def cli_file_errors(config_file):
    from azure.cli.core.azclierror import FileOperationError
    from azext_bastion_native.cli_errors import cli_error
    try:
        yield
    except SshConfigError as err:
        raise cli_error(err) from None
    except (OSError, UnicodeError) as err:
        raise FileOperationError(f"Cannot update '{config_file}': {getattr(err, 'strerror', None) or err}.") \
            from None


def _check_scope(target_resource_id, host_alias, overwrite, vm_resource_group, all_vms, prune, inventory,
                 inventory_format):
    from azure.cli.core.azclierror import MutuallyExclusiveArgumentError, RequiredArgumentMissingError
    scopes = [option for option, value in (('--target-resource-id', target_resource_id),
                                           ('--vm-resource-group', vm_resource_group), ('--all', all_vms)) if value]
    if not scopes:
        raise RequiredArgumentMissingError('Give the VM (--target-resource-id), a resource group of VMs '
                                           '(--vm-resource-group) or --all.')
    if len(scopes) > 1:
        raise MutuallyExclusiveArgumentError(f"{' and '.join(scopes)} do not go together: give one of them.")
    single = [option for option, value in (('--prune', prune), ('--inventory', inventory),
                                           ('--inventory-format', inventory_format)) if value]
    several = [option for option, value in (('--host-alias', host_alias), ('--overwrite', overwrite)) if value]
    if target_resource_id and single:
        raise MutuallyExclusiveArgumentError(f"{', '.join(single)}: only with --vm-resource-group or --all.")
    if not target_resource_id and several:
        raise MutuallyExclusiveArgumentError(
            f"{', '.join(several)}: only with --target-resource-id (with --vm-resource-group or --all, aliases "
            'are the VM names and a re-run updates the blocks in place).')


def given_subscription(cli_ctx):
    """The subscription's id when --subscription was given, for the ProxyCommand: it runs later, when the
    default subscription may be another one (a name is resolved to the id, which never changes)."""
    given = getattr(cli_ctx, 'data', {}).get('subscription_id')
    if not given:
        return None
    from azure.cli.core._profile import Profile
    return Profile(cli_ctx=cli_ctx).get_subscription_id(given)


def _refuse_offline(cli_ctx, request_args, host_alias, ssh_key, config_file, overwrite):
    """Cloud Shell, the key, the arguments, the file: (key path, ConnectRequest, alias); no network call."""
    from azext_bastion_native.connect.session import connect_request
    from azext_bastion_native.guards import check_ssh_key_file, cloud_vault_suffixes, refuse_in_cloud_shell
    refuse_in_cloud_shell(COMMAND_NAME)
    key_path = check_ssh_key_file(ssh_key, cloud_vault_suffixes(cli_ctx)) if ssh_key else None
    request = connect_request(*request_args)
    with cli_file_errors(config_file):
        alias = check_alias(host_alias or default_alias(request.target_resource_id))
        if config_file:
            check_can_write(config_file, alias, overwrite)
    return key_path, request, alias


def proxy_command_argv(resource_group, name, target_resource_id, port, subscription, no_agent=False,
                       os_name=None):
    """The agent's helper on POSIX; `az network bastion proxy` on Windows (no Unix socket OpenSSH can use, no
    detached daemons) or when asked."""
    from azext_bastion_native.clients.local_tunnel import unix_sockets_supported
    maker = proxy_argv if no_agent or (os_name or os.name) == 'nt' or not unix_sockets_supported() \
        else agent_helper_argv
    return maker(az_argv(), resource_group, name, target_resource_id, port, subscription=subscription)


def ssh_config_command(cmd, resource_group_name, name, target_resource_id=None, host_alias=None, username=None,
                       ssh_key=None, resource_port=None, config_file=None, overwrite=False, no_agent=False,
                       vm_resource_group=None, all_vms=False, prune=False, inventory=None, inventory_format=None):
    """`az network bastion ssh-config`: print the Host block, or write it into ``config_file``; for a resource
    group's VMs or all the host reaches: connect/fleet.py."""
    _check_scope(target_resource_id, host_alias, overwrite, vm_resource_group, all_vms, prune, inventory,
                 inventory_format)
    if not target_resource_id:
        from azext_bastion_native.connect.fleet import fleet_ssh_config_command
        return fleet_ssh_config_command(cmd, resource_group_name, name, vm_resource_group, username=username,
                                        ssh_key=ssh_key, resource_port=resource_port, config_file=config_file,
                                        prune=prune, inventory=inventory, inventory_format=inventory_format or 'yaml',
                                        no_agent=no_agent)
    _one_vm_config(cmd, resource_group_name, name, target_resource_id, host_alias, username, ssh_key, resource_port,
                   config_file, overwrite, no_agent)
    return None


def _one_vm_config(cmd, resource_group_name, name, target_resource_id, host_alias, username, ssh_key,
                   resource_port, config_file, overwrite, no_agent):
    from knack.log import get_logger
    from azext_bastion_native.clients.ssh import host_key_alias
    from azext_bastion_native.connect import session
    port = int(resource_port) if resource_port is not None else DEFAULT_METHOD_PORTS['ssh']
    key_path, request, alias = _refuse_offline(
        cmd.cli_ctx, (resource_group_name, name, target_resource_id, None, port), host_alias, ssh_key,
        config_file, overwrite)
    # What `ssh` and `proxy` would refuse: host without native client (the proxy's pre-flight), missing VM.
    destination = session.resolve_destination(cmd.cli_ctx, request)
    proxy = proxy_command_argv(resource_group_name, name, target_resource_id, port,
                               given_subscription(cmd.cli_ctx), no_agent)
    with cli_file_errors(config_file):
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
        shadowing = unmarked_host_lines(read_config(path), alias)
    if shadowing:
        get_logger(__name__).warning(
            "%s also has its own 'Host %s' (line %s); ssh takes the first value it finds for each option, so "
            'those lines may override this block.', path, alias, ', '.join(map(str, shadowing)))
    sys.stderr.write(f"{'Replaced' if replaced else 'Added'} the Bastion block for '{alias}' in {path}. "
                     f"Connect with: ssh {alias}\n")
