#!/usr/bin/env python
"""Forward benchmark: `az network bastion forward` (-L and SOCKS5) against `az network bastion tunnel`, in one run.

    .venv/bin/python bench/forward.py [--repeats 5] [--size-mib 256] [--setup-samples 100] [--round-trips 2000]
                                      [--concurrent 256] [--json results.json]

The emulator runs the fleet world's seed (fleet-rg: web-1 ... web-8) with each VM's ports 7101/7102/7103 pointed at
the benchmark's sink, source and echo (bench/backends.py, a process of their own). The parties are the real
commands, each one process started once: `tunnel` to web-1's echo, sink and source (three processes, as run.py), and
one `forward` with -L to the same three ports and -D. Each round measures, in a rotating order so that drift hits
every path alike: connection set-up (connect, SOCKS5 handshake where there is one, one byte echoed) through the
tunnel, -L and SOCKS5; 1-byte round trips on an open connection through each, through the connection agent (as
ssh-config's helper connects) and through the emulator's own client with no local hop (the ceiling: bench/run.py's
DirectClient), p50 and p99; one-stream upload and download through each. After the rounds, ``--concurrent`` SOCKS5
connections at once, spread over the eight VMs by name, each echoing 256 KiB of random bytes compared by SHA-256, with
forward's RSS idle, with all of them live, and after.
Every figure is a median over rounds with min/max; the targets are same-run ratios."""
import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from backends import MIB, Backends  # noqa: E402
from run import (PORT_ECHO, PORT_SINK, PORT_SOURCE, DirectClient, Recorder, percentile,  # noqa: E402
                 tcp_setup_samples, tunnel_download, tunnel_round_trips, tunnel_upload, write_result)

VMS = [f'web-{number}' for number in range(1, 9)]
ECHOED_BYTES = 256 * 1024           # per concurrent SOCKS5 connection
SETTLE_S = 3.0
PATHS = ('tunnel', 'forward_L', 'socks')


class AzListener:
    """`az network bastion tunnel|forward ... -o json`: its JSON ready line, its CPU seconds and RSS (psutil)."""

    def __init__(self, env, *args):
        from bastion_emulator.testing.az_login import az_executable
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [az_executable(), 'network', 'bastion', *args, '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json'],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 120)
        if not ready:
            self.stop()
            raise RuntimeError(f'az network bastion {args[0]} never became ready')
        self.ready = json.loads(self.process.stdout.readline())
        self.port = self.ready.get('port')
        self._ps = psutil.Process(self.process.pid)

    def usage(self):
        times = self._ps.cpu_times()
        return {'cpu_s': times.user + times.system, 'rss_mib': self._ps.memory_info().rss / MIB}

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Through:
    """A path's port and how a connection gets through it: ``listener`` is whose CPU counts."""

    def __init__(self, listener, port, socks_to=None):
        self.listener, self.port, self.socks_to = listener, port, socks_to

    def usage(self):
        return self.listener.usage()

    def dial(self):
        if self.socks_to is None:
            return None
        return lambda: socks_dial(self.port, *self.socks_to)

    def blocking(self):
        return socks_blocking(self.port, *self.socks_to) if self.socks_to else None


class AgentPath:
    """Through the connection agent, as ssh-config's ProxyCommand helper goes: its Unix socket, a "connect" request
    line, then the bytes. The first request starts the agent (in ``env``'s private runtime directory)."""

    def __init__(self, env, vm_id, vm_port):
        from azext_bastion_native.agent import proxy_helper
        from bastion_emulator.testing.az_login import az_executable
        self.helper, self.env, self.az = proxy_helper, env, [az_executable()]
        self.paths = proxy_helper.agent_paths(env)
        self.request = proxy_helper.connect_request('demo-rg', 'demo-bastion', vm_id, vm_port)
        self.blocking().close()
        with self.helper.connect_agent(self.paths) as sock:
            status, _ = self.helper.ask(sock, {'v': self.helper.PROTOCOL_VERSION, 'op': 'status'}, timeout=10)
        self._ps = psutil.Process(status['status']['pid'])

    def blocking(self):
        sock = self.helper.connect_or_start(self.paths, self.az, environ=self.env)
        answer, rest = self.helper.ask(sock, self.request, timeout=60)
        if not answer or not answer.get('ok') or rest:
            raise ConnectionError(f'the agent answered {answer}')
        sock.settimeout(None)
        return sock

    def usage(self):
        times = self._ps.cpu_times()
        return {'cpu_s': times.user + times.system, 'rss_mib': self._ps.memory_info().rss / MIB}

    def stop(self):
        with contextlib.suppress(OSError, self.helper.AgentUnavailable):
            with self.helper.connect_agent(self.paths) as sock:
                self.helper.ask(sock, {'v': self.helper.PROTOCOL_VERSION, 'op': 'stop'}, timeout=10)


