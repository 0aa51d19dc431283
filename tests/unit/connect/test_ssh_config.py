"""connect/ssh_config.py, the command: its refusals before any network call, what it prints (the block, or with -o a
structured result) and the hint it gives."""
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import (ArgumentUsageError, FileOperationError, InvalidArgumentValueError,
                                       ValidationError)

from azext_bastion_native.clients.ssh import host_key_alias
from azext_bastion_native.connect import resolve, ssh_config, ssh_config_text as text_format
from tests.unit.boundary import raises_as
from tests.unit.connect.real_ssh import PROXY, VM_ID


def test_default_alias_is_the_vm_name():
    assert ssh_config.default_alias(VM_ID) == 'vm1'
    vmss = '/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/' \
           'virtualMachines/3'
    assert ssh_config.default_alias(vmss) == 'web_3'


class _Cmd:
    cli_ctx = SimpleNamespace(cloud=SimpleNamespace(name='AzureCloud', suffixes=SimpleNamespace()))


def _run(**options):
    arguments = {'target_resource_id': VM_ID}
    arguments.update(options)
    ssh_config.ssh_config_command(_Cmd(), 'rg', 'bh', **arguments)


def test_cloud_shell_refused(offline, monkeypatch):
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    with raises_as(ValidationError, match='Cloud Shell'):
        _run()


def test_key_vault_key_refused(offline):
    with raises_as(InvalidArgumentValueError, match='Key Vault'):
        _run(ssh_key='https://v.vault.azure.net/secrets/k')


def test_existing_block_refused_before_network(offline, tmp_path):
    config = tmp_path / 'config'
    config.write_text(text_format.render_block('vm1', PROXY))
    with raises_as(ArgumentUsageError, match='already has a Bastion block'):
        _run(config_file=str(config))


def test_bad_alias_and_directory_as_file_refused(offline, tmp_path):
    with raises_as(InvalidArgumentValueError, match='host name'):
        _run(host_alias='a b')
    with raises_as(InvalidArgumentValueError, match='directory'):
        _run(config_file=str(tmp_path))


def test_undecodable_config_is_a_file_error(offline, tmp_path):
    config = tmp_path / 'config'
    config.write_bytes(b'\xff\xfe\x00garbage')
    with raises_as(FileOperationError):
        _run(config_file=str(config))


def test_block_uses_the_vms_admin_user_and_the_ssh_commands_host_key_name(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    destination = resolve.Destination(endpoint=None, target=None, target_label=VM_ID, get_arm_token=lambda: '',
                                      target_os='linux', admin_username='vmadmin')
    monkeypatch.setattr(resolve, 'resolve_destination', lambda *_: destination)
    _run()
    out = capsys.readouterr().out
    assert '    User vmadmin\n' in out
    assert f'    HostKeyAlias {host_key_alias(VM_ID)}\n' in out
    _run(username='other', config_file=str(tmp_path / 'config'))
    assert capsys.readouterr().out == ''
    assert '    User other\n' in (tmp_path / 'config').read_text()


def _destination(monkeypatch):
    destination = resolve.Destination(endpoint=None, target=None, target_label=VM_ID, get_arm_token=lambda: '',
                                      target_os='linux', admin_username='vmadmin')
    monkeypatch.setattr(resolve, 'resolve_destination', lambda *_: destination)


@pytest.mark.parametrize('output', ['json', 'none', 'yaml', 'tsv'])
def test_with_an_output_format_the_raw_block_is_not_printed(monkeypatch, capsys, output):
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    _destination(monkeypatch)
    cmd = SimpleNamespace(cli_ctx=SimpleNamespace(cloud=_Cmd.cli_ctx.cloud, data={'safe_params': ['-g', '-o']}))
    result = ssh_config.ssh_config_command(cmd, 'rg', 'bh', target_resource_id=VM_ID)
    assert capsys.readouterr().out == ''
    assert set(result) == {'blocks', 'skipped'} and result['skipped'] == []
    assert result['blocks']['vm1'].startswith(text_format.start_marker('vm1'))


def test_a_file_ssh_does_not_read_by_itself_is_named_in_the_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    _destination(monkeypatch)
    odd = tmp_path / 'my configs' / 'bastion'
    _run(config_file=str(odd))
    assert f"Connect with: ssh -F '{odd}' vm1\n" in capsys.readouterr().err
    default = tmp_path / '.ssh' / 'config'
    _run(config_file=str(default))
    assert 'Connect with: ssh vm1\n' in capsys.readouterr().err


def test_one_vm_keeps_the_alias_its_block_already_has(monkeypatch, tmp_path, capsys):
    """As --vm-resource-group/--all do: a VM whose block is in the file (here written as web-1-rg) keeps its alias."""
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    _destination(monkeypatch)
    config = tmp_path / 'config'
    config.write_text(text_format.render_block('vm1-rg', PROXY, host_key_alias=host_key_alias(VM_ID)))
    _run(config_file=str(config), overwrite=True)
    assert "Replaced the Bastion block for 'vm1-rg'" in capsys.readouterr().err
    assert 'Host vm1\n' not in config.read_text()
