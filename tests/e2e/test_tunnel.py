"""`az network bastion tunnel` end to end: the real az, the emulator's data plane, loopback backends, OpenSSH."""

import asyncio
import hashlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.e2e.tunnel_helpers import HOST, RG, RunningTunnel, sessions_drain

pytestmark = pytest.mark.e2e

ECHO_VM_PORT = 7007         # linux-vm port the echo server stands behind (port 22 belongs to sshd)
SOURCE_VM_PORT = 7008       # linux-vm port for a sink/source server


@pytest.fixture(scope='module')
def vm_id(emulator):
    return emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')


@pytest.fixture(scope='module')
def echo_target(emulator, echo_server):
    emulator.set_vm_endpoint('linux-vm', ECHO_VM_PORT, echo_server.host, echo_server.port)
    return ECHO_VM_PORT


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    emulator.delete('/_emulator/faults')


@pytest.fixture
def tunnel(az_env, vm_id, echo_target, tmp_path):
    running = []

    def start(*extra, port=echo_target):
        handle = RunningTunnel(az_env, '--target-resource-id', vm_id, '--resource-port', port, *extra,
                               stderr_path=tmp_path / f'tunnel-{len(running)}.err')
        running.append(handle)
        return handle
    yield start
    for handle in running:
        handle.stop()


async def _echo_round_trip(port, payload):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    sender = asyncio.create_task(_send_all(writer, payload))
    echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 60)
    await sender
    writer.close()
    return hashlib.sha256(echoed).hexdigest()


async def _send_all(writer, payload):
    writer.write(payload)
    await writer.drain()


def _echo(port, payload=b'ping'):
    with socket.create_connection(('127.0.0.1', port), timeout=15) as sock:
        sock.sendall(payload)
        got = b''
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


def _ends_promptly(sock, timeout=5.0):
    """Read until EOF or reset; returns (bytes read, seconds taken). Fails the test on a hang."""
    sock.settimeout(timeout)
    started, total = time.monotonic(), 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail(f'the local connection hung for {timeout}s after the websocket ended')
    return total, time.monotonic() - started


def test_64_concurrent_connections_are_relayed_intact_and_sigint_deletes_every_session(tunnel, emulator):
    running = tunnel()
    payloads = [os.urandom(128 * 1024 + n) for n in range(64)]

    async def all_at_once():
        return await asyncio.gather(*(_echo_round_trip(running.port, p) for p in payloads))
    assert asyncio.run(all_at_once()) == [hashlib.sha256(p).hexdigest() for p in payloads]
    assert sessions_drain(emulator)                     # each connection deleted its session when it ended
    with socket.create_connection(('127.0.0.1', running.port)) as held:
        held.sendall(b'x')
        assert held.recv(1) == b'x'
        assert len(emulator.get('/_emulator/sessions').json()) == 1
        running.process.send_signal(signal.SIGINT)
        assert running.wait() == 130
        _ends_promptly(held)
    assert sessions_drain(emulator)
    assert 'Tunnel is ready, connect on port' in running.stderr()


@pytest.mark.parametrize('how', ['sigterm', 'sighup', 'timeout', 'idle-timeout'])
def test_every_way_of_stopping_leaves_no_session(how, tunnel, emulator):
    extra = {'timeout': ('--timeout', 2), 'idle-timeout': ('--idle-timeout', 1)}.get(how, ())
    running = tunnel(*extra)
    sock = socket.create_connection(('127.0.0.1', running.port))
    sock.sendall(b'abc')
    assert sock.recv(3) == b'abc'
    if how in ('sigterm', 'sighup'):      # SIGHUP: the terminal closed
        running.process.send_signal(signal.SIGTERM if how == 'sigterm' else signal.SIGHUP)
        assert running.wait() == (143 if how == 'sigterm' else 129)
        _ends_promptly(sock)
    elif how == 'timeout':
        time.sleep(2.5)
        assert socket.socket().connect_ex(('127.0.0.1', running.port)) != 0     # listener closed
        sock.sendall(b'def')                            # the live connection may still finish
        assert sock.recv(3) == b'def'
        sock.close()
        assert running.wait() == 0
    else:
        time.sleep(1.5)
        assert running.process.poll() is None           # a connection is open: not idle
        sock.close()
        assert running.wait(10) == 0
    sock.close()
    assert sessions_drain(emulator)


