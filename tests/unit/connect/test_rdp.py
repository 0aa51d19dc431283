"""RDP: the Windows paths (gateway .rdp file + mstsc; --disable-gateway / IP connect through a tunnel) with the
platform, HTTP and launcher injected; the Linux/macOS paths. The Linux path runs end to end in tests/e2e/test_rdp.py;
the launcher choice itself is tested in tests/unit/clients/test_rdp.py."""
import contextlib
import json
import logging
import os
import stat
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.cli.core.azclierror import AzureConnectionError

from azext_bastion_native.connect import dispatch, rdp as connect_rdp, resolve
from azext_bastion_native.connect.environment import Environment
from azext_bastion_native.dataplane import Endpoint, Target
from tests.unit.boundary import raises_as

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/win1'
ARM_TOKEN = 'arm-token-0123456789-secret'
GATEWAY_FILE = ('full address:s:10.0.0.5:3389\r\ngatewayhostname:s:bst.example\r\n'
                'gatewayaccesstoken:s:gw-secret-token\r\nenablerdsaadauth:i:0\r\n')


def _destination(port=3389, target_os='windows'):
    return resolve.Destination(Endpoint('bst-1234.bastion.azure.com'), Target(VM_ID, port), VM_ID,
                               lambda: ARM_TOKEN, target_os=target_os)


class _Recorder:
    """Stands in for the launcher: records argv and what the .rdp file held (and its mode) while it ran."""

    def __init__(self, code=0):
        self.code = code
        self.argv = None
        self.rdp_text = None
        self.rdp_mode = None
        self.dir_mode = None

    def __call__(self, argv):
        self.argv = argv
        path = argv[-1]
        if path.endswith('.rdp'):
            with open(path, encoding='utf-8', newline='') as handle:
                self.rdp_text = handle.read()
            self.rdp_mode = stat.S_IMODE(os.stat(path).st_mode)
            self.dir_mode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        return self.code


class _HttpGet:
    def __init__(self, status=200, body=GATEWAY_FILE.encode()):
        self.status = status
        self.body = body
        self.calls = []

    def __call__(self, url, headers=None, timeout=None, verify=None):
        self.calls.append({'url': url, 'headers': headers, 'timeout': timeout, 'verify': verify})
        text = self.body.decode()
        return SimpleNamespace(status_code=self.status, content=self.body, text=text, json=lambda: json.loads(text))


class _FakeTunnel:
    def __init__(self, port=50123):
        self.port = port
        self.opened_for = None
        self.closed = False

    def __call__(self, destination):
        self.opened_for = destination

        @contextlib.contextmanager
        def tunnel():
            try:
                yield self
            finally:
                self.closed = True
        return tunnel()


def _windows(recorder, http_get=None, tunnel=None):
    return Environment(system='Windows', which=lambda name: rf'C:\Windows\System32\{name}.exe'
                       if name == 'mstsc' else None, run=recorder, http_get=http_get, open_tunnel=tunnel)


def test_gateway_path_fetches_the_rdp_file_with_the_arm_token_and_opens_mstsc():
    recorder, http_get = _Recorder(), _HttpGet()
    code = connect_rdp.run_rdp(dispatch.RDP_GATEWAY_MSTSC, _destination(), _windows(recorder, http_get))
    assert code == 0
    call = http_get.calls[0]
    assert call['headers'] == {'Authorization': f'Bearer {ARM_TOKEN}'}
    url = urlsplit(call['url'])
    assert (url.scheme, url.netloc, url.path) == ('https', 'bst-1234.bastion.azure.com', '/api/rdpfile')
    assert parse_qs(url.query) == {'resourceId': [VM_ID], 'format': ['rdp'], 'rdpport': ['3389'],
                                   'enablerdsaad': ['false']}
    assert recorder.argv[0] == r'C:\Windows\System32\mstsc.exe' and len(recorder.argv) == 2
    assert recorder.rdp_text == GATEWAY_FILE
    if os.name != 'nt':
        assert (recorder.rdp_mode, recorder.dir_mode) == (0o600, 0o700)
    assert not os.path.exists(recorder.argv[-1])
    assert not os.path.exists(os.path.dirname(recorder.argv[-1]))


def test_gateway_path_with_aad_custom_port_and_configure():
    recorder, http_get = _Recorder(), _HttpGet()
    connect_rdp.run_rdp(dispatch.RDP_GATEWAY_MSTSC, _destination(port=3390), _windows(recorder, http_get),
                        configure=True, enable_aad=True)
    query = parse_qs(urlsplit(http_get.calls[0]['url']).query)
    assert query['enablerdsaad'] == ['true'] and query['rdpport'] == ['3390']
    assert recorder.argv[1] == '/edit'


def test_rdp_file_is_deleted_when_mstsc_is_interrupted():
    def interrupted(argv):
        interrupted.path = argv[-1]
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        connect_rdp.run_rdp(dispatch.RDP_GATEWAY_MSTSC, _destination(), _windows(interrupted, _HttpGet()))
    assert not os.path.exists(interrupted.path)


@pytest.mark.parametrize('status, body', [(403, b'{"message": "Forbidden for arm-token-0123456789-secret"}'),
                                          (200, b'<html>not an rdp file</html>')])
