"""management/sessions.py: a host's active sessions read through ARM's long-running POST and its pages, sessions
ended by id; ARM's refusals named after the host."""
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError

from azext_bastion_native.management import sessions
from azext_bastion_native.management.errors import ArmRefused


def test_the_sessions_are_every_page_of_the_operations_result(monkeypatch):
    waited = []

    def wait_for(cli_ctx, poller, what, start_msg=None):
        waited.append((poller, what, start_msg))
        return iter([{'sessionId': 'a'}, {'sessionId': 'b'}])
    monkeypatch.setattr(sessions, 'wait_for', wait_for)
    client = SimpleNamespace(begin_get_active_sessions=lambda rg, name: ('poller', rg, name))
    assert sessions.list_sessions(None, client, 'rg', 'bh') == [{'sessionId': 'a'}, {'sessionId': 'b'}]
    label = "Bastion host 'bh' in resource group 'rg'"
    assert waited == [(('poller', 'rg', 'bh'), label, f'Reading active sessions of {label}')]


def test_ending_sessions_sends_their_ids_and_returns_their_states():
    sent = []

    def disconnect(resource_group, name, ids):
        sent.append((resource_group, name, ids.session_ids))
        return iter([{'sessionId': 'a', 'state': 'Disconnected'}])
    client = SimpleNamespace(disconnect_active_sessions=disconnect)
    assert sessions.disconnect_sessions(client, 'rg', 'bh', ['a']) == [{'sessionId': 'a', 'state': 'Disconnected'}]
    assert sent == [('rg', 'bh', ['a'])]


def test_an_arm_refusal_names_the_host():
    def refuse(*_):
        error = HttpResponseError(message='denied')
        error.status_code = 403
        raise error
    with pytest.raises(ArmRefused, match="Azure refused the request for Bastion host 'bh' in resource group 'rg'"):
        sessions.disconnect_sessions(SimpleNamespace(disconnect_active_sessions=refuse), 'rg', 'bh', ['a'])
