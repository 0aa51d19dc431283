"""RDP file retrieval and generation, and RDP client command lines (mstsc, FreeRDP, macOS open).

RDP clients: the .rdp file Bastion's gateway hands out (Windows, mstsc), a .rdp file pointing at a local tunnel, and
the local programs that can open either. The gateway's .rdp file carries a gateway access token: it is only ever
written to a 0600 file in a private directory, never logged."""

import logging
import ntpath
import os
from dataclasses import dataclass
from urllib.parse import urlencode

from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.errors import Kind, Refused

logger = logging.getLogger(__name__)

LOOPBACK = '127.0.0.1'
RDP_FILE_TIMEOUT = (10, 30)
FREERDP_PROGRAMS = ('xfreerdp3', 'xfreerdp', 'wlfreerdp3', 'wlfreerdp', 'sdl-freerdp3', 'sdl-freerdp')
# The display each FreeRDP client opens its window on (X11, Wayland, SDL: either), by the variable that names it.
DISPLAY_VARIABLES = {'xfreerdp3': ('DISPLAY',), 'xfreerdp': ('DISPLAY',), 'wlfreerdp3': ('WAYLAND_DISPLAY',),
                     'wlfreerdp': ('WAYLAND_DISPLAY',), 'sdl-freerdp3': ('DISPLAY', 'WAYLAND_DISPLAY'),
                     'sdl-freerdp': ('DISPLAY', 'WAYLAND_DISPLAY')}


class RdpFileError(Refused):
    """Bastion did not hand out an RDP file."""

    def __init__(self, message):
        super().__init__(message, 'Or connect through a local tunnel: add --disable-gateway.', Kind.UNREACHABLE)


@dataclass(frozen=True)
class RdpLauncher:
    kind: str       # 'mstsc' | 'freerdp' | 'open' (macOS: the app registered for .rdp files)
    program: str


def rdp_file_url(endpoint_host, resource_id, port, enable_aad):
    query = urlencode({'resourceId': resource_id, 'format': 'rdp', 'rdpport': str(port),
                       'enablerdsaad': 'true' if enable_aad else 'false'})
    return f'https://{endpoint_host}/api/rdpfile?{query}'


def fetch_rdp_file(endpoint_host, resource_id, port, enable_aad, arm_token, verify=True, http_get=None):
    """The .rdp file Bastion's gateway makes for ``resource_id``: GET /api/rdpfile with the ARM token.

    ``http_get(url, headers=..., timeout=..., verify=...)`` is requests.get unless given."""
    if http_get is None:
        import requests
        http_get = requests.get
    url = rdp_file_url(endpoint_host, resource_id, port, enable_aad)
    try:
        response = http_get(url, headers={'Authorization': f'Bearer {arm_token}'}, timeout=RDP_FILE_TIMEOUT,
                            verify=verify)
    except Exception as err:  # pylint: disable=broad-except
        # requests' messages can quote the request; name the failure's kind only.
        raise RdpFileError(f'Could not reach the Bastion data plane at {endpoint_host} ({type(err).__name__}).') \
            from None
    if response.status_code != 200:
        raise RdpFileError(f'Bastion did not hand out an RDP file (HTTP {response.status_code}): '
                           f'{_error_message(response, arm_token)}')
    text = response.content.decode('utf-8-sig', 'replace')
    if 'full address:s:' not in text:
        raise RdpFileError('Bastion answered /api/rdpfile with something that is not an RDP file.')
    return text


def _error_message(response, secret):
    try:
        message = response.json().get('message')
    except (ValueError, AttributeError):
        message = None
    message = message or (response.text or '')[:300] or 'no details'
    return message.replace(secret, '***') if secret else message


def tunnel_rdp_file(port, host=LOOPBACK):
    """A .rdp file for a local tunnel: the client connects to ``host:port`` and asks for credentials."""
    lines = [
        f'full address:s:{host}:{port}',
        f'alternate full address:s:{host}:{port}',
        'prompt for credentials:i:1',
        'administrative session:i:0',
        'authentication level:i:2',
    ]
    return '\r\n'.join(lines) + '\r\n'


def no_display(client, environ=None):
    """Linux with neither DISPLAY nor WAYLAND_DISPLAY set (an ssh session, a server): no RDP client can open its
    window here."""
    environ = os.environ if environ is None else environ
    return client == 'linux' and not any(environ.get(name) for name in ('DISPLAY', 'WAYLAND_DISPLAY'))


def find_launcher(client, which=find_program, environ=None):
    """The RDP client to start on this machine ('windows' | 'linux' | 'other'), or None when none is found; on
    Linux only a FreeRDP client whose display is there (see no_display)."""
    if client == 'windows':
        program = which('mstsc') or which('mstsc.exe')
        return RdpLauncher('mstsc', program or _system32_mstsc(environ))
    environ = os.environ if environ is None else environ
    for name in FREERDP_PROGRAMS:
        if client == 'linux' and not any(environ.get(variable) for variable in DISPLAY_VARIABLES[name]):
            continue
        program = which(name)
        if program:
            return RdpLauncher('freerdp', program)
    if client == 'other':
        program = which('open')
        if program:
            return RdpLauncher('open', program)
    return None


def _system32_mstsc(environ=None):
    """mstsc's own absolute path when PATH does not list it: a bare 'mstsc' would be looked up in the current
    directory first by CreateProcess."""
    environ = os.environ if environ is None else environ
    return ntpath.join(environ.get('SystemRoot') or environ.get('SYSTEMROOT') or 'C:\\Windows', 'System32', 'mstsc.exe')


def launcher_argv(launcher, port=None, rdp_file=None, configure=False):
    """argv for ``launcher``: mstsc and open take the .rdp file; FreeRDP takes the tunnel address."""
    if launcher.kind == 'mstsc':
        return [launcher.program] + (['/edit'] if configure else []) + [rdp_file]
    if launcher.kind == 'open':
        # -W: wait until the app quits, so the tunnel and the .rdp file live as long as the session.
        return [launcher.program, '-W', rdp_file]
    return [launcher.program, f'/v:{LOOPBACK}:{port}']


def manual_connect_hint(port, without_display=False):
    """What to run by hand when no RDP client is installed, or (``without_display``) none could open a window."""
    if without_display:
        return (f'No display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so no RDP client was started. The '
                f'tunnel is open on {LOOPBACK}:{port}: connect an RDP client to it, e.g. from a machine with a '
                f'display `ssh -L {port}:{LOOPBACK}:{port} THIS_MACHINE` and there `xfreerdp /v:{LOOPBACK}:{port} '
                '/u:USER`. Press Ctrl+C to close the tunnel.')
    return (f'No RDP client was found. The tunnel is open on {LOOPBACK}:{port}: connect your RDP client to it, '
            f'e.g. `xfreerdp /v:{LOOPBACK}:{port} /u:USER` (Debian/Ubuntu package freerdp2-x11 or freerdp3-x11). '
            'Press Ctrl+C to close the tunnel.')
