"""House checks: the azdev linter's rules, start-up imports, flake8/pylint settings. Each also shows that the
check fails when the thing it guards is broken."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests import house_rules

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN_AT_LOAD = ('websockets', 'asyncio', 'requests', 'azure.mgmt.network', 'bastion_emulator', 'aiohttp')


def _cli_env(tmp_path):
    env = dict(os.environ)
    env.update(AZURE_CONFIG_DIR=str(tmp_path / 'azcfg'), AZURE_EXTENSION_DEV_SOURCES=REPO,
               AZURE_CORE_COLLECT_TELEMETRY='false')
    return env


LINT_SCRIPT = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, %r)
    from tests import house_rules
    commands, groups, parse_example = house_rules.load_extension_commands()
    problems = house_rules.lint(commands, groups, parse_example)
    print(json.dumps({"commands": [c.name for c in commands], "problems": problems}))
''')


def test_command_table_passes_azdev_linter_rules(tmp_path):
    import json
    out = subprocess.run([sys.executable, '-c', LINT_SCRIPT % REPO], env=_cli_env(tmp_path),
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert 'network bastion nsg show' in report['commands']
    assert report['problems'] == []


def test_linter_rules_catch_each_kind_of_problem():
    def parse_rejects_unknown(tokens):
        if '--nope' in tokens:
            raise SystemExit(2)

    bad = house_rules.Command(
        name='network bastion thing', help='', examples=['az network bastion thing --nope 1', 'echo hi'],
        params=[
            house_rules.Param('resource_port', ['--resource_port'], help='x'),
            house_rules.Param('very_long', ['--an-option-longer-than-22-chars'], help='x'),
            house_rules.Param('free', ['free'], help='x', positional=True),
            house_rules.Param('undocumented', ['--undocumented'], help=''),
        ])
    no_examples = house_rules.Command(name='network bastion other', help='Does things.')
    problems = house_rules.lint([bad, no_examples], {'network bastion thing': ''}, parse_rejects_unknown)
    text = '\n'.join(problems)
    for expected in ("group 'network bastion thing' has no help",
                     "'network bastion thing' has no short-summary",
                     "'network bastion other' has no example",
                     'example does not parse',
                     "example does not start with 'az'",
                     "option '--resource_port' has an underscore",
                     'longer than 22 characters',
                     "parameter 'free' is positional",
                     "parameter 'undocumented' has no help"):
        assert expected in text
    # A long option with a short alias is allowed; the allowed trailing pass-through is allowed.
    ok = house_rules.Command(name='network bastion ssh', help='SSH.', examples=['az network bastion ssh -n x'],
                             params=[house_rules.Param('x', ['--an-option-longer-than-22-chars', '-x'], help='x'),
                                     house_rules.Param('ssh_args', ['ssh_args'], help='x', positional=True)])
    assert house_rules.lint([ok], {}, lambda tokens: None) == []


IMPORT_PROBE = textwrap.dedent('''
    import importlib, json, sys
    forbidden = %r
    from azure.cli.core import get_default_cli
    cli = get_default_cli()
    # Modules azure-cli itself already imported are set aside, so that an import of them from our loader
    # shows up as a fresh import instead of hiding behind the cache.
    saved = {name: mod for name, mod in sys.modules.items()
             if any(name == f or name.startswith(f + '.') for f in forbidden)}
    for name in saved:
        del sys.modules[name]
    module = importlib.import_module(%r)
    loader = module.COMMAND_LOADER_CLS(cli_ctx=cli)
    cli.invocation = type('Inv', (), {'data': {'command_string': ''}})()
    table = loader.load_command_table(None)
    for name in table:
        cli.invocation.data['command_string'] = name
        loader.command_name = name
        loader.load_arguments(name)
    loaded = sorted({f for f in forbidden for name in sys.modules if name == f or name.startswith(f + '.')})
    print(json.dumps({"commands": len(table), "loaded": loaded}))
''')


def _probe_imports(tmp_path, module_name, extra_path=None):
    import json
    env = _cli_env(tmp_path)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (extra_path, REPO) if p)
    out = subprocess.run([sys.executable, '-c', IMPORT_PROBE % (FORBIDDEN_AT_LOAD, module_name)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loading_commands_and_arguments_imports_nothing_heavy(tmp_path):
    report = _probe_imports(tmp_path, 'azext_bastion_native')
    assert report['commands'] >= 1
    assert report['loaded'] == []


def test_import_probe_catches_a_heavy_import(tmp_path):
    fake = tmp_path / 'fakeext'
    (fake / 'azext_heavy').mkdir(parents=True)
    (fake / 'azext_heavy' / '__init__.py').write_text(textwrap.dedent('''
        import asyncio  # the mistake the probe exists to catch
        from azure.cli.core import AzCommandsLoader

        class Loader(AzCommandsLoader):
            def load_command_table(self, args):
                return self.command_table

            def load_arguments(self, command):
                pass

        COMMAND_LOADER_CLS = Loader
    '''))
    report = _probe_imports(tmp_path, 'azext_heavy', extra_path=str(fake))
    assert report['loaded'] == ['asyncio']


def _run_tool(args):
    return subprocess.run([sys.executable, '-m'] + args, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_flake8_settings_reject_a_long_line(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('x = ' + repr('a' * 130) + '\n')
    good = tmp_path / 'good.py'
    good.write_text('x = ' + repr('a' * 100) + '\n')
    assert _run_tool(['flake8', '--config', os.path.join(REPO, '.flake8'), str(bad)]).returncode != 0
    assert _run_tool(['flake8', '--config', os.path.join(REPO, '.flake8'), str(good)]).returncode == 0


@pytest.mark.parametrize('source, clean', [
    ('"""Doc."""\n\n\ndef f():\n    import os\n    return os.sep\n', True),   # lazy import is house style
    ('"""Doc."""\nimport os\n', False),                                       # unused import is not
])
def test_pylint_settings(tmp_path, source, clean):
    target = tmp_path / 'sample.py'
    target.write_text(source)
    result = _run_tool(['pylint', '--rcfile', os.path.join(REPO, 'pylintrc'), str(target)])
    assert (result.returncode == 0) is clean, result.stdout


def _package_sources():
    package = os.path.join(REPO, 'azext_bastion_native')
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                with open(path, encoding='utf-8') as handle:
                    yield os.path.relpath(path, REPO), handle.read()


@pytest.mark.parametrize('pattern, why', [
    (r'\bpkg_resources\b', 'pkg_resources is gone from Python 3.12 setups (upstream breaks on it)'),
    (r'shell\s*=\s*True', 'no shell: arguments reach programs as a list, never through a shell'),
    (r'^\s*print\(', 'output goes through azure-cli (return values, logger), not print()'),
])
def test_package_avoids_upstream_defects(pattern, why):
    import re
    offenders = [path for path, text in _package_sources() if re.search(pattern, text, re.MULTILINE)]
    assert offenders == [], why


def test_relay_and_dataplane_import_nothing_from_azure_cli():
    import re
    offenders = [path for path, text in _package_sources()
                 if path.split(os.sep)[1] in ('relay', 'dataplane') and re.search(r'^\s*(from|import) azure\.cli',
                                                                                  text, re.MULTILINE)]
    assert offenders == []


@pytest.mark.parametrize('package, strict', [('dataplane', True), ('relay', True), ('nsg', True), ('connect', False)])
def test_mypy_checks_dataplane_relay_and_nsg_strictly(tmp_path, package, strict):
    """mypy.ini: an untyped function is an error in dataplane/, relay/ and nsg/, not elsewhere; a wrong type is an
    error everywhere."""
    root = tmp_path / 'azext_bastion_native'
    (root / package).mkdir(parents=True)
    (root / '__init__.py').write_text('')
    (root / package / '__init__.py').write_text('')
    (root / package / 'untyped.py').write_text('def double(x):\n    return x * 2\n')
    (root / package / 'wrong.py').write_text('def name() -> str:\n    return 1\n')
    config = os.path.join(REPO, 'mypy.ini')

    def mypy(module):
        return subprocess.run([sys.executable, '-m', 'mypy', '--config-file', config, '--no-incremental', '-m',
                               f'azext_bastion_native.{package}.{module}'], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
    assert (mypy('untyped').returncode != 0) is strict
    assert mypy('wrong').returncode != 0
