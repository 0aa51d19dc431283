"""The ssh_config text of our Host blocks: render one, read one back, merge blocks into a user's config. Pure.

Blocks sit between marker comments, so an update replaces exactly our lines and never the user's.

Placement: ssh takes the FIRST value it finds for each option (openssh-portable readconf.c, process_config_line:
`if (*activep && *charptr == NULL)`), and a line before the first `Host`/`Match` applies to every host, as does an
`Include` there (the included file's `Host *` too). So a block goes before the first line ssh would read first for
its alias: a top-level line that sets an option the block sets (or `ProxyJump`, or an `Include`), a `Host` line
matching the alias, or any `Match` line; at the end only when there is none. A block placed among the top-level
lines ends with `Host *`, so the user's top-level lines after it still apply to every host as before (readconf.c
restores the active state after an Include, so an Include under `Host *` reads as one at the top). We insert rather
than `Include` a file of ours: an Include has to sit above the user's first Host line to win, which means editing the
top of their file anyway, and one file keeps what ssh will do readable in one place.

Nothing from ARM or the command line becomes an option of its own: a value with a control character (a line break
above all) is refused, and every finished block is checked once more as a whole."""

import fnmatch
import os
import re

from azext_bastion_native.clients.ssh import escape_percent, proxy_command_line
from azext_bastion_native.errors import Kind, Refused

# The one home of the marker comments around our blocks.
START_PREFIX = '# >>> bastion-native '
END_PREFIX = '# <<< bastion-native '
_START_SUFFIX = ' >>>'
_END_SUFFIX = ' <<<'
# What a block placed among the user's top-level lines ends with (module docstring).
REOPEN_COMMENT = '# The lines after this block were at the top of the file: `Host *` keeps them for every host.'
REOPEN_LINE = 'Host *'

# A Host pattern that is one literal name: no whitespace, wildcards (*, ?), negation (!), lists (,) or comments.
_ALIAS = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')
_HOST_LINE = re.compile(r'^\s*host\s*[=\s]\s*(?P<patterns>.*)$', re.IGNORECASE)
_MATCH_LINE = re.compile(r'^\s*match\s*[=\s]', re.IGNORECASE)
_KEYWORD = re.compile(r'^\s*(?P<keyword>[A-Za-z]+)\s*[=\s]\s*(?P<value>.*?)\s*$')
# Characters that make ssh_config's tokenizer split or end a value unless it is in double quotes.
_NEEDS_QUOTES = re.compile(r"[\s'#]")
# C0 controls and DEL: a line break would start a line (an option, a Host) of its own.
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
# Options a block sets, and the others that decide where and as whom ssh connects: a top-level line with one of
# them (or an Include, whose file may set them) would win over a block placed after it.
BLOCK_OPTIONS = ('hostname', 'port', 'proxycommand', 'user', 'identityfile', 'identitiesonly', 'hostkeyalias',
                 'stricthostkeychecking')
_SHADOWING_TOP_LEVEL = frozenset(BLOCK_OPTIONS + ('proxyjump', 'include'))


class SshConfigError(Refused):
    """An ssh-config refusal; ``kind`` an errors.Kind."""

    def __init__(self, kind, message, recommendation=None):
        super().__init__(message, recommendation, kind)


def start_marker(alias):
    return f'{START_PREFIX}{alias}{_START_SUFFIX}'


def end_marker(alias):
    return f'{END_PREFIX}{alias}{_END_SUFFIX}'


def _marked_alias(stripped):
    """The alias of a start marker line (stripped), or None."""
    if stripped.startswith(START_PREFIX) and stripped.endswith(_START_SUFFIX):
        return stripped[len(START_PREFIX):-len(_START_SUFFIX)]
    return None


def printable(value):
    """``value`` with control characters written as \\xNN, for messages (never a raw line break or escape)."""
    return _CONTROL.sub(lambda found: f'\\x{ord(found.group()):02x}', str(value))


def has_control_character(value):
    return value is not None and bool(_CONTROL.search(str(value)))


def check_plain(value, what):
    """Refuse a value with a control character (\\x00-\\x1f, \\x7f) before it is written anywhere."""
    if has_control_character(value):
        raise SshConfigError(Kind.INVALID_ARGUMENT,
                             f"{what} '{printable(value)}' has a control character, so it cannot be written to "
                             'ssh_config.', 'Use a value without line breaks or other control characters.')
    return value


def check_finished_text(text, what='The block'):
    """The finished text once more as a whole: line breaks between lines only, no other control character."""
    if _CONTROL.search(text.replace('\n', '')):
        raise SshConfigError(Kind.INVALID_ARGUMENT, f'{what} would hold a control character, so it was not '
                             'written.', 'Use values without line breaks or other control characters.')
    return text


def check_alias(alias):
    if not alias or not _ALIAS.match(alias):
        raise SshConfigError(Kind.INVALID_ARGUMENT,
                             f"--host-alias '{printable(alias)}' is not a plain host name for ssh_config.",
                             'Use letters, digits, dots, dashes and underscores only (no spaces or wildcards).')
    return alias


