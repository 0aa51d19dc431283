"""connect/dispatch.py: the seed's table and limitations decide which handler runs, or refuse saying why."""
import os
import stat
from types import SimpleNamespace

import pytest
from azure.cli.core.azclierror import (ArgumentUsageError, InvalidArgumentValueError, MutuallyExclusiveArgumentError,
                                       RequiredArgumentMissingError, ValidationError)

from azext_bastion_native.connect import dispatch, rdp as connect_rdp, ssh as connect_ssh
from azext_bastion_native.capabilities import CapabilityRefused
from azext_bastion_native.connect.dispatch import ConnectFacts, choose_handler
from tests.unit.boundary import raises_as

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'


@pytest.mark.parametrize('client', ['windows', 'linux', 'other'])
def test_ssh_to_linux_goes_through_the_tunnel_from_every_client(client):
    assert choose_handler(ConnectFacts(client, 'ssh', 'linux', 'password')) == dispatch.SSH_THROUGH_TUNNEL


@pytest.mark.parametrize('client', ['windows', 'linux'])
def test_entra_ssh_is_offered_where_the_table_says_so(client):
    assert choose_handler(ConnectFacts(client, 'ssh', 'linux', 'aad')) == dispatch.SSH_THROUGH_TUNNEL


def test_entra_ssh_from_other_clients_is_refused_naming_the_row():
    with pytest.raises(CapabilityRefused) as refused:
        choose_handler(ConnectFacts('other', 'ssh', 'linux', 'aad'))
    assert 'Other native client' in refused.value.message and 'Entra ID' in refused.value.message
    assert '--auth-type password' in refused.value.recommendation


@pytest.mark.parametrize('client', ['windows', 'linux', 'other'])
def test_ssh_to_windows_vm_is_refused_with_the_tunnel_as_alternative(client):
    with pytest.raises(CapabilityRefused) as refused:
        choose_handler(ConnectFacts(client, 'ssh', 'windows', 'password'))
    assert 'Windows VM' in refused.value.message
    assert 'az network bastion tunnel' in refused.value.recommendation


def test_entra_with_ip_connect_is_refused():
    with pytest.raises(CapabilityRefused) as refused:
        choose_handler(ConnectFacts('linux', 'ssh', None, 'aad', ip_connect=True))
    assert 'IP-based connect' in refused.value.message
    assert '--target-resource-id' in refused.value.recommendation


def test_custom_port_with_ip_connect_is_refused_but_allowed_by_resource_id():
    with pytest.raises(CapabilityRefused, match='2222'):
        choose_handler(ConnectFacts('linux', 'ssh', None, 'password', port=2222, ip_connect=True))
    assert choose_handler(ConnectFacts('linux', 'ssh', 'linux', 'password', port=2222)) == dispatch.SSH_THROUGH_TUNNEL


def test_ip_connect_assumes_the_os_the_method_implies():
    assert choose_handler(ConnectFacts('linux', 'ssh', None, 'ssh-key', ip_connect=True)) == dispatch.SSH_THROUGH_TUNNEL
    assert choose_handler(ConnectFacts('windows', 'rdp', None, ip_connect=True)) == dispatch.RDP_TUNNEL_MSTSC


@pytest.mark.parametrize('facts, handler', [
    (ConnectFacts('windows', 'rdp', 'windows'), dispatch.RDP_GATEWAY_MSTSC),
    (ConnectFacts('windows', 'rdp', 'windows', 'aad'), dispatch.RDP_GATEWAY_MSTSC),
    (ConnectFacts('windows', 'rdp', 'windows', port=3390), dispatch.RDP_GATEWAY_MSTSC),
    (ConnectFacts('windows', 'rdp', 'windows', disable_gateway=True), dispatch.RDP_TUNNEL_MSTSC),
    (ConnectFacts('linux', 'rdp', 'windows'), dispatch.RDP_TUNNEL_LOCAL_CLIENT),
    (ConnectFacts('other', 'rdp', 'windows'), dispatch.RDP_TUNNEL_LOCAL_CLIENT),
])
def test_rdp_handlers(facts, handler):
    assert choose_handler(facts) == handler


