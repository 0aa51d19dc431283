"""`az network bastion forward` end to end against the fleet world (fleet-rg: web-1..3, each its own sshd and web
server; win-1; isolated-1 on a network the host does not reach): real curl through the SOCKS5 proxy by name, real ssh
through OpenBSD nc's SOCKS5 and through two -L forwards at once (each VM answering with its own marker), every SOCKS5
reply code from a real handshake, a bad -L target refusing the whole command, the ready line under --query, and
SIGINT/SIGTERM/SIGHUP/--timeout ending with the right exit code and no session left."""

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess

import pytest

from bastion_emulator.testing.az_login import az_executable
from bastion_emulator.testing.fleet import FLEET_RG, WEB_PORT, start_fleet, start_web_server
from bastion_emulator.testing.sshd import sshd_available
from tests.conftest import make_short_dir
from tests.e2e.tunnel_helpers import HOST, RG, RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e

NC = shutil.which('nc.openbsd') or shutil.which('nc')


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    if not sshd_available():
        pytest.skip('OpenSSH server (sshd) is not installed')
    running = start_fleet(tmp_path_factory.mktemp('forward-fleet'), count=3)
    runtime = make_short_dir('bn-runtime-')     # the connection agent's socket (--background) goes in it
    running.az_env['XDG_RUNTIME_DIR'] = str(runtime)
    # linux-vm of the host's own resource group (demo-rg), for NAME.RESOURCEGROUP: a web server naming it
    web = start_web_server('linux-vm')
    running.point('linux-vm', WEB_PORT, *web.server_address[:2], group=RG)
    yield running
    running.az('network', 'bastion', 'agent', 'stop', check=False)
    web.shutdown()
    running.stop()
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def forward(fleet, tmp_path):
    """Start `forward` with the given arguments (VMs of fleet-rg by name); every one started is stopped after."""
    started = []

    def start(*args):
        running = RunningTunnel(fleet.az_env, '--vm-resource-group', FLEET_RG, *args, command='forward',
                                stderr_path=tmp_path / f'forward-{len(started)}.err')
        started.append(running)
        return running
    yield start
    for running in started:
        running.stop()
    assert sessions_drain(fleet.emulator)


def _ssh(fleet, tmp_path, port_or_proxy, host='127.0.0.1', command='echo "$BASTION_VM"'):
    user = next(iter(fleet.sshds.values())).user
    if isinstance(port_or_proxy, int):
        route = ['-p', str(port_or_proxy)]
    else:
        route = ['-o', f'ProxyCommand={port_or_proxy}']
    return subprocess.run(['ssh', '-F', 'none', '-i', str(fleet.client_key), '-o', 'BatchMode=yes',
                           '-o', 'StrictHostKeyChecking=no', '-o', f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                           *route, f'{user}@{host}', command],
                          capture_output=True, text=True, timeout=120, check=False)


def _curl(socks_port, url):
    return subprocess.run(['curl', '-sS', '--max-time', '60', '--socks5-hostname', f'127.0.0.1:{socks_port}', url],
                          capture_output=True, text=True, timeout=90, check=False)


def socks_reply(port, host, target_port):
    """A raw SOCKS5 CONNECT by name (socks5h): the reply code, or None when the proxy closed without one."""
    with socket.create_connection(('127.0.0.1', port), timeout=60) as sock:
        sock.sendall(b'\x05\x01\x00')
        assert sock.recv(2) == b'\x05\x00'
        name = host.encode()
        sock.sendall(b'\x05\x01\x00\x03' + bytes((len(name),)) + name + struct.pack('!H', target_port))
        answer = b''
        while len(answer) < 10:
            chunk = sock.recv(10 - len(answer))
            if not chunk:
                return None
            answer += chunk
        return answer[1]


def test_curl_reaches_each_vms_web_server_by_name_through_socks5(fleet, forward):
    running = forward('-D', '0')
    assert running.ready['forwards'] == [] and running.ready['socks']['address'] == '127.0.0.1'
    port = running.ready['socks']['port']
    for vm in ('web-1', 'web-3', 'web-2'):
        fetched = _curl(port, f'http://{vm}:{WEB_PORT}/')
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == f'{vm}\n'
    other_group = _curl(port, f'http://linux-vm.{RG}:{WEB_PORT}/')     # NAME.RESOURCEGROUP
    assert other_group.returncode == 0 and other_group.stdout == 'linux-vm\n', other_group.stderr


def test_ssh_through_openbsd_nc_socks5_by_name_and_by_private_ip(fleet, forward, tmp_path):
    if NC is None:
        pytest.skip('OpenBSD netcat (nc -X 5) is not installed')
    port = forward('-D', '0').ready['socks']['port']
    proxy = f'{NC} -X 5 -x 127.0.0.1:{port} %h %p'
    by_name = _ssh(fleet, tmp_path, proxy, host='web-2')
    assert by_name.returncode == 0, by_name.stderr[-2000:]
    assert by_name.stdout.strip() == 'web-2'
    by_ip = _ssh(fleet, tmp_path, proxy, host='10.0.0.103')        # web-3's private IP: IP connect, port 22
    assert by_ip.returncode == 0, by_ip.stderr[-2000:]
    assert by_ip.stdout.strip() == 'web-3'


