"""ARM errors -> typed azure-cli errors that name the resource and the fix. No traceback reaches the user."""

from contextlib import contextmanager

# ARM's answers when a resource type is not served at the api-version asked for: NoRegisteredProviderFound
# ("No registered resource provider found for location '...' and API version '...' for type '...'. The
# supported api-versions are '...'"), InvalidApiVersionParameter ("The api-version '...' is invalid. The supported
# versions are '...'"), InvalidResourceType ("... could not be found in the namespace '...' for api version '...'").
API_VERSION_ERROR_CODES = ('NoRegisteredProviderFound', 'InvalidApiVersionParameter', 'InvalidResourceType')


def arm_message(error):
    """The ARM error's own code and message, without the SDK's boilerplate."""
    inner = getattr(error, 'error', None)
    code = getattr(inner, 'code', None) or getattr(error, 'reason', None) or ''
    message = getattr(inner, 'message', None) or getattr(error, 'message', None) or str(error)
    return f'({code}) {message}' if code else message


def _error_code(error):
    return getattr(getattr(error, 'error', None), 'code', None) or ''


def api_version_error(error):
    """A typed error naming the api-version this extension pins, when ARM refused it; else None."""
    if _error_code(error) not in API_VERSION_ERROR_CODES:
        return None
    from azure.cli.core import azclierror
    from azext_bastion_native.management.api_version import NETWORK_API_VERSION
    return azclierror.AzureResponseError(
        f'Azure Resource Manager in this cloud does not serve Microsoft.Network api-version {NETWORK_API_VERSION}, '
        f'the version this extension sends: {arm_message(error)}',
        recommendation='Check the cloud you are signed in to (az cloud show --query name). An Azure Stack Hub or '
                       'other cloud that lags public Azure may not have this version yet; use the Azure portal '
                       'there, or ask for a release of bastion-native that supports it.')


@contextmanager
def arm_errors(what, not_found_hint=None, pass_not_found=False):
    """Translate errors of the ARM call(s) inside the block.

    `what` names the resource the way the user knows it ("Bastion host 'b1' in resource group 'rg'").
    pass_not_found: let ARM's 404 through as azure.core's ResourceNotFoundError, for callers that expect it (the
    getter of azure-cli's generic wait)."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
    from azure.cli.core import azclierror
    try:
        yield
    except ResourceNotFoundError as err:
        refused_version = api_version_error(err)
        if refused_version is not None:
            raise refused_version from None
        if pass_not_found:
            raise
        raise azclierror.ResourceNotFoundError(f'{what} was not found. {arm_message(err)}',
                                               recommendation=not_found_hint) from None
    except HttpResponseError as err:
        status = getattr(err, 'status_code', None)
        refused_version = api_version_error(err)
        if refused_version is not None:
            raise refused_version from None
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
