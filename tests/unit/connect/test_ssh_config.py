"""connect/ssh_config.py: the Host block (as the real ssh parses it), exact replacement between markers, safe writes,
and the command's refusals before any network call."""
import os
import shlex
import shutil
import stat
import subprocess
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import (ArgumentUsageError, FileOperationError, InvalidArgumentValueError,
                                       ValidationError)

from azext_bastion_native.errors import Kind
from azext_bastion_native.connect import session, ssh_config
from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.clients.ssh import host_key_alias

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'
PROXY = ['/opt/az/bin/az', 'network', 'bastion', 'proxy', '-g', 'rg', '-n', 'bh', '--target-resource-id', VM_ID,
         '--resource-port', '22']


def _ssh_resolves(config_path, alias):
    """`ssh -G`: the options the real OpenSSH client takes from this config for ``alias`` (no connection)."""
    out = subprocess.run(['ssh', '-G', '-F', str(config_path), alias], capture_output=True, text=True, check=True,
                         timeout=10).stdout
    options = {}
    for line in out.splitlines():
        key, _, value = line.partition(' ')
        options.setdefault(key, []).append(value)
    return options


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_real_ssh_reads_every_option_of_the_block(tmp_path):
    key = tmp_path / 'my keys' / 'id 50%'          # a space and a % sign: quoted and escaped
    proxy = ['/opt/my az/bin/az', *PROXY[1:]]
    block = ssh_config.render_block('web1', proxy, username='azureuser', key_path=str(key),
                                    host_key_alias=host_key_alias(VM_ID), os_name='posix')
    config = tmp_path / 'config'
    config.write_text(block)
    options = _ssh_resolves(config, 'web1')
    assert options['proxycommand'] == ["'/opt/my az/bin/az' network bastion proxy -g rg -n bh --target-resource-id "
                                       f"{VM_ID} --resource-port 22"]
    assert options['user'] == ['azureuser']
    assert options['identityfile'] == [str(key).replace('%', '%%')]     # -G shows it before token expansion
    loaded = subprocess.run(['ssh', '-v', '-F', str(config), '-o', 'ProxyCommand=false', '-o', 'BatchMode=yes',
                             'web1', 'true'], capture_output=True, text=True, timeout=10, check=False).stderr
    assert f'identity file {key} type' in loaded                        # what ssh really opens
    assert options['identitiesonly'] == ['yes']
    assert options['hostkeyalias'] == [host_key_alias(VM_ID)]
    assert options['stricthostkeychecking'] == ['accept-new']
    # Another name does not pick the block up.
    assert 'proxycommand' not in _ssh_resolves(config, 'web2')


def test_block_is_delimited_and_optional_lines_are_left_out():
    block = ssh_config.render_block('vm1', PROXY, os_name='posix')
    lines = block.splitlines()
    assert lines[0] == '# >>> bastion-native vm1 >>>' and lines[-1] == '# <<< bastion-native vm1 <<<'
    assert block.endswith('\n')
    assert not any(word in block for word in ('User ', 'IdentityFile', 'IdentitiesOnly', 'HostKeyAlias'))


def test_windows_proxy_command_and_key_path():
    block = ssh_config.render_block('vm1', ['C:\\Program Files\\az.cmd', 'network'], key_path='C:\\Users\\me\\key',
                                    os_name='nt')
    assert 'ProxyCommand "C:\\Program Files\\az.cmd" network' in block
    assert 'IdentityFile C:/Users/me/key' in block


@pytest.mark.parametrize('alias', ['', 'two words', 'web*', '!web', 'a,b', '#x', '-F'])
def test_alias_that_is_not_one_literal_host_name_is_refused(alias):
    with pytest.raises(ssh_config.SshConfigError) as refused:
        ssh_config.check_alias(alias)
    assert refused.value.kind is Kind.INVALID_ARGUMENT


def test_default_alias_is_the_vm_name():
    assert ssh_config.default_alias(VM_ID) == 'vm1'
    vmss = '/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/' \
           'virtualMachines/3'
    assert ssh_config.default_alias(vmss) == 'web_3'


