"""cli_errors: the command boundary's one translator, every command's exception_handler."""
import json
import subprocess
import sys

import pytest
from azure.cli.core import azclierror

from azext_bastion_native import errors
from azext_bastion_native.cli_errors import CLI_ERRORS, cli_error, translate
from azext_bastion_native.dataplane import SessionRefusedError, SessionUnavailableError, WebsocketOpenError
from azext_bastion_native.errors import Kind, Refused


def test_every_kind_has_its_own_cli_error_type():
    """A kind without a type would be a KeyError at the user instead of a quiet ValidationError default."""
    assert set(CLI_ERRORS) == set(Kind)
    for name in CLI_ERRORS.values():
        assert issubclass(getattr(azclierror, name), azclierror.AzCLIError)


@pytest.mark.parametrize('kind, expected', [
    (Kind.USAGE, azclierror.ArgumentUsageError), (Kind.FILE_OPERATION, azclierror.FileOperationError),
    (Kind.NOT_FOUND, azclierror.ResourceNotFoundError), (Kind.AZURE_RESPONSE, azclierror.AzureResponseError),
    (Kind.UNREACHABLE, azclierror.AzureConnectionError), (Kind.UNAUTHORIZED, azclierror.UnauthorizedError),
    (Kind.AUTHENTICATION, azclierror.AuthenticationError), (Kind.LOCAL, azclierror.ClientRequestError),
    (Kind.INTERRUPTED, azclierror.ManualInterrupt)])
def test_a_refusal_leaves_the_boundary_as_its_kinds_type(kind, expected):
    with pytest.raises(expected) as raised:
        translate(Refused('what is wrong', 'what to do', kind))
    assert type(raised.value) is expected      # pylint: disable=unidiomatic-typecheck
    assert raised.value.error_msg == 'what is wrong' and raised.value.recommendations == ['what to do']
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize('error, expected, advice', [
    (SessionRefusedError('Forbidden', 403), azclierror.UnauthorizedError, 'az network bastion nsg check'),
    (SessionRefusedError('Unauthorized', 401), azclierror.UnauthorizedError, 'az login'),
    (SessionRefusedError('no such VM', 404), azclierror.ResourceNotFoundError, 'Check the target VM or IP address.'),
    (SessionRefusedError('bad request', 400), azclierror.AzureConnectionError, 'az network bastion show'),
    (SessionUnavailableError('busy', 503), azclierror.AzureConnectionError, 'Try again'),
    (WebsocketOpenError('no websocket'), azclierror.AzureConnectionError, 'Try again')])
def test_a_data_plane_error_leaves_the_boundary_typed_with_its_advice(error, expected, advice):
    with pytest.raises(expected) as raised:
        translate(error)
    assert type(raised.value) is expected      # pylint: disable=unidiomatic-typecheck
    assert raised.value.error_msg == error.message and advice in raised.value.recommendations[0]


def test_anything_else_leaves_unchanged():
    for error in (ValueError('a bug'), azclierror.ValidationError('already typed')):
        with pytest.raises(type(error)) as raised:
            translate(error)
        assert raised.value is error


def test_cli_error_keeps_a_refusal_without_recommendation_bare():
    error = cli_error(Refused('no', kind=errors.Kind.LOCAL))
    assert error.error_msg == 'no' and error.recommendations == []


def test_every_command_of_the_table_leaves_through_the_translator():
    """exception_handler is a per-command setting, taken from the command type each command is made from: a command
    made from a type without it would show a Refused as a traceback."""
    probe = (
        'import json\n'
        'from azure.cli.core import get_default_cli\n'
        'import azext_bastion_native\n'
        'from azext_bastion_native.cli_errors import translate\n'
        'cli = get_default_cli()\n'
        'loader = azext_bastion_native.COMMAND_LOADER_CLS(cli_ctx=cli)\n'
        'table = loader.load_command_table(None)\n'
        'without = sorted(n for n, c in table.items() if c.exception_handler is not translate)\n'
        'print(json.dumps([len(table), without]))\n')
    out = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True).stdout
    count, without = json.loads(out.strip().splitlines()[-1])
    assert count > 20 and without == []
