"""side_by_side.py: Microsoft's `bastion` extension found installed (as azure-cli counts it) in either extension
directory, and said once."""
import logging

import pytest

from azext_bastion_native import side_by_side


def _install(directory, name='bastion', info='bastion-1.4.0.dist-info'):
    (directory / name).mkdir(parents=True)
    if info:
        (directory / name / info).mkdir()
    return str(directory / name)


def test_installed_means_a_bastion_folder_with_its_package_info(tmp_path):
    user, system = tmp_path / 'user', tmp_path / 'system'
    user.mkdir()
    assert side_by_side.installed_path([str(user), str(system)]) is None
    _install(user, info=None)                               # a bare folder: azure-cli does not count it
    assert side_by_side.installed_path([str(user), str(system)]) is None
    _install(user, name='bastion-native', info='x.dist-info')
    assert side_by_side.installed_path([str(user)]) is None
    path = _install(system, info='bastion.egg-info')
    assert side_by_side.installed_path([str(user), str(system)]) == path


def test_the_message_names_the_folder_the_clash_and_the_removal():
    message = side_by_side.clash_message('/home/u/.azure/cliextensions/bastion')
    assert '(/home/u/.azure/cliextensions/bastion)' in message
    assert 'create, delete, list, show, update, wait, ssh, rdp, tunnel' in message
    assert message.endswith('Remove it: az extension remove -n bastion')


@pytest.fixture
def fresh_cache():
    side_by_side.warn_if_installed.cache_clear()
    yield
    side_by_side.warn_if_installed.cache_clear()


def test_the_warning_is_said_once_per_process(tmp_path, monkeypatch, caplog, fresh_cache):
    path = _install(tmp_path)
    looked = []
    monkeypatch.setattr(side_by_side, 'extension_dirs', lambda: looked.append(1) or (str(tmp_path),))
    with caplog.at_level(logging.WARNING):
        assert side_by_side.warn_if_installed() == path
        assert side_by_side.warn_if_installed() == path
    assert looked == [1]
    assert [r.getMessage() for r in caplog.records] == [side_by_side.clash_message(path)]


def test_nothing_is_said_without_it(tmp_path, monkeypatch, caplog, fresh_cache):
    monkeypatch.setattr(side_by_side, 'extension_dirs', lambda: (str(tmp_path),))
    with caplog.at_level(logging.WARNING):
        assert side_by_side.warn_if_installed() is None
    assert caplog.records == []
