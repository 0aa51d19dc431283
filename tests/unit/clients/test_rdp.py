"""clients/rdp.py: the .rdp file from Bastion's gateway (and its refusals, never with the token), the local tunnel's
.rdp file, which RDP client is started on each OS and with what argv."""
import pytest

from azext_bastion_native.clients import rdp
from azext_bastion_native.errors import Kind

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


@pytest.mark.parametrize('display, installed, expected', [
    ({'WAYLAND_DISPLAY': 'wayland-0'}, {'xfreerdp', 'wlfreerdp'}, 'wlfreerdp'),    # no X server: the Wayland one
    ({'DISPLAY': ':1'}, {'xfreerdp', 'wlfreerdp'}, 'xfreerdp'),
    ({'WAYLAND_DISPLAY': 'wayland-0'}, {'xfreerdp'}, None),
    ({'WAYLAND_DISPLAY': 'wayland-0'}, {'xfreerdp', 'sdl-freerdp'}, 'sdl-freerdp'),
])
def test_linux_picks_the_freerdp_client_of_the_display_there_is(display, installed, expected):
    launcher = rdp.find_launcher('linux', lambda name: '/usr/bin/' + name if name in installed else None,
                                 environ=display)
    assert (launcher.program.rsplit('/', 1)[-1] if launcher else None) == expected


def test_freerdp_is_preferred_on_macos_when_installed():
    assert rdp.find_launcher('other', lambda name: '/opt/bin/' + name if name in ('xfreerdp', 'open') else None) \
        == rdp.RdpLauncher('freerdp', '/opt/bin/xfreerdp')


def test_tunnel_rdp_file_points_at_loopback():
    text = rdp.tunnel_rdp_file(5555)
    assert text.startswith('full address:s:127.0.0.1:5555\r\n') and text.endswith('\r\n')


def test_mstsc_not_on_path_is_started_from_system32_not_by_bare_name():
    launcher = rdp.find_launcher('windows', lambda _: None, environ={'SystemRoot': r'D:\Windows'})
    assert launcher.program == r'D:\Windows\System32\mstsc.exe'


class _Response:
    def __init__(self, status_code=200, content=b'', json_body=None):
        self.status_code, self.content, self._json = status_code, content, json_body
        self.text = content.decode('utf-8', 'replace')

    def json(self):
        if self._json is None:
            raise ValueError('not JSON')
        return self._json


def _fetch(answer, token='ARM-SECRET'):
    calls = []

    def http_get(url, **kwargs):
        calls.append((url, kwargs))
        if isinstance(answer, Exception):
            raise answer
        return answer
    return rdp.fetch_rdp_file('bst-1.bastion.azure.com', VM_ID, 3390, True, token, verify='/ca.pem',
                              http_get=http_get), calls


def test_the_gateway_file_loses_its_bom_and_the_request_verifies_as_asked():
    text, [(_, kwargs)] = _fetch(_Response(content='\ufefffull address:s:bst:443\r\n'.encode('utf-8')))
    assert text == 'full address:s:bst:443\r\n'
    assert kwargs['verify'] == '/ca.pem' and kwargs['timeout'] == rdp.RDP_FILE_TIMEOUT


@pytest.mark.parametrize('answer, phrase', [
    (_Response(403, b'{"message": "token ARM-SECRET is not allowed"}', {'message': 'token ARM-SECRET is not allowed'}),
     'HTTP 403): token *** is not allowed'),
    (_Response(502, b'Bad gateway ARM-SECRET'), 'HTTP 502): Bad gateway ***'),
    (_Response(500, b''), 'HTTP 500): no details'),
    (_Response(200, b'<html>sign in</html>'), 'something that is not an RDP file'),
    (ConnectionError('https://bst-1/api/rdpfile?resourceId=... ARM-SECRET'),
     'Could not reach the Bastion data plane at bst-1.bastion.azure.com (ConnectionError).'),
])
def test_the_gateway_refusing_is_unreachable_with_the_tunnel_as_the_way_out_never_the_token(answer, phrase):
    with pytest.raises(rdp.RdpFileError) as refused:
        _fetch(answer)
    assert phrase in refused.value.message and 'ARM-SECRET' not in refused.value.message
    assert refused.value.kind is Kind.UNREACHABLE and '--disable-gateway' in refused.value.recommendation


def test_each_launcher_kind_gets_its_argv():
    assert rdp.launcher_argv(rdp.RdpLauncher('mstsc', 'mstsc.exe'), rdp_file='a.rdp') == ['mstsc.exe', 'a.rdp']
    assert rdp.launcher_argv(rdp.RdpLauncher('mstsc', 'mstsc.exe'), rdp_file='a.rdp', configure=True) == \
        ['mstsc.exe', '/edit', 'a.rdp']
    assert rdp.launcher_argv(rdp.RdpLauncher('open', '/usr/bin/open'), rdp_file='a.rdp') == \
        ['/usr/bin/open', '-W', 'a.rdp']
    assert rdp.launcher_argv(rdp.RdpLauncher('freerdp', 'xfreerdp'), port=40100) == ['xfreerdp', '/v:127.0.0.1:40100']


def test_mstsc_on_path_is_used_and_no_client_is_none():
    assert rdp.find_launcher('windows', lambda name: r'C:\bin\mstsc.exe' if name == 'mstsc' else None) == \
        rdp.RdpLauncher('mstsc', r'C:\bin\mstsc.exe')
    assert rdp.find_launcher('other', lambda _: None) is None
    assert rdp.find_launcher('linux', lambda name: '/usr/bin/' + name, environ={}) is None   # no display


@pytest.mark.parametrize('client, environ, expected', [
    ('linux', {}, True), ('linux', {'DISPLAY': ''}, True), ('linux', {'DISPLAY': ':0'}, False),
    ('linux', {'WAYLAND_DISPLAY': 'wayland-0'}, False), ('other', {}, False), ('windows', {}, False)])
def test_no_display_is_linux_without_an_x_or_wayland_display(client, environ, expected):
    assert rdp.no_display(client, environ) is expected


def test_the_manual_hint_names_the_tunnel_port_and_why():
    assert 'xfreerdp /v:127.0.0.1:40100 /u:USER' in rdp.manual_connect_hint(40100)
    headless = rdp.manual_connect_hint(40100, without_display=True)
    assert headless.startswith('No display here') and 'ssh -L 40100:127.0.0.1:40100' in headless