def command_line(argv, os_name=None):
    """The ProxyCommand line for ``argv`` (clients.ssh.proxy_command_line), none of its words with a control
    character."""
    for arg in argv:
        check_plain(arg, 'A ProxyCommand argument')
    return proxy_command_line(argv, os_name)


def config_value(value, what):
    """``value`` as one ssh_config argument: in double quotes when it holds a space, an apostrophe or a #
    (ssh's tokenizer pairs apostrophes as quotes too: one alone is "invalid quotes" for the whole file), a
    backslash doubled (an escape character to that tokenizer), % doubled (ssh expands %-tokens). A double
    quote or a control character (a line break above all) cannot be written at all."""
    if '"' in value or _CONTROL.search(value) or not value:
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"{what} '{printable(value)}' cannot be written to ssh_config.",
                             'Use a value without double quotes or line breaks.')
    value = escape_percent(value.replace('\\', '\\\\'))
    return f'"{value}"' if _NEEDS_QUOTES.search(value) else value


def config_path_value(path, os_name=None):
    if (os_name or os.name) == 'nt':
        path = path.replace('\\', '/')      # backslashes are escapes to ssh_config's tokenizer
    return config_value(path, '--ssh-key')


def check_username(username):
    if any(char.isspace() or char in '"%\\' for char in username) or has_control_character(username):
        raise SshConfigError(Kind.INVALID_ARGUMENT,
                             f"--username '{printable(username)}' cannot be written to ssh_config.",
                             'Use a user name without spaces, double quotes, % or backslashes.')
    return config_value(username, '--username')


def tag_line(tag):
    """The comment line that marks a block as one of a set written together (a resource group's VMs)."""
    return f'# bastion-native set: {tag}'


def match_exec_line(alias, argv, os_name=None):
    """`Match originalhost ALIAS exec "COMMAND"`: ssh runs COMMAND (through the shell, %-tokens expanded, as a
    ProxyCommand) for ALIAS only (readconf.c match_cfg_line skips an exec whose earlier criterion failed) while it
    reads its config, before it starts the ProxyCommand and loads the identity and certificate files."""
    line = command_line(argv, os_name)
    if '"' in line or '\\' in line:
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"The command '{printable(line)}' cannot be written to ssh_config "
                             'in double quotes.', 'Install az and Python under paths without double quotes or '
                             'backslashes.')
    return f'Match originalhost {alias} exec "{line}"'


def render_block(alias, proxy, username=None, key_path=None, host_key_alias=None, comment=None, os_name=None,
                 tag=None, port=22, certificate_path=None, refresh=None):
    """The marked Host block (text ending in a newline). ``proxy``: the ProxyCommand argv; ``tag``: the set it
    belongs to (tagged_aliases finds it again, for --prune). HostName and Port are written too, so no line of
    the user's sets them first (ssh -G then shows exactly what the block says). ``certificate_path``: an OpenSSH
    user certificate for ``key_path``; ``refresh``: the argv that keeps it valid, run by a `Match ... exec` line
    that ends the block (match_exec_line)."""
    check_alias(alias)
    lines = [start_marker(alias)]
    if comment:
        lines.append(f'# {check_plain(comment, "The comment")}')
    if tag:
        lines.append(tag_line(check_plain(tag, 'The set name')))
    lines += [f'Host {alias}', f'    HostName {alias}', f'    Port {int(port)}',
              f'    ProxyCommand {command_line(proxy, os_name)}']
    if username:
        lines.append(f'    User {check_username(username)}')
    if key_path:
        lines += [f'    IdentityFile {config_path_value(key_path, os_name)}', '    IdentitiesOnly yes']
    if certificate_path:
        lines.append(f'    CertificateFile {config_path_value(certificate_path, os_name)}')
    if host_key_alias:
        lines.append(f'    HostKeyAlias {config_value(host_key_alias, "The host key alias")}')
    lines.append('    StrictHostKeyChecking accept-new')
    if refresh:
        lines.append(match_exec_line(alias, refresh, os_name))
    lines.append(end_marker(alias))
    return check_finished_text('\n'.join(lines) + '\n')


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value.replace('\\\\', '\\')


def block_options(block):
    """What a block of ours says, as ssh -G names it: {option: value}, the first value of each (ProxyCommand
    as written, the rest of its line; other values unquoted, % kept doubled as ssh -G shows them)."""
    options, in_host = {}, False
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        host = _HOST_LINE.match(line)
        if host or _MATCH_LINE.match(line):
            in_host = bool(host) and host.group('patterns').strip() != '*'
            continue
        found = _KEYWORD.match(line)
        if in_host and found:
            keyword = found.group('keyword').lower()
            value = found.group('value') if keyword == 'proxycommand' else _unquote(found.group('value'))
            options.setdefault(keyword, value)
    return options


