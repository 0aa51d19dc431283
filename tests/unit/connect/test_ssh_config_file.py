"""connect/ssh_config_file.py: writes under a lock, atomically, after the real `ssh -G` read the new text and
resolved each alias to what its block says."""
import os
import shlex
import shutil
import stat

import pytest

from azext_bastion_native.connect import ssh_config_file as config_file, ssh_config_text as text_format
from azext_bastion_native.errors import Kind
from tests.unit.connect.real_ssh import PROXY, ssh_resolves as _ssh_resolves

USER_TEXT = 'Host other\n    ServerAliveInterval 30\n'


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
def test_users_host_star_no_longer_wins_over_the_block(tmp_path):
    config = tmp_path / 'config'
    config.write_text('Host *\n    User someone\n    StrictHostKeyChecking yes\n')
    config_file.write_block(str(config), 'vm1', text_format.render_block('vm1', PROXY, username='me'))
    options = _ssh_resolves(config, 'vm1')
    assert options['user'] == ['me'] and options['stricthostkeychecking'] == ['accept-new']
    assert _ssh_resolves(config, 'elsewhere')['user'] == ['someone']


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
@pytest.mark.parametrize('username, key_name',
                         [("o'brien", 'id'), ('me', "bob's_key"), ('me', 'a #b'), ("d'arcy", "it's 50%")])
def test_apostrophes_and_hashes_are_quoted_so_ssh_reads_them_back(tmp_path, username, key_name):
    key = tmp_path / key_name
    proxy = [f"/home/{username}/bin/az", *PROXY[1:]]
    config = tmp_path / 'config'
    config.write_text('Host *\n    Port 22\n')
    block = text_format.render_block('vm1', proxy, username=username, key_path=str(key), os_name='posix')
    config_file.write_block(str(config), 'vm1', block)
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
    monkeypatch.setattr(text_format, 'config_value', lambda value, _what: value)     # the old, unquoted way
    block = text_format.render_block('vm1', PROXY, username="o'brien", os_name='posix')
    with pytest.raises(text_format.SshConfigError, match='ssh cannot read') as refused:
        config_file.write_block(str(config), 'vm1', block)
    assert refused.value.kind is Kind.DAMAGED
    assert config.read_text() == before and os.listdir(tmp_path) == ['config']


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_new_file_and_directory_are_private(tmp_path):
    previous = os.umask(0o022)      # as most users have: makedirs/mkstemp alone would not give 0700/0600
    try:
        path, replaced = config_file.write_block(str(tmp_path / 'new' / 'config'), 'vm1',
                                                 text_format.render_block('vm1', PROXY))
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
    config_file.write_block(str(link), 'vm1', text_format.render_block('vm1', PROXY))
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
        config_file.write_block(str(config), 'vm1', text_format.render_block('vm1', PROXY))
    assert config.read_text() == USER_TEXT
    assert os.listdir(tmp_path) == ['config']


@pytest.mark.skipif(shutil.which('ssh') is None, reason='needs the OpenSSH client')
@pytest.mark.parametrize('users_first, words', [('User topuser\n', 'user would be topuser (the block: me)'),
                                                ('ProxyJump corp-jump.example\n', 'proxyjump would be corp-jump'),
                                                ('ProxyCommand none\n', 'proxycommand would be none')])
def test_nothing_is_written_when_ssh_would_not_connect_as_the_block_says(tmp_path, users_first, words):
    """The `ssh -G` check compares, whatever put the user's lines first (here: the text handed to the writer)."""
    config = tmp_path / 'config'
    config.write_text(USER_TEXT)
    block = text_format.render_block('vm1', PROXY, username='me', os_name='posix')
    with pytest.raises(text_format.SshConfigError) as refused:
        config_file.edit_config(str(config), lambda current: (users_first + current + block, {'vm1': block}, None))
    assert refused.value.kind is Kind.VALIDATION and words in refused.value.message
    assert 'ssh -F FILE vm1' in refused.value.recommendation
    assert config.read_text() == USER_TEXT and os.listdir(tmp_path) == ['config']


def test_a_run_waits_for_the_lock_so_no_block_is_lost(tmp_path):
    """Another run writing while this one holds the lock merges into what this one wrote."""
    import threading
    config = tmp_path / 'config'
    config.write_text(USER_TEXT)
    other = threading.Thread(target=config_file.write_block,
                             args=(str(config), 'vm2', text_format.render_block('vm2', PROXY)))
    with config_file.config_lock(str(config)):
        current = config.read_text()
        other.start()
        other.join(1.0)         # it waits on the lock (without the lock it would write vm2 now)
        merged, _ = text_format.merge_block(current, 'vm1', text_format.render_block('vm1', PROXY))
        config_file.write_atomically(str(config), merged)
    other.join(60)
    text = config.read_text()
    assert 'Host vm1\n' in text and 'Host vm2\n' in text and text.startswith(USER_TEXT)


@pytest.mark.skipif(os.name == 'nt', reason='POSIX flock')
def test_where_a_directory_cannot_be_locked_a_lock_file_beside_the_config_is(tmp_path, monkeypatch):
    """NFS emulates flock with write locks: a read-only directory descriptor cannot be locked (EBADF)."""
    import errno
    real_flock = config_file._flock

    def nfs_flock(descriptor, operation):
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(errno.EBADF, 'Bad file descriptor')
        real_flock(descriptor, operation)
    monkeypatch.setattr(config_file, '_flock', nfs_flock)
    monkeypatch.setattr(config_file, 'LOCK_WAIT', 5.0)
    config = tmp_path / 'config'
    config_file.write_block(str(config), 'vm1', text_format.render_block('vm1', PROXY))
    assert 'Host vm1\n' in config.read_text()
    assert sorted(os.listdir(tmp_path)) == ['config', 'config.lock']