def test_two_local_forwards_reach_their_own_vms_at_once(fleet, forward, tmp_path):
    running = forward('-L', '0:web-1:22', '-L', f'127.0.0.1:0:{fleet.vm_id("web-3")}:22')
    first, second = running.ready['forwards']
    assert (first['target'], first['targetPort']) == ('web-1', 22)
    assert second['target'] == fleet.vm_id('web-3') and running.ready['socks'] is None
    results = [_ssh(fleet, tmp_path, item['port']) for item in (first, second, first)]
    assert [result.stdout.strip() for result in results] == ['web-1', 'web-3', 'web-1'], \
        [result.stderr[-500:] for result in results]


def test_every_socks5_reply_code(fleet, forward):
    port = forward('-D', '0').ready['socks']['port']
    assert socks_reply(port, 'web-1', WEB_PORT) == 0x00
    assert socks_reply(port, 'no-such-vm', 22) == 0x04             # unknown name: host unreachable
    assert socks_reply(port, 'isolated-1', 22) == 0x03             # not in a network the host reaches
    assert socks_reply(port, '192.168.7.7', 22) == 0x03            # an address outside those networks
    assert socks_reply(port, '10.0.0.101', WEB_PORT) == 0x02       # IP connect: 22 and 3389 only (the table)
    assert socks_reply(port, 'web-1', 9) == 0x05                   # Bastion: nothing listens there
    fleet.emulator.post('/_emulator/vm-power', json={'vm_id': fleet.vm_id('web-2'), 'power_state': 'deallocated'})
    try:
        assert socks_reply(port, 'web-2', 22) == 0x05              # Bastion: the VM is not running
    finally:
        fleet.emulator.post('/_emulator/vm-power', json={'vm_id': fleet.vm_id('web-2'), 'power_state': 'running'})
    assert socks_reply(port, 'web-2', 22) == 0x00


@pytest.mark.parametrize('bad,said', [
    ('0:no-such-vm:22', "No VM named 'no-such-vm'"),
    ('0:isolated-1:22', 'virtual network'),
    ('0:10.0.0.101:8080', '22 and 3389'),
    ('0:web-2:22', 'not running'),
])
def test_one_bad_local_forward_refuses_the_command_and_nothing_listens(fleet, bad, said):
    if 'web-2' in bad:
        fleet.emulator.post('/_emulator/vm-power', json={'vm_id': fleet.vm_id('web-2'), 'power_state': 'stopped'})
    try:
        result = fleet.az('network', 'bastion', 'forward', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                          '-L', '0:web-1:22', '-L', bad, '-D', '0', check=False, timeout=90)
    finally:
        fleet.emulator.post('/_emulator/vm-power', json={'vm_id': fleet.vm_id('web-2'), 'power_state': 'running'})
    assert result.returncode != 0 and result.stdout == ''          # no ready line: nothing listened
    assert f'-L {bad}' in result.stderr and said in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert not fleet.emulator.get('/_emulator/sessions').json()


def test_arguments_are_checked_before_any_call(fleet):
    for args, said in ((('-L', '8080:web-1'), 'is not [BIND:]PORT:VM:VMPORT'), (('-L', '0:web-1:0'), 'not a port'),
                       (('-D', '70000'), 'not a port'), ((), 'at least one -L')):
        result = fleet.az('network', 'bastion', 'forward', '-g', RG, '-n', HOST, *args, check=False)
        assert result.returncode != 0 and said in result.stderr and 'Traceback' not in result.stderr, result.stderr


