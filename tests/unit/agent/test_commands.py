"""`az network bastion agent stop --forward ID` (agent/commands.py) against a real agent on a thread: an id no forward
has, no agent at all and an id below 1 are refusals of their own kind that say what to run."""
import pytest

from azext_bastion_native.agent import commands, server
from azext_bastion_native.errors import Kind, Refused
from tests.unit.agent.test_server import _ask, _Hosts, _serve, paths  # noqa: F401  pylint: disable=unused-import


@pytest.fixture
def environ(paths, monkeypatch, short_tmp):  # noqa: F811
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(short_tmp))
    monkeypatch.setenv('AZURE_CONFIG_DIR', str(short_tmp / 'c'))
    return paths


def test_an_id_no_forward_has_is_not_found_and_the_agent_goes_on(environ):
    thread, _ = _serve(server.ConnectionAgent(environ, _Hosts(), idle_timeout=60))
    try:
        with pytest.raises(Refused) as refused:
            commands.agent_stop(None, forward=3)
        assert refused.value.kind is Kind.NOT_FOUND and refused.value.message == 'The agent runs no forward with id 3.'
        assert '`az network bastion agent status`' in refused.value.recommendation
        assert _ask(environ.socket, {'v': 1, 'op': 'status'})['ok']
    finally:
        _ask(environ.socket, {'v': 1, 'op': 'stop'})
        thread.join(10)


def test_no_agent_running_is_not_found(environ):
    with pytest.raises(Refused) as refused:
        commands.agent_stop(None, forward=1)
    assert refused.value.kind is Kind.NOT_FOUND and 'No connection agent runs' in refused.value.message


def test_an_id_below_one_is_an_invalid_argument(environ):
    with pytest.raises(Refused) as refused:
        commands.agent_stop(None, forward=0)
    assert refused.value.kind is Kind.INVALID_ARGUMENT and 'agent status' in refused.value.recommendation
