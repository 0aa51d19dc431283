"""ARM errors -> ArmRefused (an errors.Refused) naming the resource and the fix; the command boundary shows it as
its typed azure-cli error. No traceback reaches the user."""

from contextlib import contextmanager
from typing import Iterator, Optional

from azext_bastion_native.errors import Kind, Refused

# ARM's answers when a resource type is not served at the api-version asked for: NoRegisteredProviderFound
# ("No registered resource provider found for location '...' and API version '...' for type '...'. The
# supported api-versions are '...'"), InvalidApiVersionParameter ("The api-version '...' is invalid. The supported
# versions are '...'"), InvalidResourceType ("... could not be found in the namespace '...' for api version '...'").
API_VERSION_ERROR_CODES = ('NoRegisteredProviderFound', 'InvalidApiVersionParameter', 'InvalidResourceType')


def arm_message(error: Exception) -> str:
    """The ARM error's own code and message, without the SDK's boilerplate."""
    inner = getattr(error, 'error', None)
    code = getattr(inner, 'code', None) or getattr(error, 'reason', None) or ''
    message = getattr(inner, 'message', None) or getattr(error, 'message', None) or str(error)
    return f'({code}) {message}' if code else str(message)


def _error_code(error: Exception) -> str:
    return str(getattr(getattr(error, 'error', None), 'code', None) or '')


class ArmRefused(Refused):
    """Azure Resource Manager refused a call, or could not be reached; ``status`` is the HTTP status (None when no
    answer came)."""

    def __init__(self, message: str, recommendation: Optional[str] = None, kind: Kind = Kind.AZURE_RESPONSE,
                 status: Optional[int] = None):
        super().__init__(message, recommendation, kind)
        self.status = status


class ArmNotFound(ArmRefused):
    """The resource named does not exist (ARM's 404)."""

    def __init__(self, message: str, recommendation: Optional[str] = None):
        super().__init__(message, recommendation, Kind.NOT_FOUND, status=404)


def api_version_error(error: Exception) -> Optional[ArmRefused]:
    """The refusal naming the api-version this extension pins, when ARM refused it; else None."""
    if _error_code(error) not in API_VERSION_ERROR_CODES:
        return None
    from azext_bastion_native.management.api_version import NETWORK_API_VERSION
    return ArmRefused(
        f'Azure Resource Manager in this cloud does not serve Microsoft.Network api-version {NETWORK_API_VERSION}, '
        f'the version this extension sends: {arm_message(error)}',
        'Check the cloud you are signed in to (az cloud show --query name). An Azure Stack Hub or '
        'other cloud that lags public Azure may not have this version yet; use the Azure portal '
        'there, or ask for a release of bastion-native that supports it.',
        status=getattr(error, 'status_code', None))


@contextmanager
def arm_errors(what: str, not_found_hint: Optional[str] = None, pass_not_found: bool = False) -> Iterator[None]:
    """ARM errors of the call(s) inside the block as ArmRefused naming the resource and the fix.

    `what` names the resource the way the user knows it ("Bastion host 'b1' in resource group 'rg'").
    pass_not_found: let ARM's 404 through as azure.core's ResourceNotFoundError, for callers that expect it (the
    getter of azure-cli's generic wait)."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
    try:
        yield
    except ResourceNotFoundError as err:
        refused_version = api_version_error(err)
        if refused_version is not None:
            raise refused_version from None
        if pass_not_found:
            raise
        raise ArmNotFound(f'{what} was not found. {arm_message(err)}', not_found_hint) from None
    except HttpResponseError as err:
        raise _http_refusal(what, err) from None
    except ServiceRequestError as err:
        raise ArmRefused(f'Could not reach Azure Resource Manager: {err}', kind=Kind.UNREACHABLE) from None


def _http_refusal(what: str, err: Exception) -> ArmRefused:
    status = getattr(err, 'status_code', None)
    refused_version = api_version_error(err)
    if refused_version is not None:
        return refused_version
    if status == 412:
        return ArmRefused(
            f'{what} was changed by someone else while this command ran (HTTP 412, ETag mismatch); '
            'nothing was written.', 'Run the command again: it reads the current state first.', status=status)
    if status == 409:
        return ArmRefused(
            f'{what} is busy with another operation: {arm_message(err)}',
            'Wait for it to finish, e.g. `az network bastion wait --updated ...`, then run the command again.',
            status=status)
    if status == 429:
        return ArmRefused(f'Azure is throttling requests for {what}: {arm_message(err)}',
                          'Retry after a short while.', status=status)
    if status in (400, 403):
        return ArmRefused(f'Azure refused the request for {what}: {arm_message(err)}', kind=Kind.INVALID_ARGUMENT,
                          status=status)
    return ArmRefused(f'Azure answered HTTP {status} for {what}: {arm_message(err)}', status=status)