def test_az_argv_prefers_the_az_beside_this_interpreter(tmp_path):
    (tmp_path / 'bin').mkdir()
    python = tmp_path / 'bin' / 'python'
    az = tmp_path / 'bin' / 'az'
    az.write_text('#!/bin/sh\n')
    assert ssh_config.az_argv(str(python), 'posix', which=lambda _: '/usr/bin/az') == [str(az)]
    az.unlink()
    assert ssh_config.az_argv(str(python), 'posix', which=lambda _: '/usr/bin/az') == ['/usr/bin/az']
    assert ssh_config.az_argv(str(python), 'posix', which=lambda _: None) == [str(python), '-m', 'azure.cli']


# -- merging into an existing config ----------------------------------------------------------------------
USER_TEXT = 'Host other\n    ServerAliveInterval 30\n'


def test_appended_after_the_users_lines_that_do_not_match_it():
    block = ssh_config.render_block('vm1', PROXY)
    merged, replaced = ssh_config.merge_block(USER_TEXT.rstrip('\n'), 'vm1', block)
    assert not replaced
    assert merged == USER_TEXT + '\n' + block


@pytest.mark.parametrize('section', ['Host *', 'Host v* !web', 'host=VM1', 'Match all', 'Host a,vm?'])
def test_placed_before_the_first_section_ssh_would_read_first(section):
    head = 'ServerAliveInterval 5\nHost other\n    Port 2200\n'
    tail = f'{section}\n    User someone\n    StrictHostKeyChecking yes\n'
    block = ssh_config.render_block('vm1', PROXY, username='me')
    merged, _ = ssh_config.merge_block(head + tail, 'vm1', block)
    assert merged == head + block + '\n' + tail


def test_negated_pattern_does_not_shadow():
    text = 'Host * !vm1\n    User someone\n'
    merged, _ = ssh_config.merge_block(text, 'vm1', ssh_config.render_block('vm1', PROXY))
    assert merged.startswith(text)


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_users_host_star_no_longer_wins_over_the_block(tmp_path):
    config = tmp_path / 'config'
    config.write_text('Host *\n    User someone\n    StrictHostKeyChecking yes\n')
    ssh_config.write_block(str(config), 'vm1', ssh_config.render_block('vm1', PROXY, username='me'))
    options = _ssh_resolves(config, 'vm1')
    assert options['user'] == ['me'] and options['stricthostkeychecking'] == ['accept-new']
    assert _ssh_resolves(config, 'elsewhere')['user'] == ['someone']


def test_replaced_block_that_an_older_version_appended_after_host_star_moves_before_it():
    old = ssh_config.render_block('vm1', PROXY, username='alice')
    text = 'Host *\n    User someone\n\n' + old
    new = ssh_config.render_block('vm1', PROXY, username='bob')
    merged, replaced = ssh_config.merge_block(text, 'vm1', new, overwrite=True)
    assert replaced and merged == new + '\nHost *\n    User someone\n\n'


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
@pytest.mark.parametrize('username, key_name',
                         [("o'brien", 'id'), ('me', "bob's_key"), ('me', 'a #b'), ("d'arcy", "it's 50%")])
def test_apostrophes_and_hashes_are_quoted_so_ssh_reads_them_back(tmp_path, username, key_name):
    key = tmp_path / key_name
    proxy = [f"/home/{username}/bin/az", *PROXY[1:]]
    config = tmp_path / 'config'
    config.write_text('Host *\n    Port 22\n')
    block = ssh_config.render_block('vm1', proxy, username=username, key_path=str(key), os_name='posix')
    ssh_config.write_block(str(config), 'vm1', block)
    options = _ssh_resolves(config, 'vm1')
    assert options['user'] == [username]
    assert options['identityfile'] == [str(key).replace('%', '%%')]
    assert options['proxycommand'][0].startswith(shlex.quote(proxy[0]) + ' network bastion proxy ')
    assert _ssh_resolves(config, 'other')['port'] == ['22']         # the rest of the file still reads


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_a_block_ssh_cannot_read_is_never_written(tmp_path, monkeypatch):
    config = tmp_path / 'config'
    config.write_text('Host x\n    Port 22\n')
    before = config.read_text()
    monkeypatch.setattr(ssh_config, 'config_value', lambda value, _what: value)     # the old, unquoted way
    block = ssh_config.render_block('vm1', PROXY, username="o'brien", os_name='posix')
    with pytest.raises(ssh_config.SshConfigError, match='ssh cannot read') as refused:
        ssh_config.write_block(str(config), 'vm1', block)
    assert refused.value.kind is Kind.DAMAGED
    assert config.read_text() == before and os.listdir(tmp_path) == ['config']


