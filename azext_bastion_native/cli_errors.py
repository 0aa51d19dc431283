"""The command boundary's one translator: a Refused (errors.py) or a typed data-plane error leaves a command as the
azure.cli.core.azclierror type its kind names, with its message and recommendation and no traceback.

`translate` is every command's exception_handler (set once, on the command loader, in __init__.py): azure-cli
calls it with whatever a command raised (azure-cli-core commands/__init__.py, AzCliCommandInvoker._run_job:
``return cmd_copy.exception_handler(ex)``). Anything it does not know it raises again unchanged. Argument
validators run before that handler and call cli_error themselves."""


from azext_bastion_native import errors
from azext_bastion_native.errors import Kind

# Each kind's azclierror type, by name (azure.cli.core.azclierror is imported only when an error is raised).
CLI_ERRORS = {
    Kind.MISSING: 'RequiredArgumentMissingError',
    Kind.MUTUALLY_EXCLUSIVE: 'MutuallyExclusiveArgumentError',
    Kind.INVALID_ARGUMENT: 'InvalidArgumentValueError',
    Kind.EXISTS: 'ArgumentUsageError',
    Kind.USAGE: 'ArgumentUsageError',
    Kind.DAMAGED: 'FileOperationError',
    Kind.FILE_OPERATION: 'FileOperationError',
    Kind.NOT_INSTALLED: 'UnclassifiedUserFault',
    Kind.VALIDATION: 'ValidationError',
    Kind.NOT_FOUND: 'ResourceNotFoundError',
    Kind.AZURE_RESPONSE: 'AzureResponseError',
    Kind.UNREACHABLE: 'AzureConnectionError',
    Kind.UNAUTHORIZED: 'UnauthorizedError',
    Kind.AUTHENTICATION: 'AuthenticationError',
    Kind.LOCAL: 'ClientRequestError',
    Kind.INTERRUPTED: 'ManualInterrupt',
}


def cli_error(refused):
    """The azclierror for a Refused, with its message and recommendation."""
    from azure.cli.core import azclierror
    return getattr(azclierror, CLI_ERRORS[refused.kind])(refused.message, recommendation=refused.recommendation)


def data_plane_refusal(err):
    """A data-plane failure (the mint answered 4xx/5xx, the websocket failed) as the Refused the user sees."""
    from azext_bastion_native.dataplane import SessionRefusedError
    if isinstance(err, SessionRefusedError) and err.status in (401, 403):
        return errors.Refused(err.message, (
            'Check that your account may connect through this Bastion host (Reader on the host, the VM and its '
            'NIC), that the NSG on AzureBastionSubnet allows the port (az network bastion nsg check), and sign '
            'in again with az login if your session has expired.'), Kind.UNAUTHORIZED)
    if isinstance(err, SessionRefusedError) and err.status == 404:
        return errors.Refused(err.message, 'Check the target VM or IP address.', Kind.NOT_FOUND)
    return errors.Refused(err.message, 'Try again; if it persists, run `az network bastion show` to check the host '
                          'is running.', Kind.UNREACHABLE)


def translate(ex):
    """exception_handler of every command: raise the typed CLI error for ``ex``, or ``ex`` itself."""
    if isinstance(ex, errors.Refused):
        raise cli_error(ex) from None
    from azext_bastion_native.dataplane import DataPlaneError
    if isinstance(ex, DataPlaneError):
        raise cli_error(data_plane_refusal(ex)) from None
    raise ex
