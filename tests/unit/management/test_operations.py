"""wait's result transform and the handler that keeps several deletes quiet."""

from types import SimpleNamespace

import pytest
from knack.util import CLIError

from azext_bastion_native.errors import Refused
from azext_bastion_native.management.operations import fail_on_wait_timeout, no_output_for_deletes


def test_a_timed_out_wait_is_refused_and_anything_else_passes():
    with pytest.raises(Refused) as refused:
        fail_on_wait_timeout(CLIError('Wait operation timed-out after 3 seconds'))
    assert 'timed-out after 3 seconds' in refused.value.message and '--timeout' in refused.value.recommendation
    assert fail_on_wait_timeout(None) is None


def _context(command):
    return SimpleNamespace(invocation=SimpleNamespace(data={'command_string': command}))


@pytest.mark.parametrize('command, result, printed', [
    ('network bastion delete', [None, None], None),
    ('network bastion delete', [None, {'x': 1}], [None, {'x': 1}]),
    ('network bastion show', [None, None], [None, None]),
    ('network bastion delete', None, None),
])
def test_several_deletes_print_nothing(command, result, printed):
    event_data = {'result': result}
    no_output_for_deletes(_context(command), event_data=event_data)
    assert event_data['result'] == printed
