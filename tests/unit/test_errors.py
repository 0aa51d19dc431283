"""errors.Refused and its one translator (cli_errors): each kind of refusal leaves as its azclierror type."""
import pytest
from azure.cli.core import azclierror

from azext_bastion_native import errors
from azext_bastion_native.capabilities import CapabilityRefused, decide
from azext_bastion_native.cli_errors import cli_error, translate
from azext_bastion_native.connect.file import TransferRefused
from azext_bastion_native.connect.preflight import PreflightError
from azext_bastion_native.connect.ssh_config_text import SshConfigError


def test_a_capability_refusal_raises_the_cli_error():
    with pytest.raises(CapabilityRefused) as caught:
        decide('linux', 'windows', 'tunnel', auth_type='aad')
    with pytest.raises(azclierror.ValidationError) as refused:
        translate(caught.value)
    assert 'Entra ID' in str(refused.value)
    assert decide('windows', 'windows', 'rdp', auth_type='aad').method == 'rdp'


@pytest.mark.parametrize('refusal, expected', [
    (CapabilityRefused('not offered', 'use the tunnel'), azclierror.ValidationError),
    (PreflightError(errors.MISSING, 'give one'), azclierror.RequiredArgumentMissingError),
    (PreflightError(errors.MUTUALLY_EXCLUSIVE, 'only one'), azclierror.MutuallyExclusiveArgumentError),
    (PreflightError(errors.INVALID_ARGUMENT, 'not a port'), azclierror.InvalidArgumentValueError),
    (PreflightError(errors.VALIDATION, 'no tunneling'), azclierror.ValidationError),
    (SshConfigError(errors.EXISTS, 'block exists', '--overwrite'), azclierror.ArgumentUsageError),
    (SshConfigError(errors.DAMAGED, 'markers repeated'), azclierror.FileOperationError),
    (TransferRefused('no such file'), azclierror.InvalidArgumentValueError),
    (TransferRefused('no scp', 'install OpenSSH', errors.NOT_INSTALLED), azclierror.UnclassifiedUserFault),
])
def test_each_kind_of_refusal_is_its_azclierror_type(refusal, expected):
    assert isinstance(refusal, errors.Refused)
    error = cli_error(refusal)
    assert type(error) is expected      # pylint: disable=unidiomatic-typecheck
    assert error.error_msg == refusal.message and error.recommendations == (
        [refusal.recommendation] if refusal.recommendation else [])


def test_a_kind_that_is_not_an_errors_kind_fails_where_it_is_written():
    """A misspelled kind used to leave as ValidationError at the user; now it cannot be constructed."""
    with pytest.raises(TypeError):
        errors.Refused('message', kind='invalid-arguments')
    assert errors.Refused('message', kind=errors.Kind.EXISTS).kind is errors.Kind.EXISTS
