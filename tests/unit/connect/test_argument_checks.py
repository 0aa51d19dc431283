"""connect/argument_checks.py: the connect request checked without Azure, and the ssh sign-in options that do not go
together."""
import pytest

from azext_bastion_native.connect import argument_checks
from azext_bastion_native.connect.preflight import ConnectRequest, PreflightError
from azext_bastion_native.errors import Kind, Refused

VM_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'


def test_the_request_carries_the_arguments_once_checked():
    assert argument_checks.connect_request('rg', 'bh', VM_ID, None, 22) == ConnectRequest('rg', 'bh', 22, VM_ID, None)
    with pytest.raises(PreflightError) as refused:
        argument_checks.connect_request('rg', 'bh', VM_ID, '10.0.0.4', 22)
    assert refused.value.kind is Kind.MUTUALLY_EXCLUSIVE


@pytest.mark.parametrize('auth_type, username, ssh_key, kind, phrase', [
    ('ssh-key', None, None, Kind.MISSING, '--auth-type ssh-key needs --ssh-key PATH'),
    ('password', None, '/k/id', Kind.USAGE, '--ssh-key goes with --auth-type ssh-key, not password'),
    ('aad', None, '/k/id', Kind.USAGE, '--ssh-key goes with --auth-type ssh-key, not aad'),
    ('aad', 'bob', None, Kind.USAGE, '--username does not go with --auth-type aad'),
])
def test_sign_in_options_that_do_not_go_together(auth_type, username, ssh_key, kind, phrase):
    with pytest.raises(Refused) as refused:
        argument_checks.check_ssh_login_arguments(auth_type, username, ssh_key)
    assert refused.value.kind is kind and refused.value.message.startswith(phrase)


@pytest.mark.parametrize('auth_type, username, ssh_key', [
    ('password', 'bob', None), ('password', None, None), ('ssh-key', 'bob', '/k/id'), ('aad', None, None)])
def test_sign_in_options_that_go_together(auth_type, username, ssh_key):
    argument_checks.check_ssh_login_arguments(auth_type, username, ssh_key)