def test_query_prints_the_socks_port_alone(fleet):
    with subprocess.Popen([az_executable(), 'network', 'bastion', 'forward', '-g', RG, '-n', HOST,
                           '-D', '0', '--query', 'socks.port', '-o', 'tsv'], env=fleet.az_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        try:
            port = int(process.stdout.readline())
            assert socks_reply(port, 'linux-vm', 9) in (0x04, 0x05)     # it is that proxy, answering
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 130
    assert sessions_drain(fleet.emulator)


@pytest.mark.parametrize('signum,code', [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signals_end_it_with_their_exit_code_and_no_session_left(fleet, forward, tmp_path, signum, code):
    running = forward('-L', '0:web-1:22', '-D', '0')
    with subprocess.Popen(['ssh', '-F', 'none', '-i', str(fleet.client_key), '-o', 'BatchMode=yes',
                           '-o', 'StrictHostKeyChecking=no', '-o', f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                           '-p', str(running.ready['forwards'][0]['port']),
                           f'{next(iter(fleet.sshds.values())).user}@127.0.0.1', 'echo up; sleep 60'],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as ssh:
        assert ssh.stdout.readline().strip() == 'up'
        assert fleet.emulator.get('/_emulator/sessions').json()        # the live connection's session
        running.process.send_signal(signum)
        assert running.wait(30) == code
        assert sessions_drain(fleet.emulator)
        ssh.wait(30)


def test_timeout_ends_it_with_exit_code_0(fleet, forward):
    running = forward('-D', '0', '--timeout', '2')
    assert running.wait(60) == 0


def test_headless_chromium_loads_a_page_from_a_vm_by_name_through_socks5(fleet, forward, tmp_path):
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian's chromium package)")
    port = forward('-D', '0').ready['socks']['port']
    loaded = subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                             f'--user-data-dir={tmp_path / "chromium"}', f'--proxy-server=socks5://127.0.0.1:{port}',
                             '--dump-dom', f'http://web-3:{WEB_PORT}/'],
                            capture_output=True, text=True, timeout=120, check=False)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert 'web-3' in loaded.stdout, (loaded.stdout[-500:], loaded.stderr[-2000:])


def test_a_background_forward_outlives_the_terminal_that_started_it_and_ends_with_agent_stop(fleet, tmp_path):
    forward_args = ('network', 'bastion', 'forward', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                    '-L', '0:web-2:22', '-D', '0', '--background', '-o', 'json')
    # The command runs in a session of its own, as in a terminal; that whole session is hung up once it returns.
    with subprocess.Popen([az_executable(), *forward_args], env=fleet.az_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as started:
        out, err = started.communicate(timeout=180)
        assert started.returncode == 0, err[-2000:]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGHUP)
    ready = json.loads(out)
    [forward_ready] = ready['forwards']
    assert forward_ready['target'] == 'web-2' and ready['socks']['port']

    fetched = _curl(ready['socks']['port'], f'http://web-1:{WEB_PORT}/')
    assert fetched.returncode == 0 and fetched.stdout == 'web-1\n', fetched.stderr
    assert _ssh(fleet, tmp_path, forward_ready['port']).stdout.strip() == 'web-2'
    status = fleet.az('network', 'bastion', 'agent', 'status').json
    [listed] = status['forwards']
    assert listed['forwards'] == ready['forwards'] and listed['socks'] == ready['socks']

    refused = fleet.az(*forward_args[:-3], '-L', '0:no-such-vm:22', '--background', check=False)
    assert refused.returncode != 0 and "No VM named 'no-such-vm'" in refused.stderr    # the same checks
    assert len(fleet.az('network', 'bastion', 'agent', 'status').json['forwards']) == 1

    assert fleet.az('network', 'bastion', 'agent', 'stop').json['stopped']
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', ready['socks']['port']), timeout=5).close()
    assert sessions_drain(fleet.emulator)


def _held(port):
    """A connection through a forward that has its Bastion session open (sshd's banner came through it)."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=60)
    assert sock.recv(100).startswith(b'SSH-2.0-')
    return sock


def _sessions_to(fleet, vm):
    return [item for item in fleet.emulator.get('/_emulator/sessions').json()
            if item['target'].rsplit('/', 1)[-1] == vm]


def test_agent_stop_forward_ends_that_background_forward_only_with_its_sessions(fleet, tmp_path):
    background = ('network', 'bastion', 'forward', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                  '--background', '-o', 'json')
    stopping = fleet.az(*background, '-L', '0:web-2:22').json
    going_on = fleet.az(*background, '-L', '0:web-1:22').json
    [stopping_ready], [going_on_ready] = stopping['forwards'], going_on['forwards']
    with _held(stopping_ready['port']) as held, _held(going_on_ready['port']):
        assert _sessions_to(fleet, 'web-2') and _sessions_to(fleet, 'web-1')
        stopped = fleet.az('network', 'bastion', 'agent', 'stop', '--forward', str(stopping['id'])).json
        assert stopped == {'id': stopping['id'], 'forwards': stopping['forwards'], 'socks': None, 'stopped': True}
        assert not _sessions_to(fleet, 'web-2') and _sessions_to(fleet, 'web-1')
        held.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert held.recv(100) == b''            # its live connection ended with it
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', stopping_ready['port']), timeout=5).close()
    assert _ssh(fleet, tmp_path, going_on_ready['port']).stdout.strip() == 'web-1'
    status = fleet.az('network', 'bastion', 'agent', 'status').json
    assert [listed['id'] for listed in status['forwards']] == [going_on['id']]

    again = fleet.az('network', 'bastion', 'agent', 'stop', '--forward', str(stopping['id']), check=False)
    assert again.returncode != 0 and f"The agent runs no forward with id {stopping['id']}." in again.stderr
    assert '`az network bastion agent status`' in again.stderr and 'Traceback' not in again.stderr
    assert fleet.az('network', 'bastion', 'agent', 'stop').json['stopped']
    assert sessions_drain(fleet.emulator)


def test_a_bind_address_other_than_loopback_is_warned_of_and_one_not_of_this_machine_refused(fleet, forward):
    running = forward('-D', '0.0.0.0:0')
    assert running.ready['socks']['address'] == '0.0.0.0'
    assert 'SOCKS5 listens on 0.0.0.0: anyone who can reach that address and port gets into the VMs' \
        in running.stderr()
    result = fleet.az('network', 'bastion', 'forward', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                      '-L', '203.0.113.9:0:web-1:22', check=False, timeout=90)
    assert result.returncode != 0 and 'not an address of this machine' in result.stderr, result.stderr
    assert result.stdout == '' and 'Traceback' not in result.stderr
