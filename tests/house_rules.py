"""House rules over the extension's command table: the azdev linter's rules, re-implemented.

azdev 0.2.13 wants an azure-cli repo checkout, which is not reachable here, so the same rules run as plain
functions over a description of the command table loaded through azure-cli-core itself:
every command and group has help; every command has at least one example and each example parses as an
invocation of that command; long options are at most 22 characters unless a short alias exists; no
underscores in option names; no positional parameters except a deliberate trailing pass-through
(ALLOWED_POSITIONALS)."""

import shlex
from dataclasses import dataclass, field

MAX_LONG_OPTION = 22
# Trailing pass-through arguments, by command: `az network bastion ssh ... -- SSH_ARGS`.
ALLOWED_POSITIONALS = {('network bastion ssh', 'ssh_args'), ('network bastion file upload', 'scp_args'),
                       ('network bastion file download', 'scp_args')}
# Long options that are Microsoft's own names for the same arguments (their bastion extension's aaz _create.py and
# _update.py), kept as aliases so scripts written for theirs run: excluded from the length rule, as azure-cli-extensions'
# linter_exclusions.yml excludes its own.
LONG_OPTION_EXCLUSIONS = {'--enable-shareable-link', '--enable-session-recording'}
GLOBAL_OPTIONS = {'-o', '--output', '--query', '--debug', '--verbose', '--only-show-errors', '-h', '--help'}


@dataclass
class Param:
    dest: str
    options: list
    help: str = ''
    positional: bool = False


@dataclass
class Command:
    name: str
    help: str = ''
    examples: list = field(default_factory=list)
    params: list = field(default_factory=list)


def lint(commands, groups, parse_example):
    """Return a list of problems (strings). `parse_example(tokens)` raises on an invalid invocation."""
    problems = []
    for group_name, group_help in groups.items():
        if not group_help:
            problems.append(f"group '{group_name}' has no help")
    for cmd in commands:
        if not cmd.help:
            problems.append(f"command '{cmd.name}' has no short-summary")
        if not cmd.examples:
            problems.append(f"command '{cmd.name}' has no example")
        for text in cmd.examples:
            problems.extend(_check_example(cmd, text, parse_example))
        for param in cmd.params:
            problems.extend(_check_param(cmd, param))
    return problems


def _check_param(cmd, param):
    problems = []
    if not param.help:
        problems.append(f"'{cmd.name}': parameter '{param.dest}' has no help")
    if param.positional:
        if (cmd.name, param.dest) not in ALLOWED_POSITIONALS:
            problems.append(f"'{cmd.name}': parameter '{param.dest}' is positional")
        return problems
    longs = [opt for opt in param.options if opt.startswith('--')]
    shorts = [opt for opt in param.options if opt.startswith('-') and not opt.startswith('--')]
    for opt in longs:
        if '_' in opt:
            problems.append(f"'{cmd.name}': option '{opt}' has an underscore")
        if len(opt) > MAX_LONG_OPTION and not shorts and opt not in LONG_OPTION_EXCLUSIONS:
            problems.append(f"'{cmd.name}': option '{opt}' is longer than {MAX_LONG_OPTION} characters "
                            f"and has no short alias")
    return problems


def _check_example(cmd, text, parse_example):
    tokens = shlex.split(text.replace('\\\n', ' '))
    if not tokens or tokens[0] != 'az':
        return [f"'{cmd.name}': example does not start with 'az': {text!r}"]
    words = cmd.name.split()
    if tokens[1:1 + len(words)] != words:
        return [f"'{cmd.name}': example runs another command: {text!r}"]
    try:
        parse_example(tokens[1:])
    except SystemExit:
        return [f"'{cmd.name}': example does not parse: {text!r}"]
    except Exception as err:  # pylint: disable=broad-except
        return [f"'{cmd.name}': example does not parse ({err}): {text!r}"]
    return []


def load_extension_commands(prefix='network bastion'):
    """Load the real command table (core + this extension as a dev extension) and describe our commands.

    Returns (commands, groups, parse_example)."""
    import yaml
    from knack.help_files import helps
    from azure.cli.core import get_default_cli

    cli = get_default_cli()
    invocation = cli.invocation_cls(cli_ctx=cli, parser_cls=cli.parser_cls,
                                    commands_loader_cls=cli.commands_loader_cls, help_cls=cli.help_cls)
    cli.invocation = invocation
    loader = invocation.commands_loader
    table = loader.load_command_table(prefix.split())
    names = sorted(name for name in table if name.startswith(prefix))
    for name in names:
        invocation.data['command_string'] = name
        loader.command_name = name
        loader.load_arguments(name)
    # What az raises before it builds its parser: --ids (arm.add_ids_arguments) and the other global arguments,
    # so examples parse as the real az parses them.
    from knack.events import EVENT_INVOKER_POST_CMD_TBL_CREATE
    cli.raise_event(EVENT_INVOKER_POST_CMD_TBL_CREATE, commands_loader=loader)
    invocation.parser.load_command_table(loader)

    commands = []
    for name in names:
        entry = yaml.safe_load(helps[name]) if name in helps else {}
        cmd = Command(name=name, help=(entry or {}).get('short-summary', ''),
                      examples=[ex['text'] for ex in (entry or {}).get('examples', []) or []])
        yaml_params = {p['name']: p for p in (entry or {}).get('parameters', []) or []}
        for dest, arg in table[name].arguments.items():
            settings = arg.type.settings
            if settings.get('help') == '==SUPPRESS==':
                continue
            options = list(settings.get('options_list') or [])
            positional = bool(options) and not any(opt.startswith('-') for opt in options)
            if not options:
                options = ['--' + dest.replace('_', '-')]
            yaml_help = next((p.get('short-summary') for key, p in yaml_params.items()
                              if any(opt in key.split() for opt in options)), None)
            cmd.params.append(Param(dest=dest, options=options, positional=positional,
                                    help=settings.get('help') or yaml_help or ''))
        commands.append(cmd)

    groups = {}
    for name in names:
        words = name.split()
        for end in range(2, len(words)):
            group = ' '.join(words[:end])
            if group.startswith(prefix):
                entry = yaml.safe_load(helps[group]) if group in helps else {}
                groups[group] = (entry or {}).get('short-summary', '')

    def parse_example(tokens):
        invocation.data['command_string'] = ' '.join(tokens)
        invocation.parser.parse_args(tokens)

    return commands, groups, parse_example
