"""clients/tempfiles.py: private directories and files (0700/0600, removed on the way out, never overwritten or
followed), and stale private directories (removed when their owner process is provably gone, kept otherwise)."""

import os
import stat
import subprocess
import sys

import pytest

from azext_bastion_native.clients import tempfiles

pytestmark = pytest.mark.skipif(os.name != 'posix', reason='POSIX only: Windows directories are never removed')


def _dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])  # pylint: disable=consider-using-with
    child.wait()
    return child.pid


def _directory(parent, name, owner=None):
    path = parent / name
    path.mkdir(mode=0o700)
    if owner is not None:
        (path / tempfiles.OWNER_FILE).write_text(str(owner))
    return path


def test_only_directories_of_dead_owners_are_removed(tmp_path):
    dead = _directory(tmp_path, 'az-bastion-dead', owner=_dead_pid())
    live = _directory(tmp_path, 'az-bastion-live', owner=os.getpid())
    unowned = _directory(tmp_path, 'az-bastion-unowned')
    garbled = _directory(tmp_path, 'az-bastion-garbled', owner='not a pid')
    other_prefix = _directory(tmp_path, 'someone-else', owner=_dead_pid())
    assert tempfiles.remove_stale_directories(str(tmp_path)) == [str(dead)]
    assert not dead.exists()
    assert live.exists() and unowned.exists() and garbled.exists() and other_prefix.exists()


def test_a_symlink_is_never_followed(tmp_path):
    target = _directory(tmp_path, 'precious', owner=_dead_pid())
    (tmp_path / 'az-bastion-link').symlink_to(target)
    assert tempfiles.remove_stale_directories(str(tmp_path)) == []
    assert target.exists()


def test_private_directory_names_its_owner_and_removes_stale_ones_first(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfiles.tempfile, 'tempdir', str(tmp_path))
    dead = _directory(tmp_path, 'az-bastion-dead', owner=_dead_pid())
    with tempfiles.private_directory() as directory:
        assert not dead.exists()
        with open(os.path.join(directory, tempfiles.OWNER_FILE), encoding='ascii') as handle:
            assert int(handle.read()) == os.getpid()
    assert not os.path.exists(directory)


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_private_directory_is_0700_with_0600_files_and_is_removed():
    with tempfiles.private_directory() as directory:
        path = tempfiles.write_private_file(os.path.join(directory, 'secret'), 'data')
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, encoding='utf-8') as handle:
            assert handle.read() == 'data'
    assert not os.path.exists(directory)


def test_private_directory_is_removed_when_interrupted():
    with pytest.raises(KeyboardInterrupt):
        with tempfiles.private_directory() as directory:
            tempfiles.write_private_file(os.path.join(directory, 'key'), b'k')
            raise KeyboardInterrupt
    assert not os.path.exists(directory)


def test_private_file_never_overwrites_or_follows(tmp_path):
    existing = tmp_path / 'existing'
    existing.write_text('keep')
    with pytest.raises(FileExistsError):
        tempfiles.write_private_file(str(existing), 'new')
    assert existing.read_text() == 'keep'
