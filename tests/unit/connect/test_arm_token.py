"""connect/arm_token.py: the expiry of the ARM token azure-cli hands out, in either of its shapes."""

import datetime

from azext_bastion_native.connect.arm_token import token_expiry


def test_token_expiry_reads_both_azure_cli_shapes():
    assert token_expiry({'expires_on': 1795900253, 'expiresOn': 'ignored'}) == 1795900253.0
    local = datetime.datetime(2030, 1, 2, 3, 4, 5)
    assert token_expiry({'expiresOn': local.strftime('%Y-%m-%d %H:%M:%S.%f')}) == local.timestamp()
    assert token_expiry({'expiresOn': 'soon'}) is None and token_expiry(None) is None
