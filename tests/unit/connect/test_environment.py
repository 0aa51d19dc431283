"""connect/environment.py: what the injectable machine parts default to, and which local tunnel a command gets (a
private Unix socket for ssh/scp where the OS has them, a loopback port otherwise)."""
from types import SimpleNamespace

import pytest

from azext_bastion_native.clients import launch, local_tunnel
from azext_bastion_native.connect import data_plane, environment
from azext_bastion_native.connect.environment import Environment

DESTINATION = SimpleNamespace(endpoint='endpoint', get_arm_token='token getter', target='target')


@pytest.mark.parametrize('system, client', [('Windows', 'windows'), ('Linux', 'linux'), ('Darwin', 'other')])
def test_the_client_os_comes_from_the_system(system, client):
    assert Environment(system=system).client == client


def test_programs_run_through_the_injected_runner_or_in_the_foreground(monkeypatch):
    assert Environment(run=lambda argv: len(argv)).run_program(['ssh', 'vm']) == 2
    monkeypatch.setattr(launch, 'run_foreground', lambda argv: f'foreground {argv[0]}')
    assert Environment().run_program(['ssh']) == 'foreground ssh'


@pytest.fixture
def tunnels(monkeypatch):
    """Record which tunnel is made, with which client; Unix sockets supported unless a test says otherwise."""
    made = []
    monkeypatch.setattr(data_plane, 'data_plane_client', lambda endpoint, token: ('client', endpoint, token))
    monkeypatch.setattr(local_tunnel, 'LocalTunnel', lambda client, target: made.append(('port', client, target)))
    monkeypatch.setattr(local_tunnel, 'private_socket_tunnel',
                        lambda client, target: made.append(('unix socket', client, target)))
    monkeypatch.setattr(local_tunnel, 'unix_sockets_supported', lambda: True)
    return made


def test_ssh_gets_a_private_unix_socket_where_the_os_has_them(tunnels, monkeypatch):
    Environment(system='Linux').tunnel(DESTINATION, unix_socket=True)
    Environment(system='Linux').tunnel(DESTINATION)
    Environment(system='Windows').tunnel(DESTINATION, unix_socket=True)
    monkeypatch.setattr(local_tunnel, 'unix_sockets_supported', lambda: False)
    Environment(system='Linux').tunnel(DESTINATION, unix_socket=True)
    client = ('client', 'endpoint', 'token getter')
    assert tunnels == [('unix socket', client, 'target'), ('port', client, 'target'), ('port', client, 'target'),
                       ('port', client, 'target')]


def test_an_injected_tunnel_is_used_as_it_is(tunnels):
    assert Environment(open_tunnel=lambda destination: ('mine', destination)).tunnel(DESTINATION, True) == \
        ('mine', DESTINATION)
    assert tunnels == []


def test_waiting_ends_at_ctrl_c(monkeypatch):
    assert Environment(wait_forever=lambda: 'waited').block_until_interrupted() == 'waited'
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(environment.time, 'sleep', sleep)
    assert Environment().block_until_interrupted() is None and len(sleeps) == 3
