"""commands.py: each command is its module's function, its signature written once (no pass-through layer), and no
test seam of a command function becomes an az option."""
import json
import subprocess
import sys

PROBE = '''
import json
from azure.cli.core import get_default_cli
import azext_bastion_native
cli = get_default_cli()
loader = azext_bastion_native.COMMAND_LOADER_CLS(cli_ctx=cli)
cli.invocation = type('Inv', (), {'data': {'command_string': ''}})()
table = loader.load_command_table(None)
found = {}
for name, command in table.items():
    cli.invocation.data['command_string'] = name
    loader.command_name = name
    command.load_arguments()
    loader.load_arguments(name)
    operation = command.command_kwargs.get('command_operation')
    found[name] = [getattr(operation, 'op_path', None), sorted(command.arguments)]
print(json.dumps(found))
'''


def _table():
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_every_command_is_its_modules_function():
    table = _table()
    expected = {
        'network bastion tunnel': 'azext_bastion_native.connect.tunnel#tunnel_command',
        'network bastion proxy': 'azext_bastion_native.connect.tunnel#proxy_command',
        'network bastion forward': 'azext_bastion_native.connect.forward#forward_command',
        'network bastion ssh': 'azext_bastion_native.connect.ssh#ssh_command',
        'network bastion rdp': 'azext_bastion_native.connect.rdp#rdp_command',
        'network bastion doctor': 'azext_bastion_native.doctor.run#doctor_command',
        'network bastion ssh-config': 'azext_bastion_native.connect.ssh_config#ssh_config_command',
        'network bastion agent start': 'azext_bastion_native.agent.commands#agent_start',
        'network bastion file upload': 'azext_bastion_native.connect.file#file_transfer_command',
        'network bastion file download': 'azext_bastion_native.connect.file#file_transfer_command',
        'network bastion create': 'azext_bastion_native.management.hosts#bastion_create',
        'network bastion list': 'azext_bastion_native.management.hosts#bastion_list',
        'network bastion delete': 'azext_bastion_native.management.hosts#bastion_delete',
        'network bastion native-client enable': 'azext_bastion_native.management.native_client#native_client_enable',
        'network bastion session list': 'azext_bastion_native.management.sessions#session_list',
        'network bastion nsg apply': 'azext_bastion_native.management.nsg#nsg_apply',
    }
    assert {name: table[name][0] for name in expected} == expected


def test_no_command_takes_the_test_seam_environment_as_an_option():
    """ssh, rdp and file take `environment` for unit tests; azure-cli would offer it as --environment."""
    table = _table()
    assert 'environment' not in table['network bastion ssh'][1]
    assert [name for name, (_, arguments) in table.items() if 'environment' in arguments] == []
    assert {'auth_type', 'ssh_args', 'target_resource_id'} <= set(table['network bastion ssh'][1])
