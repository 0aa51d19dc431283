"""Redaction of data-plane secrets: names in any case, bearer credentials, and credentials inside URLs."""

import logging

import pytest

from azext_bastion_native.dataplane.redact import install_log_redaction, redact_text


@pytest.mark.parametrize('text, secret', [
    ('AuthToken=auth-SECRET-1', 'auth-SECRET-1'),
    ('AZTOKEN=arm-SECRET-2&x=1', 'arm-SECRET-2'),
    ('{"WebSocketToken": "ws-SECRET-3"}', 'ws-SECRET-3'),
    ('authorization: bearer opaque-SECRET-4', 'opaque-SECRET-4'),
    ('Authorization: BEARER opaque-SECRET-5', 'opaque-SECRET-5'),
    ('DELETE /API/Tokens/auth-SECRET-6 HTTP/1.1', 'auth-SECRET-6'),
])
def test_names_are_matched_in_any_case(text, secret):
    out = redact_text(text)
    assert secret not in out and '<redacted>' in out


@pytest.mark.parametrize('url, secret', [
    ('http://alice:pr0xy-SECRET@proxy.example:3128', 'pr0xy-SECRET'),
    ('https://alice:p%40ss-SECRET@proxy.example', 'p%40ss-SECRET'),
    ('socks5://bob:p@ss-SECRET@10.0.0.1:1080', 'ss-SECRET'),          # an unencoded @ in the password
    ('HTTP://token-only-SECRET@proxy', 'token-only-SECRET'),
])
def test_credentials_inside_a_url_are_removed_and_the_host_kept(url, secret):
    # websockets.exceptions.InvalidProxy's text quotes the proxy URL as given
    message = f"{url} isn't a valid proxy: scheme must be http or https"
    out = redact_text(message)
    assert secret not in out and '<redacted>@' in out
    assert url.rsplit('@', 1)[1] in out                                   # where it went is still said


def test_text_without_secrets_is_unchanged():
    text = 'Could not reach the Bastion data plane at bst.example:443 (ConnectionRefusedError); see https://aka.ms/x'
    assert redact_text(text) == text


def test_the_websockets_invalid_proxy_message_is_redacted_in_logs(caplog):
    from websockets.exceptions import InvalidProxy
    install_log_redaction()
    error = InvalidProxy('ftp://carol:pr0xy-SECRET@proxy:21', 'scheme ftp is not supported')
    with caplog.at_level(logging.DEBUG, logger='websockets.client'):
        logging.getLogger('websockets.client').debug('proxy failed: %s', error)
    assert 'pr0xy-SECRET' not in caplog.text and 'proxy:21' in caplog.text