def test_windows_az_is_never_taken_from_the_current_directory():
    files = {'C:\\work\\repo\\az.bat', 'C:\\Program Files\\Azure CLI\\wbin\\az.cmd'}
    environ = {'PATH': '.;;repo;C:\\Program Files\\Azure CLI\\wbin', 'PATHEXT': '.COM;.EXE;.BAT;.CMD'}
    found = find_program('az', 'nt', environ, isfile=files.__contains__)
    assert found == 'C:\\Program Files\\Azure CLI\\wbin\\az.cmd'
    assert find_program('az', 'nt', {'PATH': '.;repo'}, isfile=lambda _: True) is None


def test_subscription_goes_into_the_proxy_command_when_given():
    assert ssh_config.proxy_argv(['az'], 'rg', 'bh', VM_ID, 22, subscription='S2')[-2:] == ['--subscription', 'S2']
    assert '--subscription' not in ssh_config.proxy_argv(['az'], 'rg', 'bh', VM_ID, 22)


def test_existing_block_refused_without_overwrite_and_replaced_exactly_with_it():
    old = ssh_config.render_block('vm1', PROXY, username='alice')
    other = ssh_config.render_block('vm2', PROXY, username='alice')
    text = USER_TEXT + '\n' + old + '\n' + other + 'Host tail\n    Port 2222\n'
    with pytest.raises(ssh_config.SshConfigError) as refused:
        ssh_config.merge_block(text, 'vm1', ssh_config.render_block('vm1', PROXY, username='bob'))
    assert refused.value.kind is Kind.EXISTS and '--overwrite' in refused.value.recommendation
    new = ssh_config.render_block('vm1', PROXY, username='bob')
    merged, replaced = ssh_config.merge_block(text, 'vm1', new, overwrite=True)
    assert replaced
    assert merged == USER_TEXT + '\n' + new + '\n' + other + 'Host tail\n    Port 2222\n'


def test_crlf_file_keeps_its_line_endings():
    old = ssh_config.render_block('vm1', PROXY).replace('\n', '\r\n')
    text = 'Host a\r\n' + old + 'Host b\r\n'
    merged, _ = ssh_config.merge_block(text, 'vm1', ssh_config.render_block('vm1', PROXY, username='u'), True)
    assert merged.startswith('Host a\r\n') and merged.endswith('Host b\r\n')
    assert '\n' not in merged.replace('\r\n', '')


@pytest.mark.parametrize('damage', ['end', 'twice'])
def test_damaged_markers_are_refused_not_guessed(damage):
    block = ssh_config.render_block('vm1', PROXY)
    text = block.replace(ssh_config.end_marker('vm1'), '') if damage == 'end' else block + block
    with pytest.raises(ssh_config.SshConfigError) as refused:
        ssh_config.merge_block(text, 'vm1', block, overwrite=True)
    assert refused.value.kind is Kind.DAMAGED


def test_users_own_host_line_for_the_alias_is_found():
    text = 'Host vm1 other\n  User me\n' + ssh_config.render_block('vm1', PROXY) + 'Host vm10\n'
    assert ssh_config.unmarked_host_lines(text, 'vm1') == [1]


# -- writing the file --------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_new_file_and_directory_are_private(tmp_path):
    previous = os.umask(0o022)      # as most users have: makedirs/mkstemp alone would not give 0700/0600
    try:
        path, replaced = ssh_config.write_block(str(tmp_path / 'new' / 'config'), 'vm1',
                                                ssh_config.render_block('vm1', PROXY))
    finally:
        os.umask(previous)
    assert not replaced
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


