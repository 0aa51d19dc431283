"""management/api_version.py: the one api-version this extension sends, pinned in the request URL."""

from azext_bastion_native.management.api_version import NETWORK_API_VERSION, pin_api_version


def test_pin_changes_only_the_api_version():
    url = ('https://management.azure.com/subscriptions/s/providers/Microsoft.Network/bastionHosts'
           '?$filter=a%20eq%20b&API-Version=2026-03-01&$skiptoken=x%2By')
    assert pin_api_version(url) == url.replace('2026-03-01', NETWORK_API_VERSION)
    assert pin_api_version('https://h/p?x=1') == 'https://h/p?x=1'