def test_a_killed_client_frees_its_session_while_the_tunnel_runs(tunnel, emulator, tmp_path):
    running = tunnel()
    script = ('import socket,sys,time; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); '
              's.sendall(b"hi"); s.recv(2); print("up", flush=True); time.sleep(60)')
    client = subprocess.Popen(['python3', '-c', script, str(running.port)], stdout=subprocess.PIPE, text=True)
    assert client.stdout.readline().strip() == 'up'
    assert len(emulator.get('/_emulator/sessions').json()) == 1
    client.kill()
    client.wait()
    assert sessions_drain(emulator)
    assert running.process.poll() is None and _echo(running.port) == b'ping'
    assert sessions_drain(emulator)


def test_the_wire_carries_azure_clis_user_agent_and_the_hosts_own_origin(tunnel, emulator, az):
    """As Microsoft's client: the websocket's Origin is the data-plane host's own (websocket-client's default), and
    azure-cli's product token leads the User-Agent of the mint and of the websocket."""
    dns_name = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion').json['dnsName']
    running = tunnel()
    with socket.create_connection(('127.0.0.1', running.port), timeout=15) as held:
        held.sendall(b'hi')
        assert held.recv(2) == b'hi'
        [session] = emulator.get('/_emulator/sessions').json()
    client = session['client']
    assert client['websocket_origin'] == f'https://{dns_name}'
    for agent in (client['mint_user_agent'], client['websocket_user_agent']):
        assert agent.startswith('AZURECLI/2.91.0 bastion-native/'), agent


def test_websocket_dropped_mid_stream_ends_the_client_promptly_and_the_next_one_works(
        tunnel, emulator, vm_id, sink_source):
    source = sink_source(send_bytes=8 * 1024 * 1024)
    emulator.set_vm_endpoint('linux-vm', SOURCE_VM_PORT, source.host, source.port)
    running = tunnel(port=SOURCE_VM_PORT)
    emulator.post('/_emulator/faults', {'drop_after_bytes': 256 * 1024})
    with socket.create_connection(('127.0.0.1', running.port)) as sock:
        received, seconds = _ends_promptly(sock)
    assert received < 8 * 1024 * 1024 and seconds < 5
    with socket.create_connection(('127.0.0.1', running.port)) as sock:
        received, _ = _ends_promptly(sock, timeout=30)
    assert received == 8 * 1024 * 1024                  # the next connection gets the whole stream
    assert sessions_drain(emulator), json.dumps(emulator.get('/_emulator/sessions').json()) + running.stderr()[-3000:]


def test_bastion_ending_a_session_is_said_at_default_verbosity(tunnel, emulator, az):
    running = tunnel()
    with socket.create_connection(('127.0.0.1', running.port)) as sock:
        sock.sendall(b'hi')
        assert sock.recv(2) == b'hi'
        [session_id] = az('network', 'bastion', 'session', 'list', '-g', RG, '-n', HOST,
                          '--query', '[].sessionId').json
        az('network', 'bastion', 'session', 'disconnect', '-g', RG, '-n', HOST, '--session-ids', session_id)
        _ends_promptly(sock)
    assert _echo(running.port) == b'ping'               # the tunnel carries on
    running.process.send_signal(signal.SIGINT)
    running.wait()
    assert 'WARNING: connection 1 from 127.0.0.1' in running.stderr()
    assert 'Bastion ended the session (code 1008, session disconnected by administrator)' in running.stderr()


def test_mint_401_closes_that_connection_with_a_clear_message(tunnel, emulator):
    running = tunnel()
    emulator.post('/_emulator/faults', {'mint_status': 401, 'count': 1})
    with socket.create_connection(('127.0.0.1', running.port)) as sock:
        received, seconds = _ends_promptly(sock)
    assert received == 0 and seconds < 5
    assert _echo(running.port) == b'ping'               # the tunnel itself carries on
    running.process.send_signal(signal.SIGINT)
    running.wait()
    assert 'HTTP 401' in running.stderr()