def differences(block, resolved):
    """Where ``resolved`` (ssh -G's options: {option: [values]}) differs from what ``block`` says, for the
    options that decide where, through what and as whom ssh connects: [(option, ssh's value, the block's)]."""
    said = block_options(block)
    found = []
    for option in ('proxycommand', 'user', 'hostname', 'port', 'identityfile', 'hostkeyalias'):
        if option not in said:
            continue
        values = resolved.get(option) or []
        got = values[0] if values else None
        wanted = said[option]
        same = (got or '').lower() == wanted.lower() if option == 'hostname' else got == wanted
        if not same:
            found.append((option, got, wanted))
    if resolved.get('proxyjump'):
        found.append(('proxyjump', resolved['proxyjump'][0], None))
    return found


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


def _outside_blocks(lines):
    """(index, line) of the lines outside our blocks."""
    inside = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(START_PREFIX):
            inside = True
        elif stripped.startswith(END_PREFIX):
            inside = False
        elif not inside:
            yield index, line


def unmarked_host_lines(text, alias):
    """Line numbers (1-based) of `Host` lines outside our blocks that name ``alias`` literally."""
    found = []
    for index, line in _outside_blocks(text.splitlines()):
        match = _HOST_LINE.match(line)
        if match and alias.lower() in (pattern.strip('"').lower() for pattern in match.group('patterns').split()):
            found.append(index + 1)
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


def _top_level_keyword(line):
    stripped = line.strip()
    if not stripped or stripped.startswith('#'):
        return None
    found = _KEYWORD.match(line)
    return found.group('keyword').lower() if found else None


def _first_shadowing_line(lines, aliases):
    """Index of the first line outside our blocks that ssh would read before a block appended at the end for
    any of ``aliases``: a top-level line setting an option that decides the connection (or an Include), a Host
    line matching one of them, or any Match line (not evaluated)."""
    top_level = True
    for index, line in _outside_blocks(lines):
        host = _HOST_LINE.match(line)
        if _MATCH_LINE.match(line) or (host and any(_host_matches(host.group('patterns'), alias)
                                                    for alias in aliases)):
            return index
        if host:
            top_level = False
        elif top_level and _top_level_keyword(line) in _SHADOWING_TOP_LEVEL:
            return index
    return None


def _reopen_top_level(lines, newline):
    """Each of our blocks among the user's top-level lines ends with `Host *` when a top-level line of theirs
    follows it (module docstring), and with nothing of the kind otherwise."""
    reopen = {REOPEN_COMMENT, REOPEN_LINE}
    result, top_level, index = [], True, 0
    while index < len(lines):
        line = lines[index]
        span = _intact_span(lines, _marked_alias(line.strip()))
        if span is None:
            result.append(line)
            if _HOST_LINE.match(line) or _MATCH_LINE.match(line):
                top_level = False
            index += 1
            continue
        body = [item for item in lines[span[0]:span[1]] if item.strip() not in reopen]
        if top_level and _top_level_line_follows(lines, span[1] + 1):
            body += [REOPEN_COMMENT + newline, REOPEN_LINE + newline]
        result += body + [lines[span[1]]]
        index = span[1] + 1
    return result


def _intact_span(lines, alias):
    """(first, last) of our block for ``alias`` if its markers are whole, else None (left as it is)."""
    if alias is None:
        return None
    try:
        return _find_marked_block(lines, alias)
    except SshConfigError:
        return None


def _top_level_line_follows(lines, index):
    """Whether the next line of the user's after ``index`` (past blanks, comments and our blocks) is an option."""
    for _, line in _outside_blocks(lines[index:]):
        if _HOST_LINE.match(line) or _MATCH_LINE.match(line):
            return False
        if _top_level_keyword(line):
            return True
    return False


def tagged_aliases(text, tag):
    """Aliases of our blocks in ``text`` that carry ``tag``."""
    found, alias, wanted = [], None, tag_line(tag)
    for line in text.splitlines():
        stripped = line.strip()
        if _marked_alias(stripped) is not None:
            alias = _marked_alias(stripped)
        elif stripped.startswith(END_PREFIX):
            alias = None
        elif alias is not None and stripped == wanted:
            found.append(alias)
    return found


def marked_blocks(text):
    """{alias: block text} of our blocks in ``text``."""
    blocks, alias, lines = {}, None, []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if _marked_alias(stripped) is not None:
            alias, lines = _marked_alias(stripped), [line]
        elif alias is not None:
            lines.append(line)
            if stripped == end_marker(alias):
                blocks[alias] = ''.join(lines)
                alias = None
    return blocks


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
    return ''.join(_reopen_top_level(lines, newline)), replaced


def merge_block(text, alias, block, overwrite=False):
    """``text`` with ``block`` merged in for ``alias`` (merge_blocks): (new text, True if it replaced one)."""
    merged, replaced = merge_blocks(text, {alias: block}, overwrite)
    return merged, bool(replaced)
