"""dataplane/settings.py: CA bundle, verification and proxies read as azure-cli reads them, and the User-Agent."""

import ssl
from types import SimpleNamespace

import pytest

from azext_bastion_native.dataplane import settings as settings_module
from azext_bastion_native.dataplane.settings import ConnectionSettings, ResumingContext, client_user_agent


def test_settings_follow_azure_cli_variables(tmp_path):
    bundle = tmp_path / 'ca.pem'
    settings = ConnectionSettings.from_environ({'REQUESTS_CA_BUNDLE': str(bundle)})
    assert settings.verify and settings.requests_verify() == str(bundle)
    off = ConnectionSettings.from_environ({'AZURE_CLI_DISABLE_CONNECTION_VERIFICATION': '1'})
    assert off.requests_verify() is False
    context = off.ssl_context()
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_proxy_settings_honour_https_proxy_and_no_proxy():
    env = {'HTTPS_PROXY': 'http://proxy:3128', 'NO_PROXY': 'localhost,.internal.example'}
    settings = ConnectionSettings(environ=env)
    assert settings.proxy_for('bst-1.bastion.azure.com') == 'http://proxy:3128'
    assert settings.proxy_for('a.internal.example') is None
    assert settings.proxy_for('localhost', 8443) is None
    assert ConnectionSettings(environ={}).proxy_for('bst') is None


def test_the_ca_bundle_is_requests_then_curls_then_certifis(monkeypatch):
    both = {'REQUESTS_CA_BUNDLE': '/etc/requests.pem', 'CURL_CA_BUNDLE': '/etc/curl.pem'}
    assert ConnectionSettings.from_environ(both).ca_bundle == '/etc/requests.pem'
    assert ConnectionSettings.from_environ({'CURL_CA_BUNDLE': '/etc/curl.pem'}).ca_bundle == '/etc/curl.pem'
    monkeypatch.setattr(settings_module, '_default_ca_bundle', lambda: '/certifi/cacert.pem')
    assert ConnectionSettings.from_environ({}).ca_bundle == '/certifi/cacert.pem'
    assert ConnectionSettings.from_environ({'REQUESTS_CA_BUNDLE': ''}).requests_verify() == '/certifi/cacert.pem'
    assert ConnectionSettings(ca_bundle=None).requests_verify() is True


@pytest.mark.parametrize('environ, proxy', [
    ({'HTTPS_PROXY': 'http://upper:1', 'https_proxy': 'http://lower:1'}, 'http://lower:1'),    # as urllib does
    ({'https_proxy': 'http://lower:1', 'HTTPS_PROXY': 'http://upper:1'}, 'http://lower:1'),
    ({'ALL_PROXY': 'http://all:1', 'HTTPS_PROXY': 'http://https:1'}, 'http://https:1'),
    ({'all_proxy': 'http://all:1'}, 'http://all:1'),
    ({'HTTPS_PROXY': '', 'ALL_PROXY': 'http://all:1'}, 'http://all:1'),                        # empty: not set
    ({'HTTP_PROXY': 'http://plain:1'}, None),                                                  # not for https
])
def test_which_proxy_is_used(environ, proxy):
    assert ConnectionSettings(environ=environ).proxy_for('bst-1.bastion.azure.com') == proxy


def test_no_proxy_by_port_wildcard_and_lower_case_first():
    env = {'HTTPS_PROXY': 'http://proxy:3128', 'NO_PROXY': 'bst-1.bastion.azure.com', 'no_proxy': 'other.example'}
    settings = ConnectionSettings(environ=env)
    assert settings.proxy_for('bst-1.bastion.azure.com') == 'http://proxy:3128'     # no_proxy wins over NO_PROXY
    assert settings.proxy_for('other.example') is None
    by_port = ConnectionSettings(environ={'HTTPS_PROXY': 'http://proxy:3128', 'NO_PROXY': 'bst:8443'})
    assert by_port.proxy_for('bst', 8443) is None and by_port.proxy_for('bst', 443) == 'http://proxy:3128'
    assert ConnectionSettings(environ={'HTTPS_PROXY': 'http://p:1', 'NO_PROXY': '*'}).proxy_for('bst') is None


def test_user_agent_carries_azure_clis_product_token_and_ours():
    assert client_user_agent('2.91.0', '0.1.0') == 'AZURECLI/2.91.0 bastion-native/0.1.0'
    assert client_user_agent('2.91.0') == 'AZURECLI/2.91.0 bastion-native'
    assert client_user_agent(None, '0.1.0') == 'bastion-native/0.1.0'
    assert ConnectionSettings.from_environ({}, user_agent='AZURECLI/2 x').user_agent == 'AZURECLI/2 x'


def test_a_session_is_remembered_per_host_only_with_a_ticket():
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    with_ticket = SimpleNamespace(has_ticket=True)
    assert context.remember(SimpleNamespace(session=with_ticket, server_hostname='bst-1')) is True
    assert context.remember(SimpleNamespace(session=SimpleNamespace(has_ticket=False), server_hostname='bst-2')) \
        is False
    assert context.remember(SimpleNamespace(session=None, server_hostname='bst-3')) is False
    assert context.resumable_sessions == {'bst-1': with_ticket}