def socks_request(host, port):
    name = host.encode()
    return b'\x05\x01\x00\x03' + bytes((len(name),)) + name + struct.pack('!H', port)


async def _receive_exactly(loop, sock, count):
    data = b''
    while len(data) < count:
        chunk = await loop.sock_recv(sock, count - len(data))
        if not chunk:
            raise ConnectionError('the SOCKS5 proxy closed the connection')
        data += chunk
    return data


async def socks_dial(proxy_port, host, port):
    """A non-blocking socket through the SOCKS5 proxy to host:port, asked as curl asks (greeting, then request)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ('127.0.0.1', proxy_port))
    await loop.sock_sendall(sock, b'\x05\x01\x00')
    await _receive_exactly(loop, sock, 2)
    await loop.sock_sendall(sock, socks_request(host, port))
    reply = await _receive_exactly(loop, sock, 10)
    if reply[1] != 0:
        sock.close()
        raise ConnectionError(f'SOCKS5 reply {reply[1]}')
    return sock


def socks_blocking(proxy_port, host, port):
    sock = socket.create_connection(('127.0.0.1', proxy_port))
    sock.sendall(b'\x05\x01\x00')
    sock.recv(2)
    sock.sendall(socks_request(host, port))
    reply = sock.recv(10)
    if len(reply) != 10 or reply[1] != 0:
        raise ConnectionError(f'SOCKS5 reply {reply[1:2]!r}')
    return sock


def run_round(record, paths, direct, backends, args, order):  # pylint: disable=too-many-locals
    mib = args.size_mib
    size = mib * MIB
    setup = {name: [] for name in PATHS}
    for block in range(0, args.setup_samples, 25):      # alternating blocks: each meets the emulator alike
        for name in order:
            echo = paths[name]['echo']
            setup[name] += asyncio.run(tcp_setup_samples(echo.port, min(25, args.setup_samples - block), 0.01,
                                                         dial=echo.dial()))
    for name in PATHS:
        record.add(f'{name}_setup_p50_ms', statistics.median(setup[name]))
        record.add(f'{name}_setup_p99_ms', percentile(setup[name], 0.99))
    for name in ('forward_L', 'socks'):
        record.add(f'{name}_setup_vs_tunnel', statistics.median(setup[name]) / statistics.median(setup['tunnel']))

    ceiling = asyncio.run(direct.round_trip_samples(args.round_trips))
    record.add('ceiling_round_trip_p50_us', statistics.median(ceiling))
    record.add('ceiling_round_trip_p99_us', percentile(ceiling, 0.99))
    for name in order:
        echo = paths[name]['echo']
        samples, cpu = tunnel_round_trips(echo, args.round_trips, connected=echo.blocking())
        record.add(f'{name}_round_trip_p50_vs_ceiling', statistics.median(samples) / statistics.median(ceiling))
        record.add(f'{name}_round_trip_p99_vs_ceiling', percentile(samples, 0.99) / percentile(ceiling, 0.99))
        record.add(f'{name}_cpu_us_per_round_trip', cpu * 1e6 / args.round_trips)
    agent = paths['agent']
    samples, cpu = tunnel_round_trips(agent, args.round_trips, connected=agent.blocking())
    record.add('agent_round_trip_p50_vs_ceiling', statistics.median(samples) / statistics.median(ceiling))
    record.add('agent_round_trip_p99_vs_ceiling', percentile(samples, 0.99) / percentile(ceiling, 0.99))
    record.add('agent_cpu_us_per_round_trip', cpu * 1e6 / args.round_trips)

    rates = {}
    for name in order:
        sink, source = paths[name]['sink'], paths[name]['source']
        rates[(name, 'upload')] = mib / asyncio.run(tunnel_upload(sink.port, size, backends, dial=sink.dial()))
        backends.send_bytes = size
        rates[(name, 'download')] = mib / asyncio.run(tunnel_download(source.port, size, dial=source.dial()))
    for (name, direction), rate in rates.items():
        record.add(f'{name}_{direction}_MiBps', rate)
        if name != 'tunnel':
            record.add(f'{name}_{direction}_vs_tunnel', rate / rates[('tunnel', direction)])


async def concurrent_socks(proxy_port, count, forward):
    """``count`` SOCKS5 connections at once over the eight VMs, each proven live, then each echoing its own random
    bytes: (intact count, RSS with all live)."""
    payloads = [os.urandom(ECHOED_BYTES) for _ in range(count)]
    opened = []
    for number in range(count):
        sock = await socks_dial(proxy_port, VMS[number % len(VMS)], PORT_ECHO)
        opened.append(await asyncio.open_connection(sock=sock))
    for reader, writer in opened:
        writer.write(b'x')
    await asyncio.gather(*(reader.readexactly(1) for reader, _ in opened))
    rss_live = forward.usage()['rss_mib']

    async def echo(pair, payload):
        reader, writer = pair
        writer.write(payload)
        got = await reader.readexactly(len(payload))
        return hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    intact = sum(await asyncio.gather(*(echo(pair, payload) for pair, payload in zip(opened, payloads))))
    for _, writer in opened:
        writer.close()
    return intact, rss_live


def point_fleet(emulator, backends):
    for vm in VMS:
        vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', vm, 'fleet-rg')
        for vm_port, port in ((PORT_SINK, backends.sink_port), (PORT_SOURCE, backends.source_port),
                              (PORT_ECHO, backends.echo_port)):
            emulator.post('vm-endpoints', {'vm_id': vm_id, 'port': vm_port, 'host': '127.0.0.1',
                                           'target_port': port}).raise_for_status()


def main():  # pylint: disable=too-many-locals
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--size-mib', type=int, default=256, help='bytes per throughput run (MiB)')
    parser.add_argument('--setup-samples', type=int, default=100, help='connections per set-up figure per round')
    parser.add_argument('--round-trips', type=int, default=2000, help='1-byte round trips per figure per round')
    parser.add_argument('--concurrent', type=int, default=256, help='SOCKS5 connections at once, over 8 VMs')
    parser.add_argument('--json', help='write the JSON here (else print it)')
    args = parser.parse_args()

    from bastion_emulator.testing.fleet import fleet_seed
    from bastion_emulator.testing.sandbox import AzCli, EmulatorProcess, az_environment
    workdir = Path(tempfile.mkdtemp(prefix='bastion-bench-forward-'))
    runtime = tempfile.mkdtemp(prefix='bn-bench-')       # short: the agent's Unix socket goes in it
    seed = workdir / 'fleet_seed.json'
    seed.write_text(json.dumps(fleet_seed(len(VMS))), encoding='utf-8')
    emulator = EmulatorProcess(workdir / 'emulator', seed=str(seed)).start()
    backends = Backends().start()
    listeners = []
    try:
        env = az_environment(emulator, workdir / 'az')
        az = AzCli(env)
        token = az('account', 'get-access-token', '--query', 'accessToken', '-o', 'json').json
        host = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json').json['dnsName']
        point_fleet(emulator, backends)
        web_1 = emulator.resource_id('Microsoft.Compute/virtualMachines', 'web-1', 'fleet-rg')
        tunnels = {}
        for role, vm_port in (('echo', PORT_ECHO), ('sink', PORT_SINK), ('source', PORT_SOURCE)):
            tunnels[role] = AzListener(env, 'tunnel', '--target-resource-id', web_1, '--resource-port', str(vm_port))
            listeners.append(tunnels[role])
        forward = AzListener(env, 'forward', '--vm-resource-group', 'fleet-rg', '-L', f'0:web-1:{PORT_ECHO}',
                             '-L', f'0:web-1:{PORT_SINK}', '-L', f'0:web-1:{PORT_SOURCE}', '-D', '0')
        listeners.append(forward)
        forwards = {item['targetPort']: item['port'] for item in forward.ready['forwards']}
        socks_port = forward.ready['socks']['port']
        roles = (('echo', PORT_ECHO), ('sink', PORT_SINK), ('source', PORT_SOURCE))
        paths = {
            'tunnel': {role: Through(tunnels[role], tunnels[role].port) for role, _ in roles},
            'forward_L': {role: Through(forward, forwards[vm_port]) for role, vm_port in roles},
            'socks': {role: Through(forward, socks_port, ('web-1', vm_port)) for role, vm_port in roles},
        }
        env['XDG_RUNTIME_DIR'] = runtime                                    # this run's own agent
        paths['agent'] = AgentPath(env, web_1, PORT_ECHO)
        listeners.append(paths['agent'])
        direct = DirectClient(host, web_1, token, emulator.ca_bundle)
        record = Recorder()
        run_round(Recorder(), paths, direct, backends, argparse.Namespace(
            size_mib=4, setup_samples=10, round_trips=50), PATHS)          # warm-up: every party's one-off costs
        for round_number in range(args.repeats):
            order = PATHS[round_number % 3:] + PATHS[:round_number % 3]
            run_round(record, paths, direct, backends, args, order)
        time.sleep(SETTLE_S)
        idle = forward.usage()['rss_mib']
        intact, rss_live = asyncio.run(concurrent_socks(socks_port, args.concurrent, forward))
        time.sleep(SETTLE_S)
        after = forward.usage()['rss_mib']
    finally:
        for listener in listeners:
            listener.stop()
        backends.stop()
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    concurrent = {'connections': args.concurrent, 'intact': intact, 'rss_idle_MiB': idle, 'rss_live_MiB': rss_live,
                  'rss_after_MiB': after, 'MiB_per_live_connection': (rss_live - idle) / args.concurrent}
    report({'repeats': args.repeats, 'size_MiB': args.size_mib, 'figures': record.figures(),
            'concurrent_socks': concurrent}, args.json)


ROUND_TRIP_LIMITS = (('p50', 1.1), ('p99', 1.2))
TARGETS = [('socks_setup_vs_tunnel', '<=', 1.05), ('forward_L_setup_vs_tunnel', '<=', 1.05),
           ('forward_L_upload_vs_tunnel', '>=', 0.95), ('forward_L_download_vs_tunnel', '>=', 0.95),
           ('socks_upload_vs_tunnel', '>=', 0.95), ('socks_download_vs_tunnel', '>=', 0.95)] + [
    (f'{path}_round_trip_{tail}_vs_ceiling', '<=', limit) for path in (*PATHS, 'agent')
    for tail, limit in ROUND_TRIP_LIMITS]


def report(result, json_path):
    figures = result['figures']
    width = max(len(name) for name in figures) + 2
    print(f"{'figure (median of ' + str(result['repeats']) + ' rounds)':<{width}}  median     min     max")
    for name, figure in figures.items():
        print(f"{name:<{width}}  {figure['median']:7.3f} {figure['min']:7.3f} {figure['max']:7.3f}")
    concurrent = result['concurrent_socks']
    print(f"{concurrent['connections']} concurrent SOCKS5 connections over {len(VMS)} VMs: {concurrent['intact']} "
          f"intact; forward's RSS idle {concurrent['rss_idle_MiB']:.1f}, all live {concurrent['rss_live_MiB']:.1f} "
          f"({concurrent['MiB_per_live_connection']:.3f} MiB each), after {concurrent['rss_after_MiB']:.1f} MiB")
    result['targets'] = {}
    for name, comparison, threshold in TARGETS:
        value = figures[name]['median']
        passed = value <= threshold if comparison == '<=' else value >= threshold
        result['targets'][name] = {'value': value, 'comparison': comparison, 'threshold': threshold, 'pass': passed}
        print(f"target {name:<{width - 7}}  {value:7.3f}  {comparison} {threshold:<5} {'PASS' if passed else 'FAIL'}")
    passed = concurrent['intact'] == concurrent['connections']
    result['targets']['concurrent_socks_intact'] = {'value': concurrent['intact'], 'pass': passed}
    print(f"target concurrent_socks_intact  {concurrent['intact']} of {concurrent['connections']} "
          f"{'PASS' if passed else 'FAIL'}")
    write_result(result, json_path)


if __name__ == '__main__':
    main()
