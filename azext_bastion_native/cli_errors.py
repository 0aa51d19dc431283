"""The one translator from a Refused (errors.py) to the azure.cli.core.azclierror type its kind names."""

import contextlib

from azext_bastion_native import errors


def cli_error(refused):
    """The azclierror for a Refused, with its message and recommendation."""
    from azure.cli.core import azclierror
    types = {errors.MISSING: azclierror.RequiredArgumentMissingError,
             errors.MUTUALLY_EXCLUSIVE: azclierror.MutuallyExclusiveArgumentError,
             errors.INVALID_ARGUMENT: azclierror.InvalidArgumentValueError,
             errors.EXISTS: azclierror.ArgumentUsageError,
             errors.DAMAGED: azclierror.FileOperationError,
             errors.NOT_INSTALLED: azclierror.UnclassifiedUserFault}
    return types.get(refused.kind, azclierror.ValidationError)(refused.message,
                                                               recommendation=refused.recommendation)


@contextlib.contextmanager
def refusals_as_cli_errors():
    """Any Refused raised inside the block leaves it as the CLI's typed error (no traceback)."""
    try:
        yield
    except errors.Refused as refused:
        raise cli_error(refused) from None
