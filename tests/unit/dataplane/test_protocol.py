"""The data-plane protocol core: requests built and answers parsed, no I/O."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from azext_bastion_native.dataplane import protocol
from azext_bastion_native.dataplane.errors import SessionRefusedError, SessionUnavailableError, DataPlaneError
from azext_bastion_native.dataplane.protocol import Endpoint, HttpAnswer, RetryPolicy, Session, Target
from azext_bastion_native.dataplane.redact import redact_text

VM_ID = '/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/vm-1'
ARM_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXNlY3JldA'


def _session(developer=False):
    return Session(endpoint_host='127.0.0.1:8443', developer=developer, node_id='node-7',
                   auth_token='auth-SECRET-1', websocket_token='ws-SECRET/2+x')


def test_mint_request_for_a_vm_has_the_upstream_form_fields():
    request = protocol.mint_request('bst.example.net', Target(VM_ID, 22), ARM_TOKEN)
    assert (request.method, request.url) == ('POST', 'https://bst.example.net/api/tokens')
    # No 'token' field at all: upstream's tunnel.py passes None, which requests drops from the form.
    assert request.form == {'resourceId': VM_ID, 'protocol': 'tcptunnel', 'workloadHostPort': '22',
                            'aztoken': ARM_TOKEN}
    assert ARM_TOKEN not in repr(request)


def test_ip_connect_uses_the_host_connect_pseudo_resource_and_hostname():
    target = Target.for_ip('sub-1', 'rg-1', '10.0.0.5', 3389)
    assert target.resource_id == ('/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/'
                                  'bh-hostConnect/10.0.0.5')
    form = protocol.mint_request('h', target, ARM_TOKEN).form
    assert form['hostname'] == '10.0.0.5' and form['workloadHostPort'] == '3389'
    assert form['resourceId'] == target.resource_id


def test_parse_mint_reads_the_three_tokens():
    body = json.dumps({'authToken': 'auth-tok', 'nodeId': 'n', 'websocketToken': 'ws-tok'}).encode()
    session = protocol.parse_mint(HttpAnswer(200, body), 'h:1', False)
    assert (session.auth_token, session.node_id, session.websocket_token) == ('auth-tok', 'n', 'ws-tok')
    assert 'auth-tok' not in repr(session) and 'ws-tok' not in repr(session)


def test_parse_mint_without_tokens_is_a_data_plane_error():
    with pytest.raises(DataPlaneError, match='without authToken'):
        protocol.parse_mint(HttpAnswer(200, b'{"nodeId": "n"}'), 'h', False)


def test_websocket_urls_per_sku_escape_the_token():
    standard = urlsplit(protocol.websocket_url(_session()))
    assert (standard.scheme, standard.netloc) == ('wss', '127.0.0.1:8443')
    assert standard.path == '/webtunnelv2/ws-SECRET%2F2%2Bx'
    assert parse_qs(standard.query) == {'X-Node-Id': ['node-7']}
    assert protocol.websocket_url(_session(developer=True)) == 'wss://127.0.0.1:8443/omni/webtunnel/ws-SECRET%2F2%2Bx'


def test_delete_request_names_the_auth_token_and_node():
    request = protocol.delete_request(_session())
    assert (request.method, request.url) == ('DELETE', 'https://127.0.0.1:8443/api/tokens/auth-SECRET-1')
    assert request.headers == {'X-Node-Id': 'node-7'}
    assert [protocol.delete_succeeded(HttpAnswer(s)) for s in (200, 204, 404, 500)] == [True, True, True, False]


def test_delete_request_without_a_node_id_has_no_x_node_id_header():
    """Bastion answered no nodeId: upstream's tunnel.py (cleanup) sends no header then, not an empty one."""
    session = Session(endpoint_host='127.0.0.1:8443', developer=False, node_id='', auth_token='a',
                      websocket_token='w')
    assert protocol.delete_request(session).headers == {}


def test_developer_connection_request_and_answer():
    endpoint = Endpoint('dev.example.net', developer=True, bastion_resource_id='/subscriptions/s/bh')
    request = protocol.developer_connection_request(endpoint, Target(VM_ID, 22), ARM_TOKEN)
    assert request.url == 'https://dev.example.net/api/connection'
    assert request.json_body == {'resourceId': VM_ID, 'bastionResourceId': '/subscriptions/s/bh', 'vmPort': '22',
                                 'azToken': ARM_TOKEN, 'connectionType': 'nativeclient'}
    assert protocol.parse_developer_connection(HttpAnswer(200, b'node-3.dev.example.net\n')) == 'node-3.dev.example.net'
    assert protocol.parse_developer_connection(HttpAnswer(200, b'"127.0.0.1:9000"')) == '127.0.0.1:9000'
    with pytest.raises(DataPlaneError):
        protocol.parse_developer_connection(HttpAnswer(200, b'<html>oops</html>'))


@pytest.mark.parametrize('status', [401, 403, 404])
def test_refusals_are_typed_carry_bastions_message_and_no_token(status):
    body = json.dumps({'message': f'Token {ARM_TOKEN} is not authorized for this VM'}).encode()
    with pytest.raises(SessionRefusedError) as caught:
        protocol.parse_mint(HttpAnswer(status, body), 'h', False, secrets=(ARM_TOKEN,))
    text = str(caught.value)
    assert f'HTTP {status}' in text and 'not authorized for this VM' in text
    assert ARM_TOKEN not in text and 'c2lnbmF0dXJl' not in text
    assert caught.value.status == status


def test_throttling_is_the_retryable_error_type():
    with pytest.raises(SessionUnavailableError):
        protocol.parse_mint(HttpAnswer(503, b'busy'), 'h', False)


def test_retry_policy_backs_off_honours_retry_after_and_is_bounded():
    policy = RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0)
    assert policy.delay(1) == 0.5 and policy.delay(2) == 1.0
    assert policy.delay(3) is None                          # three tries in all
    assert policy.delay(1, '2') == 2.0                      # the server's word wins
    assert policy.delay(1, '120') == 4.0                    # ... but capped
    assert policy.delay(1, 'soon') == 0.5                   # unreadable: our own backoff
    assert policy.delay(1, 'Wed, 21 Oct 2015 07:28:03 GMT', now=1445412480.0) == 3.0   # HTTP date


def test_redact_text_removes_paths_fields_and_jwts():
    line = ('"DELETE /api/tokens/auth-SECRET-1 HTTP/1.1" GET /webtunnelv2/wsTOK?X-Node-Id=n '
            f'aztoken={ARM_TOKEN}&x=1 Bearer abc.def')
    out = redact_text(line)
    for secret in ('auth-SECRET-1', 'wsTOK', ARM_TOKEN, 'abc.def'):
        assert secret not in out
    assert '/api/tokens/<redacted>' in out and 'X-Node-Id=n' in out


def test_the_relay_frames_no_more_than_bastion_is_known_to_take():
    """Each local read goes out as one binary frame; none may be larger than frames known to work against real
    Bastion hosts (protocol.MAX_UPLOAD_FRAME says where that knowledge comes from)."""
    from azext_bastion_native.relay import pump
    assert 4096 <= pump.READ_SIZE <= protocol.MAX_UPLOAD_FRAME