def test_gateway_refusal_is_reported_without_the_token(status, body):
    recorder = _Recorder()
    with raises_as(AzureConnectionError) as error:
        connect_rdp.run_rdp(dispatch.RDP_GATEWAY_MSTSC, _destination(), _windows(recorder, _HttpGet(status, body)))
    assert ARM_TOKEN not in str(error.value)
    assert '--disable-gateway' in str(error.value.recommendations)
    assert recorder.argv is None


def test_disable_gateway_runs_mstsc_on_a_local_tunnel_file():
    recorder, http_get, tunnel = _Recorder(code=3), _HttpGet(), _FakeTunnel(50123)
    code = connect_rdp.run_rdp(dispatch.RDP_TUNNEL_MSTSC, _destination(), _windows(recorder, http_get, tunnel))
    assert code == 3
    assert http_get.calls == []                         # no gateway, no token sent anywhere but the tunnel
    assert 'full address:s:127.0.0.1:50123\r\n' in recorder.rdp_text
    assert 'gateway' not in recorder.rdp_text
    assert tunnel.opened_for.target.resource_id == VM_ID and tunnel.closed
    assert not os.path.exists(recorder.argv[-1])


def test_rdp_command_on_windows_dispatches_to_the_gateway_and_exits_with_mstsc_code(monkeypatch):
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    monkeypatch.setattr(resolve, 'resolve_destination', lambda *_: _destination())
    recorder = _Recorder(code=2)
    with pytest.raises(SystemExit) as leaving:
        connect_rdp.rdp_command(SimpleNamespace(cli_ctx=None), 'rg', 'bastion', target_resource_id=VM_ID,
                                environment=_windows(recorder, _HttpGet()))
    assert leaving.value.code == 2
    assert recorder.rdp_text == GATEWAY_FILE


def test_rdp_command_refuses_a_linux_vm_after_looking_it_up(monkeypatch):
    from azure.cli.core.azclierror import ValidationError
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    monkeypatch.setattr(resolve, 'resolve_destination', lambda *_: _destination(target_os='linux'))
    recorder = _Recorder()
    with raises_as(ValidationError, match='Linux VM'):
        connect_rdp.rdp_command(SimpleNamespace(cli_ctx=None), 'rg', 'bastion', target_resource_id=VM_ID,
                                environment=_windows(recorder, _HttpGet()))
    assert recorder.argv is None


# -- Linux and macOS ------------------------------------------------------------------------------------
def _unix(system, programs, recorder, tunnel, waited=None):
    return Environment(system=system, which=lambda name: f'/usr/bin/{name}' if name in programs else None,
                       run=recorder, open_tunnel=tunnel,
                       wait_forever=(lambda: waited.append(True)) if waited is not None else None)


def test_linux_starts_freerdp_on_the_tunnel(monkeypatch):
    monkeypatch.setenv('DISPLAY', ':0')
    recorder, tunnel = _Recorder(code=0), _FakeTunnel(40111)
    connect_rdp.run_rdp(dispatch.RDP_TUNNEL_LOCAL_CLIENT, _destination(),
                        _unix('Linux', {'xfreerdp'}, recorder, tunnel))
    assert recorder.argv == ['/usr/bin/xfreerdp', '/v:127.0.0.1:40111']
    assert tunnel.closed


def test_linux_without_a_display_keeps_the_tunnel_and_prints_the_command_instead_of_starting_freerdp(
        monkeypatch, caplog):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    recorder, tunnel, waited = _Recorder(), _FakeTunnel(40114), []
    with caplog.at_level(logging.WARNING):
        code = connect_rdp.run_rdp(dispatch.RDP_TUNNEL_LOCAL_CLIENT, _destination(),
                                   _unix('Linux', {'xfreerdp', 'wlfreerdp'}, recorder, tunnel, waited))
    assert code == 0 and waited == [True] and recorder.argv is None
    assert 'No display here' in caplog.text and 'xfreerdp /v:127.0.0.1:40114' in caplog.text
    assert tunnel.closed


def test_linux_without_rdp_client_keeps_the_tunnel_and_prints_the_command(caplog):
    recorder, tunnel, waited = _Recorder(), _FakeTunnel(40112), []
    with caplog.at_level(logging.WARNING):
        code = connect_rdp.run_rdp(dispatch.RDP_TUNNEL_LOCAL_CLIENT, _destination(),
                                   _unix('Linux', set(), recorder, tunnel, waited))
    assert code == 0 and waited == [True] and recorder.argv is None
    assert 'xfreerdp /v:127.0.0.1:40112' in caplog.text
    assert tunnel.closed


def test_macos_opens_a_generated_rdp_file_and_waits():
    recorder, tunnel = _Recorder(), _FakeTunnel(40113)
    connect_rdp.run_rdp(dispatch.RDP_TUNNEL_LOCAL_CLIENT, _destination(), _unix('Darwin', {'open'}, recorder, tunnel))
    assert recorder.argv[:2] == ['/usr/bin/open', '-W']
    assert 'full address:s:127.0.0.1:40113' in recorder.rdp_text
    assert not os.path.exists(recorder.argv[-1])
