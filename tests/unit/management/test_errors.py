"""management/errors.py: ARM's answers as ArmRefused naming the resource and the fix."""
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from azext_bastion_native.errors import Kind
from azext_bastion_native.management.errors import ArmNotFound, ArmRefused, arm_errors

WHAT = "Bastion host 'bh' in resource group 'rg'"


def _answer(error_type, status, code='', message='the answer'):
    error = error_type(message=message)
    error.status_code = status
    error.error = SimpleNamespace(code=code, message=message)
    return error


def _refusal(error, **options):
    with pytest.raises(ArmRefused) as refused:
        with arm_errors(WHAT, **options):
            raise error
    return refused.value


def test_not_found_names_the_resource_and_the_hint():
    refused = _refusal(_answer(ResourceNotFoundError, 404, 'ResourceNotFound', 'gone'), not_found_hint='az list')
    assert isinstance(refused, ArmNotFound) and refused.kind is Kind.NOT_FOUND
    assert refused.message == f'{WHAT} was not found. (ResourceNotFound) gone' and refused.recommendation == 'az list'


def test_not_found_passes_through_for_the_wait_getter():
    error = _answer(ResourceNotFoundError, 404)
    with pytest.raises(ResourceNotFoundError) as raised:
        with arm_errors(WHAT, pass_not_found=True):
            raise error
    assert raised.value is error


@pytest.mark.parametrize('status, kind, words, advice', [
    (412, Kind.AZURE_RESPONSE, 'was changed by someone else', 'reads the current state first'),
    (409, Kind.AZURE_RESPONSE, 'is busy with another operation', 'az network bastion wait --updated'),
    (429, Kind.AZURE_RESPONSE, 'Azure is throttling requests', 'Retry after a short while.'),
    (400, Kind.INVALID_ARGUMENT, 'Azure refused the request for', None),
    (403, Kind.INVALID_ARGUMENT, 'Azure refused the request for', None),
    (500, Kind.AZURE_RESPONSE, 'Azure answered HTTP 500 for', None)])
def test_each_http_answer_is_its_kind(status, kind, words, advice):
    refused = _refusal(_answer(HttpResponseError, status, 'Code'))
    assert refused.kind is kind and refused.status == status
    assert words in refused.message and WHAT in refused.message
    assert refused.recommendation == advice or advice in refused.recommendation


@pytest.mark.parametrize('code', ['NoRegisteredProviderFound', 'InvalidApiVersionParameter', 'InvalidResourceType'])
@pytest.mark.parametrize('error_type', [HttpResponseError, ResourceNotFoundError])
def test_an_api_version_the_cloud_does_not_serve_names_the_pinned_version(code, error_type):
    from azext_bastion_native.management.api_version import NETWORK_API_VERSION
    refused = _refusal(_answer(error_type, 400, code, 'not served'))
    assert refused.kind is Kind.AZURE_RESPONSE and NETWORK_API_VERSION in refused.message
    assert f'({code}) not served' in refused.message and 'az cloud show' in refused.recommendation


def test_no_answer_is_unreachable():
    refused = _refusal(ServiceRequestError('connection refused'))
    assert refused.kind is Kind.UNREACHABLE
    assert refused.message == 'Could not reach Azure Resource Manager: connection refused'
