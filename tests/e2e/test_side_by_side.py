"""Beside Microsoft's `bastion` extension: a stand-in of it (a wheel-style extension folder registering the same
`az network bastion` commands and argument scopes) installed in a fresh AZURE_EXTENSION_DIR next to ours."""

import json
import os
import textwrap

import pytest

from bastion_emulator.testing.sandbox import AzCli, az_environment

pytestmark = pytest.mark.e2e

STAND_IN_COMMANDS = ('create', 'delete', 'list', 'show', 'update', 'wait', 'ssh', 'rdp', 'tunnel')
STAND_IN_OUTPUT = 'stand-in bastion extension ran'
THEIRS_IN_A_SHARED_SCOPE = 'Stand-in help in a scope both define.'
THEIRS_IN_A_SCOPE_OF_THEIR_OWN = 'Stand-in help in a scope only it defines.'


def _install_stand_in(extension_dir):
    """What `az extension add -n bastion` leaves: <dir>/bastion/{azext_bastion/, bastion-1.1.0.dist-info/}."""
    root = extension_dir / 'bastion'
    package = root / 'azext_bastion'
    package.mkdir(parents=True)
    (package / 'azext_metadata.json').write_text(json.dumps({'azext.minCliCoreVersion': '2.62.0'}))
    (package / '__init__.py').write_text(textwrap.dedent(f'''
        from azure.cli.core import AzCommandsLoader
        from azure.cli.core.commands import CliCommandType


        def ran(**_):
            return {STAND_IN_OUTPUT!r}


        class Loader(AzCommandsLoader):
            def __init__(self, cli_ctx=None):
                super().__init__(cli_ctx=cli_ctx,
                                 custom_command_type=CliCommandType(operations_tmpl='azext_bastion#{{}}'))

            def load_command_table(self, args):
                with self.command_group('network bastion') as g:
                    for name in {STAND_IN_COMMANDS!r}:
                        g.custom_command(name, 'ran')
                return self.command_table

            def load_arguments(self, command):
                # the argument scopes of src/bastion/azext_bastion/_params.py
                with self.argument_context('network bastion') as c:
                    c.argument('bastion_host_name', options_list=['--name', '-n'])
                    c.argument('resource_port', options_list=['--resource-port'])
                    c.argument('target_resource_id', options_list=['--target-resource-id'])
                with self.argument_context('network bastion ssh') as c:
                    c.argument('auth_type', options_list=['--auth-type'])
                    c.argument('ssh_key', help={THEIRS_IN_A_SHARED_SCOPE!r})
                # a scope theirs has and ours does not (their real _params.py has none such)
                with self.argument_context('network') as c:
                    c.argument('resource_group_name', help={THEIRS_IN_A_SCOPE_OF_THEIR_OWN!r})


        COMMAND_LOADER_CLS = Loader
    '''))
    info = root / 'bastion-1.1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: bastion\nVersion: 1.1.0\n')
    return root


@pytest.fixture(scope='module')
def beside(emulator, tmp_path_factory):
    """`az` logged in to the emulator with the stand-in installed and ours as the dev extension the suite uses."""
    extension_dir = tmp_path_factory.mktemp('extensions')
    path = _install_stand_in(extension_dir)
    env = az_environment(emulator, tmp_path_factory.mktemp('config'),
                         base_env=dict(os.environ, AZURE_EXTENSION_DIR=str(extension_dir)))
    return AzCli(env), path


def test_warning_once_on_stderr_and_clean_json_on_stdout(beside):
    az, path = beside
    assert 'bastion' in az('extension', 'list', '--query', '[].name').json     # azure-cli sees the stand-in
    result = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json')
    assert result.json['name'] == 'demo-bastion'             # ours ran, and stdout is only its JSON
    assert STAND_IN_OUTPUT not in result.stdout
    assert result.stderr.count("Microsoft's 'bastion' extension is installed") == 1, result.stderr
    assert str(path) in result.stderr and 'az extension remove -n bastion' in result.stderr
    for command in STAND_IN_COMMANDS:
        assert command in result.stderr


def test_our_options_survive_their_argument_scopes(beside):
    az, _ = beside
    helptext = az('network', 'bastion', 'ssh', '-h').stdout
    assert '--ssh-key' in helptext and '--auth-type' in helptext and 'ssh-key' in helptext
    assert '--session-recording' in az('network', 'bastion', 'update', '-h').stdout


def test_what_becomes_of_their_argument_definitions(beside):
    """Each loader's argument registrations are applied to that loader's own command objects (azure-cli-core
    __init__.py load_arguments, then _update_command_definitions per loader): theirs reach none of ours, neither in a
    scope both define (network bastion ssh) nor in one only theirs defines (network)."""
    az, _ = beside
    ssh_help = az('network', 'bastion', 'ssh', '-h').stdout
    assert THEIRS_IN_A_SHARED_SCOPE not in ssh_help and '--ssh-key' in ssh_help
    show_help = az('network', 'bastion', 'show', '-h').stdout
    assert THEIRS_IN_A_SCOPE_OF_THEIR_OWN not in ' '.join(show_help.split()), show_help
    assert '--resource-group -g' in show_help


def test_doctor_row_fails_with_the_fix(beside):
    az, path = beside
    result = az('network', 'bastion', 'doctor', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json', check=False)
    rows = {row['check']: row for row in json.loads(result.stdout)}
    row = rows['Other bastion extension']
    assert row['status'] == 'fail' and row['fix'] == 'az extension remove -n bastion'
    assert str(path) in row['detail']
    assert result.returncode == 3


def test_no_warning_and_no_row_without_it(az):
    result = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion')
    assert "'bastion' extension" not in result.stderr
    rows = az('network', 'bastion', 'doctor', '-g', 'demo-rg', '-n', 'demo-bastion', check=False).json
    assert 'Other bastion extension' not in [row['check'] for row in rows]


@pytest.mark.parametrize('flags', [['--disable-gateway', 'true'], ['--enable-mfa', 'false'], ['--disable-gateway']])
def test_rdp_takes_their_three_state_flags(az, emulator, flags):
    """Their rdp takes --disable-gateway/--enable-mfa with or without true/false: scripts written for it parse."""
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    result = az('network', 'bastion', 'rdp', '-g', 'demo-rg', '-n', 'demo-bastion', '--target-resource-id', vm_id,
                *flags, check=False, timeout=60)
    assert 'unrecognized arguments' not in result.stderr and 'Traceback' not in result.stderr, result.stderr
