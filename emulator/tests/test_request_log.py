"""Redaction of recorded requests: form fields, JSON keys, token path segments, and any issued secret."""
from bastion_emulator.request_log import REDACTED, redact


def test_form_fields_and_json_keys_are_redacted():
    form = "resourceId=%2Fsubscriptions%2Fx&protocol=tcptunnel&aztoken=eyJhbGciOi.abc.def&token=&client_secret=s3cr3t"
    cleaned = redact(form, set())
    assert "eyJhbGciOi" not in cleaned and "s3cr3t" not in cleaned
    assert f"aztoken={REDACTED}" in cleaned and "protocol=tcptunnel" in cleaned
    body = '{"resourceId": "/x", "azToken": "tok-value-123", "authToken": "auth-456", "nodeId": "n1"}'
    cleaned = redact(body, set())
    assert "tok-value-123" not in cleaned and "auth-456" not in cleaned and '"nodeId": "n1"' in cleaned


def test_token_path_segments_are_redacted():
    assert redact("/webtunnelv2/wsTOKENvalue", set()) == f"/webtunnelv2/{REDACTED}"
    assert redact("/omni/webtunnel/wsTOKENvalue", set()) == f"/omni/webtunnel/{REDACTED}"
    assert redact("/api/tokens/authTOKENvalue", set()) == f"/api/tokens/{REDACTED}"
    assert redact("/api/tokens", set()) == "/api/tokens"


def test_issued_secrets_are_redacted_wherever_they_appear():
    secret = "an-issued-secret-value"
    assert redact(f"X-Note={secret}&other=1", {secret}) == f"X-Note={REDACTED}&other=1"


def test_secrets_that_are_not_url_safe_are_redacted_too():
    certificate = "AAAAB3NzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20/x+y=="    # base64: '/', '+', '='
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    text = f"cert={certificate}&note=Bearer {jwt}&keep=plain-value-here"
    cleaned = redact(text, {certificate, jwt})
    assert certificate not in cleaned and jwt not in cleaned and "plain-value-here" in cleaned