def test_mint_429_then_success_is_retried_transparently(tunnel, emulator):
    running = tunnel()
    emulator.post('/_emulator/faults', {'mint_status': 429, 'count': 1, 'retry_after': 1})
    started = time.monotonic()
    assert _echo(running.port, b'after a retry') == b'after a retry'
    assert time.monotonic() - started >= 0.9            # Retry-After was honoured
    running.process.send_signal(signal.SIGINT)
    running.wait()


def test_debug_output_of_a_whole_run_contains_no_issued_secret(tunnel, emulator):
    running = tunnel('--debug')
    assert _echo(running.port, os.urandom(100_000)) and _echo(running.port) == b'ping'
    running.process.send_signal(signal.SIGINT)
    running.wait()
    log = running.stderr()
    assert 'POST /api/tokens' in log                    # the debug log did run ...
    secrets = emulator.get('/_emulator/secrets').json()['secrets']
    assert secrets
    leaked = [secret[:6] + '...' for secret in secrets if secret in log]
    assert not leaked                                   # ... and carries none of the tokens issued


def test_debug_log_does_not_grow_with_the_bytes_relayed(tunnel):
    """One line per connection open/close, never per chunk (upstream logs every 4 KiB read at --debug)."""
    def debug_lines(payload_size):
        running = tunnel('--debug')
        assert len(_echo(running.port, os.urandom(payload_size))) == payload_size
        running.process.send_signal(signal.SIGINT)
        running.wait()
        return len(running.stderr().splitlines())
    small, large = debug_lines(1_000), debug_lines(16 * 1024 * 1024)    # 16 MiB: 256+ chunks each way
    assert large <= small + 10, (small, large)


@pytest.mark.parametrize('args, phrase', [
    (('-n', 'basic-bastion', '--resource-port', 22), 'az network bastion native-client enable'),
    (('-n', 'no-such-host', '--resource-port', 22), 'no-such-host'),
    (('-n', HOST, '--resource-port', 8080, '--ip'), '22 and 3389'),
])
def test_preflight_refusals_name_the_fix(az, vm_id, args, phrase):
    args = list(args)
    if args[-1] == '--ip':
        args[-1:] = ['--target-ip-address', '10.0.0.4']
    else:
        args += ['--target-resource-id', vm_id]
    result = az('network', 'bastion', 'tunnel', '-g', RG, *args, check=False, timeout=60)
    assert result.returncode != 0 and phrase in result.stderr


def test_scp_copies_50_mb_both_ways_through_the_tunnel(az_env, sshd_linux_vm, tmp_path, emulator):
    sshd = sshd_linux_vm.sshd
    running = RunningTunnel(az_env, '--target-resource-id', sshd_linux_vm.vm_id, '--resource-port', 22,
                            stderr_path=tmp_path / 'scp-tunnel.err')
    try:
        known_hosts = tmp_path / 'known_hosts'
        known_hosts.write_text(f'[127.0.0.1]:{running.port} {sshd.host_key_pub}\n')
        options = ['-o', f'UserKnownHostsFile={known_hosts}', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
                   '-o', 'IdentitiesOnly=yes', '-i', str(sshd.client_key), '-P', str(running.port)]
        local = tmp_path / 'up.bin'
        local.write_bytes(os.urandom(50 * 1024 * 1024))
        remote = pathlib.Path(tempfile.gettempdir()) / f'bastion-scp-{os.getpid()}-{time.time_ns()}.bin'
        for source, destination in ((str(local), f'{sshd.user}@127.0.0.1:{remote}'),
                                    (f'{sshd.user}@127.0.0.1:{remote}', str(tmp_path / 'down.bin'))):
            copy = subprocess.run(['scp', *options, source, destination], timeout=120, capture_output=True, text=True,
                                  check=False)
            assert copy.returncode == 0, copy.stderr[-2000:] + running.stderr()[-2000:]
        back = tmp_path / 'down.bin'
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        assert hashlib.sha256(remote.read_bytes()).hexdigest() == digest
        assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
    finally:
        running.stop()
        if 'remote' in locals():
            remote.unlink(missing_ok=True)
    assert sessions_drain(emulator)