@pytest.mark.parametrize('facts, words', [
    (ConnectFacts('windows', 'rdp', 'windows', 'aad', disable_gateway=True), '--disable-gateway'),
    (ConnectFacts('windows', 'rdp', None, 'aad', ip_connect=True), 'IP-based connect'),
    (ConnectFacts('linux', 'rdp', 'windows', 'aad'), 'Linux native client'),
    (ConnectFacts('windows', 'rdp', 'linux'), 'Linux VM'),
    (ConnectFacts('linux', 'rdp', 'linux'), 'Linux VM'),
])
def test_rdp_refusals_say_why(facts, words):
    with pytest.raises(CapabilityRefused) as refused:
        choose_handler(facts)
    assert words in refused.value.message
    assert refused.value.recommendation


def test_refusal_reaches_the_cli_as_a_typed_error():
    with raises_as(ValidationError) as error:
        dispatch.choose_handler(ConnectFacts('linux', 'ssh', 'windows', 'password'))
    assert error.value.recommendations


# -- the commands refuse before any network call --------------------------------------------------------
class _NoNetwork:
    """A cmd whose every Azure call fails the test."""
    cli_ctx = SimpleNamespace(cloud=SimpleNamespace(name='AzureCloud', suffixes=SimpleNamespace()))


def _ssh(environment, **options):
    arguments = {'target_resource_id': VM_ID, 'auth_type': 'password'}
    arguments.update(options)
    connect_ssh.ssh_command(_NoNetwork(), 'rg', 'bastion', environment=environment, **arguments)


def test_cloud_shell_refused(offline, monkeypatch):
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    with raises_as(ValidationError, match='Cloud Shell'):
        _ssh(offline)
    with raises_as(ValidationError, match='Cloud Shell'):
        connect_rdp.rdp_command(_NoNetwork(), 'rg', 'bastion', target_resource_id=VM_ID, environment=offline)


def test_key_vault_key_refused(offline):
    with raises_as(InvalidArgumentValueError, match='Key Vault'):
        _ssh(offline, auth_type='ssh-key', ssh_key='https://v.vault.azure.net/secrets/k')


@pytest.mark.skipif(os.name == 'nt', reason='POSIX modes')
def test_too_open_key_refused(offline, tmp_path):
    key = tmp_path / 'key'
    key.write_text('k')
    key.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
    with raises_as(InvalidArgumentValueError, match='group or others') as error:
        _ssh(offline, auth_type='ssh-key', ssh_key=str(key))
    assert f'chmod 600 {key}' in str(error.value.recommendations)


@pytest.mark.parametrize('options, error', [
    ({'auth_type': 'ssh-key'}, RequiredArgumentMissingError),
    ({'auth_type': 'password', 'ssh_key': '/k'}, ArgumentUsageError),
    ({'auth_type': 'aad', 'username': 'bob'}, ArgumentUsageError),
    ({'target_ip_address': '10.0.0.4'}, MutuallyExclusiveArgumentError),
    ({'target_resource_id': None}, RequiredArgumentMissingError),
    ({'target_resource_id': None, 'target_ip_address': '10.0.0.4', 'auth_type': 'aad'}, ValidationError),
    ({'target_resource_id': None, 'target_ip_address': '10.0.0.4', 'resource_port': 2222}, ValidationError),
])
def test_argument_refusals(offline, options, error):
    with raises_as(error):
        _ssh(offline, **options)


def test_missing_ssh_client_refused_before_connecting(offline):
    offline.which = lambda _: None
    from azure.cli.core.azclierror import UnclassifiedUserFault
    with raises_as(UnclassifiedUserFault, match='OpenSSH'):
        _ssh(offline)


def test_configure_is_windows_only(offline):
    with raises_as(ArgumentUsageError, match='--configure'):
        connect_rdp.rdp_command(_NoNetwork(), 'rg', 'bastion', target_resource_id=VM_ID, configure=True,
                            environment=offline)


def test_rdp_aad_on_linux_refused_before_network(offline):
    with raises_as(ValidationError, match='Entra ID'):
        connect_rdp.rdp_command(_NoNetwork(), 'rg', 'bastion', target_resource_id=VM_ID, auth_type='aad',
                            environment=offline)
