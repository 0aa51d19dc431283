"""ARM errors -> typed azure-cli errors that name the resource and the fix. No traceback reaches the user."""

from contextlib import contextmanager


def arm_message(error):
    """The ARM error's own code and message, without the SDK's boilerplate."""
    inner = getattr(error, 'error', None)
    code = getattr(inner, 'code', None) or getattr(error, 'reason', None) or ''
    message = getattr(inner, 'message', None) or getattr(error, 'message', None) or str(error)
    return f'({code}) {message}' if code else message


@contextmanager
def arm_errors(what, not_found_hint=None):
    """Translate errors of the ARM call(s) inside the block.

    `what` names the resource the way the user knows it ("Bastion host 'b1' in resource group 'rg'")."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
    from azure.cli.core import azclierror
    try:
        yield
    except ResourceNotFoundError as err:
        raise azclierror.ResourceNotFoundError(f'{what} was not found. {arm_message(err)}',
                                               recommendation=not_found_hint) from None
    except HttpResponseError as err:
        status = getattr(err, 'status_code', None)
        if status == 412:
            raise azclierror.AzureResponseError(
                f'{what} was changed by someone else while this command ran (HTTP 412, ETag mismatch); '
                'nothing was written.',
                recommendation='Run the command again: it reads the current state first.') from None
        if status == 409:
            raise azclierror.AzureResponseError(
                f'{what} is busy with another operation: {arm_message(err)}',
                recommendation='Wait for it to finish, e.g. `az network bastion wait --updated ...`, '
                               'then run the command again.') from None
        if status == 429:
            raise azclierror.AzureResponseError(
                f'Azure is throttling requests for {what}: {arm_message(err)}',
                recommendation='Retry after a short while.') from None
        if status in (400, 403):
            raise azclierror.InvalidArgumentValueError(f'Azure refused the request for {what}: {arm_message(err)}') \
                from None
        raise azclierror.AzureResponseError(f'Azure answered HTTP {status} for {what}: {arm_message(err)}') \
            from None
    except ServiceRequestError as err:
        raise azclierror.AzureConnectionError(f'Could not reach Azure Resource Manager: {err}') from None