@pytest.mark.skipif(os.name == 'nt', reason='symlinks and modes')
def test_symlinked_config_is_updated_where_it_points_and_keeps_its_mode(tmp_path):
    real = tmp_path / 'dotfiles' / 'ssh_config'
    real.parent.mkdir()
    real.write_text(USER_TEXT)
    real.chmod(0o644)
    link = tmp_path / 'config'
    link.symlink_to(real)
    ssh_config.write_block(str(link), 'vm1', ssh_config.render_block('vm1', PROXY))
    assert link.is_symlink()
    assert real.read_text().startswith(USER_TEXT) and 'Host vm1' in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert sorted(os.listdir(real.parent)) == ['ssh_config']        # no temp file left behind


def test_failed_write_leaves_the_file_and_no_temp_file(tmp_path, monkeypatch):
    config = tmp_path / 'config'
    config.write_text(USER_TEXT)

    def fail(*_):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError):
        ssh_config.write_block(str(config), 'vm1', ssh_config.render_block('vm1', PROXY))
    assert config.read_text() == USER_TEXT
    assert os.listdir(tmp_path) == ['config']


# -- the command -------------------------------------------------------------------------------------------
class _Cmd:
    cli_ctx = SimpleNamespace(cloud=SimpleNamespace(name='AzureCloud', suffixes=SimpleNamespace()))


def _run(**options):
    arguments = {'target_resource_id': VM_ID}
    arguments.update(options)
    ssh_config.ssh_config_command(_Cmd(), 'rg', 'bh', **arguments)


def test_cloud_shell_refused(offline, monkeypatch):
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    with pytest.raises(ValidationError, match='Cloud Shell'):
        _run()


def test_key_vault_key_refused(offline):
    with pytest.raises(InvalidArgumentValueError, match='Key Vault'):
        _run(ssh_key='https://v.vault.azure.net/secrets/k')


def test_existing_block_refused_before_network(offline, tmp_path):
    config = tmp_path / 'config'
    config.write_text(ssh_config.render_block('vm1', PROXY))
    with pytest.raises(ArgumentUsageError, match='already has a Bastion block'):
        _run(config_file=str(config))


def test_bad_alias_and_directory_as_file_refused(offline, tmp_path):
    with pytest.raises(InvalidArgumentValueError, match='host name'):
        _run(host_alias='a b')
    with pytest.raises(InvalidArgumentValueError, match='directory'):
        _run(config_file=str(tmp_path))


def test_undecodable_config_is_a_file_error(offline, tmp_path):
    config = tmp_path / 'config'
    config.write_bytes(b'\xff\xfe\x00garbage')
    with pytest.raises(FileOperationError):
        _run(config_file=str(config))


def test_block_uses_the_vms_admin_user_and_the_ssh_commands_host_key_name(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    destination = session.Destination(endpoint=None, target=None, target_label=VM_ID, get_arm_token=lambda: '',
                                      target_os='linux', admin_username='vmadmin')
    monkeypatch.setattr(session, 'resolve_destination', lambda *_: destination)
    _run()
    out = capsys.readouterr().out
    assert '    User vmadmin\n' in out
    assert f'    HostKeyAlias {host_key_alias(VM_ID)}\n' in out
    _run(username='other', config_file=str(tmp_path / 'config'))
    assert capsys.readouterr().out == ''
    assert '    User other\n' in (tmp_path / 'config').read_text()


def test_proxy_command_is_the_agent_helper_on_posix_and_az_proxy_on_windows_or_when_asked(monkeypatch):
    monkeypatch.setattr(ssh_config, 'az_argv', lambda: ['/opt/az/bin/az'])
    helper = ssh_config.proxy_command_argv('rg', 'bh', VM_ID, 22, 'S2', os_name='posix')
    assert helper[1:4] == ['-I', '-S', ssh_config.HELPER_SCRIPT] and os.path.isfile(helper[3])
    assert helper[4:] == ['rg', 'bh', VM_ID, '22', 'S2', '/opt/az/bin/az']
    assert ssh_config.proxy_command_argv('rg', 'bh', VM_ID, 22, None, os_name='nt')[1:4] == \
        ['network', 'bastion', 'proxy']
    assert ssh_config.proxy_command_argv('rg', 'bh', VM_ID, 22, None, no_agent=True, os_name='posix')[1:4] == \
        ['network', 'bastion', 'proxy']
