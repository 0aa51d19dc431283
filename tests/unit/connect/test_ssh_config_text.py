"""connect/ssh_config_text.py: the Host block (as the real ssh parses it), where it goes in a user's config (before
every line ssh would read first, top-level lines and Includes too), exact replacement between markers, and no value
with a control character."""
import shutil
import subprocess

import pytest

from azext_bastion_native.clients.ssh import host_key_alias
from azext_bastion_native.connect import ssh_config_text as text_format
from azext_bastion_native.errors import Kind
from tests.unit.connect.real_ssh import PROXY, VM_ID, ssh_resolves as _ssh_resolves


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_real_ssh_reads_every_option_of_the_block(tmp_path):
    key = tmp_path / 'my keys' / 'id 50%'          # a space and a % sign: quoted and escaped
    proxy = ['/opt/my az/bin/az', *PROXY[1:]]
    block = text_format.render_block('web1', proxy, username='azureuser', key_path=str(key),
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
    block = text_format.render_block('vm1', PROXY, os_name='posix')
    lines = block.splitlines()
    assert lines[0] == text_format.start_marker('vm1') and lines[-1] == text_format.end_marker('vm1')
    assert block.endswith('\n')
    assert not any(word in block for word in ('User ', 'IdentityFile', 'IdentitiesOnly', 'HostKeyAlias'))


def test_windows_proxy_command_and_key_path():
    block = text_format.render_block('vm1', ['C:\\Program Files\\az.cmd', 'network'], key_path='C:\\Users\\me\\key',
                                     os_name='nt')
    assert 'ProxyCommand "C:\\Program Files\\az.cmd" network' in block
    assert 'IdentityFile C:/Users/me/key' in block


@pytest.mark.parametrize('alias', ['', 'two words', 'web*', '!web', 'a,b', '#x', '-F'])
def test_alias_that_is_not_one_literal_host_name_is_refused(alias):
    with pytest.raises(text_format.SshConfigError) as refused:
        text_format.check_alias(alias)
    assert refused.value.kind is Kind.INVALID_ARGUMENT


USER_TEXT = 'Host other\n    ServerAliveInterval 30\n'


def test_appended_after_the_users_lines_that_do_not_match_it():
    block = text_format.render_block('vm1', PROXY)
    merged, replaced = text_format.merge_block(USER_TEXT.rstrip('\n'), 'vm1', block)
    assert not replaced
    assert merged == USER_TEXT + '\n' + block


@pytest.mark.parametrize('section', ['Host *', 'Host v* !web', 'host=VM1', 'Match all', 'Host a,vm?'])
def test_placed_before_the_first_section_ssh_would_read_first(section):
    head = 'ServerAliveInterval 5\nHost other\n    Port 2200\n'
    tail = f'{section}\n    User someone\n    StrictHostKeyChecking yes\n'
    block = text_format.render_block('vm1', PROXY, username='me')
    merged, _ = text_format.merge_block(head + tail, 'vm1', block)
    assert merged == head + block + '\n' + tail


def test_negated_pattern_does_not_shadow():
    text = 'Host * !vm1\n    User someone\n'
    merged, _ = text_format.merge_block(text, 'vm1', text_format.render_block('vm1', PROXY))
    assert merged.startswith(text)


def test_replaced_block_that_an_older_version_appended_after_host_star_moves_before_it():
    old = text_format.render_block('vm1', PROXY, username='alice')
    text = 'Host *\n    User someone\n\n' + old
    new = text_format.render_block('vm1', PROXY, username='bob')
    merged, replaced = text_format.merge_block(text, 'vm1', new, overwrite=True)
    assert replaced and merged == new + '\nHost *\n    User someone\n\n'


def test_existing_block_refused_without_overwrite_and_replaced_exactly_with_it():
    old = text_format.render_block('vm1', PROXY, username='alice')
    other = text_format.render_block('vm2', PROXY, username='alice')
    text = USER_TEXT + '\n' + old + '\n' + other + 'Host tail\n    Port 2222\n'
    with pytest.raises(text_format.SshConfigError) as refused:
        text_format.merge_block(text, 'vm1', text_format.render_block('vm1', PROXY, username='bob'))
    assert refused.value.kind is Kind.EXISTS and '--overwrite' in refused.value.recommendation
    new = text_format.render_block('vm1', PROXY, username='bob')
    merged, replaced = text_format.merge_block(text, 'vm1', new, overwrite=True)
    assert replaced
    assert merged == USER_TEXT + '\n' + new + '\n' + other + 'Host tail\n    Port 2222\n'


def test_crlf_file_keeps_its_line_endings():
    old = text_format.render_block('vm1', PROXY).replace('\n', '\r\n')
    text = 'Host a\r\n' + old + 'Host b\r\n'
    merged, _ = text_format.merge_block(text, 'vm1', text_format.render_block('vm1', PROXY, username='u'), True)
    assert merged.startswith('Host a\r\n') and merged.endswith('Host b\r\n')
    assert '\n' not in merged.replace('\r\n', '')


@pytest.mark.parametrize('damage', ['end', 'twice'])
def test_damaged_markers_are_refused_not_guessed(damage):
    block = text_format.render_block('vm1', PROXY)
    text = block.replace(text_format.end_marker('vm1'), '') if damage == 'end' else block + block
    with pytest.raises(text_format.SshConfigError) as refused:
        text_format.merge_block(text, 'vm1', block, overwrite=True)
    assert refused.value.kind is Kind.DAMAGED


def test_users_own_host_line_for_the_alias_is_found():
    text = 'Host vm1 other\n  User me\n' + text_format.render_block('vm1', PROXY) + 'Host vm10\n'
    assert text_format.unmarked_host_lines(text, 'vm1') == [1]


# -- the user's own top-level lines and Includes (ssh takes the first value it finds) -----------------------
@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
@pytest.mark.parametrize('top_level', ['User topuser', 'ProxyCommand none', 'ProxyJump corp-jump.example',
                                       'Include {corp}', 'IdentityFile /home/me/.ssh/corp_key\nPort 2200'])
def test_block_goes_before_top_level_lines_and_includes_that_would_win(tmp_path, top_level):
    corp = tmp_path / 'corp.conf'
    corp.write_text('Host *\n    ProxyJump corp-jump.example\n    User corpuser\n')
    users = f'# my settings\nServerAliveInterval 15\n{top_level.format(corp=corp)}\nForwardAgent no\n\n' \
            'Host other\n    Port 2222\n'
    key = str(tmp_path / 'id_vm')
    block = text_format.render_block('vm1', PROXY, username='azureuser', key_path=key,
                                     host_key_alias=host_key_alias(VM_ID), os_name='posix')
    merged, _ = text_format.merge_block(users, 'vm1', block)
    config = tmp_path / 'config'
    config.write_text(merged)
    resolved = _ssh_resolves(config, 'vm1')
    assert text_format.differences(block, resolved) == []
    assert resolved['user'] == ['azureuser'] and 'proxyjump' not in resolved and resolved['port'] == ['22']
    assert resolved['identityfile'][0] == key
    assert merged.index('Host vm1') < merged.index(top_level.format(corp=corp).splitlines()[0])
    # The user's top-level lines still apply to every other host, as they did before the block came.
    assert _ssh_resolves(config, 'elsewhere') == _ssh_resolves_text(tmp_path, users, 'elsewhere')
    # Taken out again (--prune), the file reads as the user's own: the `Host *` left with the block.
    pruned, _ = text_format.merge_blocks(merged, {}, remove=['vm1'])
    assert text_format.REOPEN_LINE not in pruned.replace('Host other', '')


def _ssh_resolves_text(tmp_path, text, alias):
    path = tmp_path / 'users-own'
    path.write_text(text)
    return _ssh_resolves(path, alias)


def test_top_level_lines_that_set_nothing_of_the_blocks_keep_it_at_the_end():
    users = 'ServerAliveInterval 15\nForwardAgent no\n\nHost other\n    Port 2222\n'
    block = text_format.render_block('vm1', PROXY)
    merged, _ = text_format.merge_block(users, 'vm1', block)
    assert merged == users + '\n' + block and text_format.REOPEN_LINE not in merged


def test_differences_name_every_option_ssh_would_take_from_elsewhere():
    block = text_format.render_block('vm1', PROXY, username='azureuser', key_path='/k', host_key_alias='bastion.x',
                                     os_name='posix')
    said = text_format.block_options(block)
    resolved = {'proxycommand': [said['proxycommand']], 'user': ['topuser'], 'hostname': ['VM1'], 'port': ['22'],
                'identityfile': ['~/.ssh/id_rsa', '/k'], 'hostkeyalias': ['bastion.x'],
                'proxyjump': ['corp-jump.example']}
    assert text_format.differences(block, resolved) == [
        ('user', 'topuser', 'azureuser'), ('identityfile', '~/.ssh/id_rsa', '/k'),
        ('proxyjump', 'corp-jump.example', None)]


# -- nothing from ARM becomes ssh options --------------------------------------------------------------------
HOSTILE = 'q\\\'"\nHost *\n    ProxyCommand touch X\n#'


@pytest.mark.parametrize('where', ['username', 'key_path', 'proxy', 'comment', 'tag', 'host_key_alias'])
@pytest.mark.parametrize('control', ['\n', '\r', '\x00', '\x1b[2J', '\x7f', '\t'])
def test_a_control_character_in_any_value_is_refused_and_never_echoed(where, control):
    value = f'web{control}1' if where != 'proxy' else [*PROXY[:-1], f'22{control}']
    arguments = {'username': 'me', 'key_path': '/k', 'host_key_alias': 'bastion.x', 'comment': 'c', 'tag': 't',
                 'proxy': PROXY}
    arguments[where] = value
    proxy = arguments.pop('proxy')
    with pytest.raises(text_format.SshConfigError) as refused:
        text_format.render_block('vm1', proxy, os_name='posix', **arguments)
    assert refused.value.kind is Kind.INVALID_ARGUMENT
    assert control not in refused.value.message and '\\x' in refused.value.message


def test_the_reported_hostile_name_cannot_reach_a_block():
    with pytest.raises(text_format.SshConfigError):
        text_format.render_block('vm1', [*PROXY[:-2], HOSTILE, '22'], os_name='posix')
    with pytest.raises(text_format.SshConfigError):
        text_format.render_block('vm1', PROXY, comment=f'Written for {HOSTILE}')


def test_the_finished_text_is_checked_as_a_whole():
    assert text_format.check_finished_text('a\nb\n') == 'a\nb\n'
    for text in ('a\rb\n', 'a\x00\n', 'a\x1b\n'):
        with pytest.raises(text_format.SshConfigError, match='control character'):
            text_format.check_finished_text(text)


def test_a_damaged_block_of_another_alias_does_not_stop_a_merge():
    damaged = text_format.render_block('old', PROXY).replace(text_format.end_marker('old'), '')
    block = text_format.render_block('vm1', PROXY)
    merged, _ = text_format.merge_block('ServerAliveInterval 5\n' + damaged, 'vm1', block)
    assert merged.startswith('ServerAliveInterval 5\n' + damaged) and 'Host vm1\n' in merged


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_an_entra_block_names_the_certificate_and_runs_its_refresh_for_its_alias_only(tmp_path):
    ran = tmp_path / 'ran-100%'                     # a %: doubled for ssh; the words quoted for the shell
    refresh = ['/bin/sh', '-c', 'echo $0 >> $1', 'refreshed', str(ran)]
    certificate = tmp_path / 'keys' / 'id_rsa-cert.pub'
    block = text_format.render_block('web1', PROXY, username='azureuser', key_path=str(tmp_path / 'keys' / 'id_rsa'),
                                     certificate_path=str(certificate), refresh=refresh, os_name='posix')
    lines = block.splitlines()
    assert lines[-2].startswith('Match originalhost web1 exec "') and lines[-1] == text_format.end_marker('web1')
    assert f'    CertificateFile {certificate}' in lines
    # What block_options reads stops at the Match line: it is not an option of the Host block.
    assert 'match' not in text_format.block_options(block)
    config = tmp_path / 'config'
    config.write_text(block + 'Host web2\n    User other\n')
    options = _ssh_resolves(config, 'web1')
    assert options['certificatefile'] == [str(certificate)] and options['user'] == ['azureuser']
    assert ran.read_text() == 'refreshed\n'         # ssh ran the Match exec while reading the config for web1
    assert _ssh_resolves(config, 'web2')['user'] == ['other']
    assert ran.read_text() == 'refreshed\n'         # and not for another host


def test_a_refresh_command_that_cannot_sit_in_double_quotes_is_refused():
    with pytest.raises(text_format.SshConfigError) as raised:
        text_format.render_block('web1', PROXY, refresh=['/opt/my"az/python', 'x'], os_name='posix')
    assert raised.value.kind is Kind.INVALID_ARGUMENT


def test_an_entra_block_among_top_level_lines_gives_them_back_to_every_host():
    block = text_format.render_block('web1', PROXY, refresh=['/usr/bin/python3', '-I', 'refresh.py'], os_name='posix')
    users = 'User someone\nHost other\n    Port 2222\n'
    merged, _ = text_format.merge_block(users, 'web1', block)
    # after our Match line, the user's top-level `User` must not be under it
    assert merged.index(text_format.REOPEN_LINE) < merged.index('User someone')
