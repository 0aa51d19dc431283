"""dataplane/errors.py: the data-plane errors as the callers tell them apart: refused (do not retry), unavailable
(a request never sent may be sent again; one whose answer was lost may not), the websocket after a minted session."""
import pytest

from azext_bastion_native.dataplane import DataPlaneError
from azext_bastion_native.dataplane.errors import (AnswerLostError, NotSentError, SessionRefusedError,
                                                   SessionUnavailableError, WebsocketOpenError)


@pytest.mark.parametrize('error_type', [SessionRefusedError, SessionUnavailableError, NotSentError, AnswerLostError,
                                        WebsocketOpenError])
def test_every_error_is_a_data_plane_error_with_its_message_and_status(error_type):
    error = error_type('Bastion refused the tunnel session (HTTP 403)', 403)
    assert isinstance(error, DataPlaneError)
    assert (str(error), error.message, error.status) == ('Bastion refused the tunnel session (HTTP 403)',
                                                         'Bastion refused the tunnel session (HTTP 403)', 403)
    assert error_type('no answer').status is None


def test_sent_or_not_is_told_apart_within_unavailable():
    not_sent, lost = NotSentError('could not connect'), AnswerLostError('connection closed before the answer')
    assert isinstance(not_sent, SessionUnavailableError) and isinstance(lost, SessionUnavailableError)
    assert not isinstance(not_sent, AnswerLostError) and not isinstance(lost, NotSentError)
    assert not isinstance(SessionRefusedError('no'), SessionUnavailableError)
    assert not isinstance(WebsocketOpenError('502', 502), (SessionRefusedError, SessionUnavailableError))


def test_unavailable_keeps_the_servers_retry_after():
    assert SessionUnavailableError('busy', 429, retry_after='7').retry_after == '7'
    assert NotSentError('could not connect').retry_after is None
