"""connect/data_plane.py: a command run's data-plane client gets azure-cli's User-Agent beside ours and a journal of
its sessions where there is a private directory for one."""
import logging
import os

import pytest
from azure.cli.core import __version__ as az_version

from azext_bastion_native.agent import proxy_helper
from azext_bastion_native.connect import data_plane
from azext_bastion_native.dataplane import client as dataplane_client, journal


def test_the_settings_carry_azure_clis_product_token_before_ours(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/ours.pem')
    settings = data_plane.data_plane_settings()
    assert settings.user_agent.startswith(f'AZURECLI/{az_version} bastion-native')
    assert settings.ca_bundle == '/etc/ssl/ours.pem'


@pytest.mark.skipif(not hasattr(os, 'getuid'), reason='journaled on POSIX only')
def test_sessions_are_journaled_in_the_private_directory(monkeypatch):
    monkeypatch.setattr(proxy_helper, 'journal_directory', lambda: 'directory descriptor')
    monkeypatch.setattr(journal, 'SessionJournal', lambda directory: ('journal in', directory))
    assert data_plane.session_journal() == ('journal in', 'directory descriptor')


def test_without_a_private_directory_there_is_no_journal_and_a_debug_line_says_why(monkeypatch, caplog):
    def unavailable():
        raise proxy_helper.AgentUnavailable('the az configuration directory is writable by others')
    monkeypatch.setattr(proxy_helper, 'journal_directory', unavailable)
    with caplog.at_level(logging.DEBUG, 'azext_bastion_native.connect.data_plane'):
        assert data_plane.session_journal() is None
    if hasattr(os, 'getuid'):
        assert caplog.messages == ['Bastion sessions are not journaled: the az configuration directory is writable '
                                   'by others']


def test_the_client_is_built_with_those_settings_and_journal(monkeypatch):
    made = {}
    monkeypatch.setattr(data_plane, 'session_journal', lambda: 'the journal')
    monkeypatch.setattr(dataplane_client, 'DataPlaneClient',
                        lambda endpoint, token, settings, journal: made.update(endpoint=endpoint, token=token,
                                                                               settings=settings, journal=journal))
    data_plane.data_plane_client('endpoint', 'token getter')
    assert (made['endpoint'], made['token'], made['journal']) == ('endpoint', 'token getter', 'the journal')
    assert made['settings'].user_agent.startswith('AZURECLI/')
