"""Session harness: the emulator subprocess, the real `az` logged in to it, and helper B's sshd fixtures.

Fixtures: ``emulator``, ``az_env``, ``az`` (see ``bastion_emulator.pytest_fixtures``); ``sshd``, ``sshd_linux_vm``,
``sshd_second_linux_vm``, ``echo_server``, ``sink_source`` (see ``tests/fixtures_sshd.py``); ``network``
(azure-mgmt-network against the emulator, for arranging resources)."""
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from bastion_emulator.testing.pytest_fixtures import az, az_env, emulator  # noqa: F401  pylint: disable=unused-import
from tests.fixtures_sshd import (  # noqa: F401  pylint: disable=unused-import
    echo_server, sink_source, ssh_key, sshd, sshd_linux_vm, sshd_second_linux_vm)


@pytest.fixture(scope='session')
def network(az, emulator):  # noqa: F811  (pytest fixtures by parameter name)
    """azure-mgmt-network against the emulator, for arranging what a test needs (VNets, public IPs, hosts, users'
    NSGs) the way a user would with `az network vnet create` and friends."""
    return network_client(emulator, az('account', 'get-access-token', '--query', 'accessToken', '-o', 'json').json)


def network_client(emulator_process, token):
    """azure-mgmt-network's client for the emulator's ARM, signed in with ``token`` (an access token az issued)."""
    from azure.core.credentials import AccessToken
    from azure.mgmt.network import NetworkManagementClient

    class StaticToken:  # pylint: disable=too-few-public-methods
        def get_token(self, *_, **__):
            return AccessToken(token, int(time.time()) + 3000)

    ready = emulator_process.ready
    return NetworkManagementClient(StaticToken(), ready['subscription'], base_url=ready['arm'],
                                   connection_verify=ready['ca_bundle'], credential_scopes=[ready['arm'] + '.default'])


def make_short_dir(prefix):
    """A private (0700) directory with a short path, for Unix sockets: their paths are limited to about 104 bytes,
    and pytest's tmp_path is longer than that under pytest-xdist (…/popen-gw0/test_name0/…)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir='/tmp'))


@pytest.fixture
def short_tmp():
    """tmp_path for tests that bind Unix sockets in it (see make_short_dir); removed afterwards."""
    path = make_short_dir('bn-')
    yield path
    shutil.rmtree(path, ignore_errors=True)
