#!/usr/bin/env python
"""Tunnel benchmark (docs/ARCHITECTURE.md, Measurements). One command:

    .venv/bin/python bench/run.py [--size-mib 512] [--repeats 3] [--json results.json]

Processes, so that no two measured parties share a GIL: the emulator; the backends (counting sink, source, echo:
bench/backends.py); one tunnel process per target port (the relay engine exactly as ``az network bastion tunnel``
runs it after its one ARM GET: bench/tunnel_process.py); and this process, which only generates load. ``az``
itself is run once, to log in and read the host: its start-up happens once per tunnel, not per connection.

Each round measures, back to back, the emulator's own ceiling (a websockets client minting and feeding it
directly) and the tunnel: connection set-up (through the tunnel, through the direct client - the emulator's own
set-up floor - and plain TCP for scale), 1-byte round trips on an open connection (the tunnel from a blocking
socket, as ssh's C client sends a keystroke; the direct client's websocket; with the tunnel's CPU per round trip),
upload then download on one stream and on 16. Rounds repeat (``--repeats``); every figure is reported as median
with min/max and the raw samples, and each target as a ratio or value with pass/fail, all in one JSON document.
Tunnel CPU is the tunnel process's own ``getrusage`` time.

Memory is measured after the rounds on two fresh tunnel processes, one each way: RSS idle, its peak during a burst
of 128 and then 256 concurrent 1 MiB uploads (downloads) and during one 256 MiB upload (download), and RSS a few
seconds after each.
"""
import argparse
import asyncio
import json
import resource
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import BLOCK, MIB, Backends  # noqa: E402  pylint: disable=wrong-import-position
from tunnel_process import TunnelProcess  # noqa: E402  pylint: disable=wrong-import-position

VM = 'linux-vm'
PORT_SINK, PORT_SOURCE, PORT_ECHO = 7101, 7102, 7103
CEILING_FRAME = 256 * 1024    # large frames (the emulator relays up to 1 MiB a read); 64 KiB-1 MiB measured alike
SETUP_BLOCK = 50             # set-up samples per block; tunnel and direct client blocks alternate
MEMORY_BUDGET_PER_CONNECTION_MIB = 0.1     # RSS growth per concurrent active connection
MEMORY_RETURNED_WITHIN_MIB = 20.0          # RSS a few seconds after a burst, above idle
ROUND_TRIP_CPU_BUDGET_US = 100.0           # tunnel CPU per 1-byte round trip (half of the asyncio-streams pump's)
BURSTS = (128, 256)                        # concurrent 1 MiB uploads per memory burst
SETTLE_S = 3.0                             # "a few seconds after" a burst, for the RSS it kept


# -- load generators (this process) -----------------------------------------------------------------
async def _wait_for_sink(backends, target):
    while backends.received < target:
        await asyncio.sleep(0.001)


async def _open(port, dial):
    """A connection to the tunnel's ``port``, or the socket ``await dial()`` returns (e.g. through SOCKS5)."""
    if dial is None:
        return await asyncio.open_connection('127.0.0.1', port)
    return await asyncio.open_connection(sock=await dial())


async def tunnel_upload(port, size, backends, streams=1, dial=None):
    """Send ``size`` bytes (split over ``streams``) into the tunnel; done when the sink has them all."""
    loop = asyncio.get_running_loop()
    share = size // streams
    target = backends.received + share * streams

    async def one():
        _, writer = await _open(port, dial)
        sent = 0
        while sent < share:
            chunk = BLOCK[:min(MIB, share - sent)]
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        return writer
    started = loop.time()
    writers = await asyncio.gather(*(one() for _ in range(streams)))
    await _wait_for_sink(backends, target)
    elapsed = loop.time() - started
    for writer in writers:
        writer.close()
    return elapsed


class _CountingReader(asyncio.BufferedProtocol):
    """Counts what arrives until EOF into one preallocated buffer, as the backends' sink does: the local client
    of a download costs what the kernel's copy costs, no more (an asyncio stream reader's buffering cost a third
    of the tunnel's own CPU per MiB, on a machine where every process's CPU shares two cores)."""

    def __init__(self):
        self.got = 0
        self.done = asyncio.get_running_loop().create_future()
        self._buffer = bytearray(1 << 20)

    def get_buffer(self, sizehint):
        return self._buffer

    def buffer_updated(self, nbytes):
        self.got += nbytes

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.got)


async def tunnel_download(port, size, streams=1, dial=None):
    """Read until EOF on ``streams`` connections (the source sends its configured size on each)."""
    loop = asyncio.get_running_loop()

    async def one():
        if dial is None:
            _, reader = await loop.create_connection(_CountingReader, '127.0.0.1', port)
        else:
            _, reader = await loop.create_connection(_CountingReader, sock=await dial())
        return await reader.done
    started = loop.time()
    got = sum(await asyncio.gather(*(one() for _ in range(streams))))
    if got != size:
        raise RuntimeError(f'download got {got} of {size} bytes')
    return loop.time() - started


class DirectClient:
    """A websockets client talking to the emulator's data plane with no tunnel: mint over one kept-alive HTTPS
    connection, open the websocket, delete. It measures the emulator's own ceiling and set-up floor."""

    def __init__(self, endpoint_host, vm_id, token, ca_bundle):
        import requests
        self.endpoint_host, self.vm_id, self.token, self.ca_bundle = endpoint_host, vm_id, token, ca_bundle
        self.http = requests.Session()
        self.context = ssl.create_default_context(cafile=ca_bundle)

    def mint(self, port):
        answer = self.http.post(f'https://{self.endpoint_host}/api/tokens', verify=self.ca_bundle, timeout=10, data={
            'resourceId': self.vm_id, 'protocol': 'tcptunnel', 'workloadHostPort': str(port), 'aztoken': self.token})
        answer.raise_for_status()
        return answer.json()

    def delete(self, session):
        self.http.delete(f"https://{self.endpoint_host}/api/tokens/{session['authToken']}", verify=self.ca_bundle,
                         timeout=10, headers={'X-Node-Id': session['nodeId']})

    async def connect(self, session):
        from websockets.asyncio.client import connect
        url = f"wss://{self.endpoint_host}/webtunnelv2/{session['websocketToken']}?X-Node-Id={session['nodeId']}"
        return await connect(url, ssl=self.context, compression=None, max_size=None, user_agent_header=None,
                             write_limit=MIB)

    async def upload(self, size, backends, streams=1):
        """``size`` bytes split over ``streams`` websockets (minted one after another, as the tunnel's
        16 streams' sessions are minted over its few kept-alive HTTPS connections)."""
        loop = asyncio.get_running_loop()
        share = size // streams
        target = backends.received + share * streams
        started = loop.time()

        async def one():
            session = self.mint(PORT_SINK)
            websocket = await self.connect(session)
            for offset in range(0, share, CEILING_FRAME):
                await websocket.send(BLOCK[:min(CEILING_FRAME, share - offset)])
            return session, websocket
        opened = await asyncio.gather(*(one() for _ in range(streams)))
        await _wait_for_sink(backends, target)
        elapsed = loop.time() - started
        for session, websocket in opened:
            await websocket.close()
            self.delete(session)
        return elapsed

    async def download(self, size, streams=1):
        """Read ``streams`` websockets to their end (the source sends ``size // streams`` on each)."""
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def one():
            session = self.mint(PORT_SOURCE)
            websocket = await self.connect(session)
            got = 0
            async for message in websocket:
                got += len(message)
            return session, got
        finished = await asyncio.gather(*(one() for _ in range(streams)))
        elapsed = loop.time() - started
        for session, _ in finished:
            self.delete(session)
        got = sum(got for _, got in finished)
        if got != size:
            raise RuntimeError(f'ceiling download got {got} of {size} bytes')
        return elapsed

    async def round_trip_samples(self, count):
        """1-byte round trips on one open websocket to the echo target, in microseconds."""
        session = self.mint(PORT_ECHO)
        websocket = await self.connect(session)
        await websocket.send(b'x')
        await websocket.recv()
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await websocket.send(b'x')
            await websocket.recv()
            samples.append((time.perf_counter() - started) * 1e6)
        await websocket.close()
        self.delete(session)
        return samples

    async def setup_samples(self, count, gap=0.0):
        """Mint + websocket + one byte echoed, as the tunnel's set-up figure measures (delete not timed)."""
        samples = []
        for _ in range(count):
            await asyncio.sleep(gap)
            started = time.perf_counter()
            session = self.mint(PORT_ECHO)
            websocket = await self.connect(session)
            await websocket.send(b'x')
            await websocket.recv()
            samples.append((time.perf_counter() - started) * 1000)
            await websocket.close()
            self.delete(session)
        return samples


async def tcp_setup_samples(port, count, gap=0.0, dial=None):
    """Connect, send one byte to the echo target, wait for it back: the user's wait for a usable connection.
    ``gap`` seconds pass between connections, so one connection's teardown (websocket close, session delete)
    is not timed as the next one's set-up."""
    samples = []
    for _ in range(count):
        await asyncio.sleep(gap)
        started = time.perf_counter()
        reader, writer = await _open(port, dial)
        writer.write(b'x')
        await reader.readexactly(1)
        samples.append((time.perf_counter() - started) * 1000)
        writer.close()
        await writer.wait_closed()
    return samples


def tunnel_round_trips(tunnel, count, connected=None):
    """1-byte round trips on one open connection through ``tunnel`` from a blocking socket (the way ssh's C client
    sends a keystroke), in microseconds, and the tunnel's CPU seconds over them (set-up excluded). ``connected``:
    a blocking socket already through (e.g. a SOCKS5 proxy), else a connection to ``tunnel.port``."""
    with connected or socket.create_connection(('127.0.0.1', tunnel.port)) as sock:
        if sock.family != socket.AF_UNIX:       # the agent's socket is a Unix one: no Nagle there
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b'x')
        sock.recv(1)
        before = tunnel.usage()['cpu_s']
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(b'x')
            if not sock.recv(1):
                raise RuntimeError('the tunnel closed during the round trips')
            samples.append((time.perf_counter() - started) * 1e6)
        cpu = tunnel.usage()['cpu_s'] - before
    return samples, cpu


def memory_figures(upload_tunnel, download_tunnel, backends, transfer_mib):
    """RSS of two fresh tunnels, one each way: idle, then for each burst of concurrent 1 MiB uploads (downloads)
    and for one ``transfer_mib`` upload (download): RSS before, the peak during, and RSS ``SETTLE_S`` seconds after
    it ended."""
    def upload(streams, size):
        asyncio.run(tunnel_upload(upload_tunnel.port, size, backends, streams))

    def download(streams, size):
        backends.send_bytes = size // streams
        asyncio.run(tunnel_download(download_tunnel.port, size, streams))
    steps, idle = {}, {}
    for direction, tunnel, run in (('upload', upload_tunnel, upload), ('download', download_tunnel, download)):
        run(1, MIB)                 # one-off costs (imports, TLS context) first
        time.sleep(SETTLE_S)
        idle[direction] = tunnel.usage()['rss_mib']
        for name, streams, size in [(f'{direction}_burst_{count}', count, count * MIB) for count in BURSTS] + [
                (f'{direction}_{transfer_mib}MiB', 1, transfer_mib * MIB)]:
            before = tunnel.usage()['rss_mib']
            tunnel.watch()
            run(streams, size)
            peak = tunnel.peak()['watched_peak_rss_mib']
            time.sleep(SETTLE_S)
            after = tunnel.usage()['rss_mib']
            steps[name] = {'connections': streams, 'rss_idle_MiB': idle[direction], 'rss_before_MiB': before,
                           'rss_peak_MiB': peak, 'rss_after_MiB': after,
                           'growth_MiB_per_connection': (peak - before) / streams}
    return {'rss_idle_MiB': idle, 'steps': steps}


async def hold_connections(tunnel, count):
    """Open ``count`` connections through the tunnel, each proven usable (one byte echoed); measure; close."""
    pairs = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection('127.0.0.1', tunnel.port)
        writer.write(b'x')
        pairs.append((reader, writer))
    echoed = await asyncio.gather(*(reader.readexactly(1) for reader, _ in pairs))
    usage = tunnel.usage()
    for _, writer in pairs:
        writer.close()
    return sum(len(byte) for byte in echoed), usage


# -- statistics and the report ----------------------------------------------------------------------------
def summary(samples):
    return {'median': statistics.median(samples), 'min': min(samples), 'max': max(samples),
            'samples': [round(value, 3) for value in samples]}


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Recorder:
    def __init__(self):
        self.samples = {}

    def add(self, name, value):
        self.samples.setdefault(name, []).append(value)

    def figures(self):
        return {name: summary(values) for name, values in self.samples.items()}


def run_round(record, parties, backends, size, latency_samples, swap, gap, round_trips):  # noqa: C901
    """One round: connection set-up first (on an emulator that has minted as few sessions as possible: its
    request log slows down with every secret it has issued), then throughput, ceiling and tunnel back to back."""
    direct, (up_tunnel, down_tunnel, echo_tunnel), emulator = parties
    mib = size / MIB
    cpu = CpuMeter(record, emulator, backends)
    record.add('emulator_sessions_minted_before_setup', emulator.get('stats').json().get('mints', 0))
    # Tunnel and direct client in alternating blocks, so both meet the emulator in the same state.
    tunnel_setup, direct_setup, tunnel_cpu, emulator_cpu = [], [], 0.0, 0.0
    for block in range(0, latency_samples, SETUP_BLOCK):
        count = min(SETUP_BLOCK, latency_samples - block)
        before, emulator_before = echo_tunnel.usage()['cpu_s'], emulator.cpu_s()
        tunnel_setup += asyncio.run(tcp_setup_samples(echo_tunnel.port, count, gap))
        tunnel_cpu += echo_tunnel.usage()['cpu_s'] - before
        emulator_cpu += emulator.cpu_s() - emulator_before
        direct_setup += asyncio.run(direct.setup_samples(count, gap))
    record.add('setup_p50_ms', statistics.median(tunnel_setup))
    record.add('setup_p99_ms', percentile(tunnel_setup, 0.99))
    record.add('direct_client_setup_p50_ms', statistics.median(direct_setup))
    record.add('setup_vs_direct_client', statistics.median(tunnel_setup) / statistics.median(direct_setup))
    record.add('tunnel_cpu_ms_per_connection', tunnel_cpu * 1000 / latency_samples)
    record.add('emulator_cpu_ms_per_connection', emulator_cpu * 1000 / latency_samples)
    record.add('direct_tcp_p50_ms', statistics.median(asyncio.run(tcp_setup_samples(backends.echo_port,
                                                                                    latency_samples))))

    def ceiling_round_trips():
        record.add('ceiling_round_trip_p50_us', statistics.median(asyncio.run(direct.round_trip_samples(
            round_trips))))

    def tunnel_round_trips_step():
        samples, cpu = tunnel_round_trips(echo_tunnel, round_trips)
        record.add('tunnel_round_trip_p50_us', statistics.median(samples))
        record.add('tunnel_round_trip_p99_us', percentile(samples, 0.99))
        record.add('tunnel_cpu_us_per_round_trip', cpu * 1e6 / round_trips)

    def ceiling_up():
        record.add('ceiling_upload_MiBps', mib / cpu.measure('ceiling_upload', mib, lambda: asyncio.run(
            direct.upload(size, backends))))

    def tunnel_up():
        elapsed = cpu.measure('tunnel_upload', mib, lambda: asyncio.run(tunnel_upload(up_tunnel.port, size, backends)),
                              up_tunnel)
        record.add('tunnel_upload_1_MiBps', mib / elapsed)

    def ceiling_down():
        backends.send_bytes = size
        record.add('ceiling_download_MiBps', mib / cpu.measure('ceiling_download', mib, lambda: asyncio.run(
            direct.download(size))))

    def tunnel_down():
        backends.send_bytes = size
        elapsed = cpu.measure('tunnel_download', mib, lambda: asyncio.run(tunnel_download(down_tunnel.port, size)),
                              down_tunnel)
        record.add('tunnel_download_1_MiBps', mib / elapsed)

    def ceiling_up_16():
        record.add('ceiling_upload_16_MiBps', mib / asyncio.run(direct.upload(size, backends, 16)))

    def tunnel_up_16():
        record.add('tunnel_upload_16_MiBps', mib / asyncio.run(tunnel_upload(up_tunnel.port, size, backends, 16)))

    def ceiling_down_16():
        backends.send_bytes = size // 16
        record.add('ceiling_download_16_MiBps', mib / asyncio.run(direct.download(size, 16)))

    def tunnel_down_16():
        backends.send_bytes = size // 16
        record.add('tunnel_download_16_MiBps', mib / asyncio.run(tunnel_download(down_tunnel.port, size, 16)))

    # Ceiling and tunnel back to back, in alternating order, so drift on a noisy machine hits both alike.
    for pair in ((ceiling_round_trips, tunnel_round_trips_step), (ceiling_up, tunnel_up), (ceiling_down, tunnel_down),
                 (ceiling_up_16, tunnel_up_16), (ceiling_down_16, tunnel_down_16)):
        for step in (reversed(pair) if swap else pair):
            step()


def warm_up(parties, backends):
    """One small transfer through every party first: each process pays its one-off costs (lazy imports, first
    TLS context use) before anything is measured, as a tunnel does once per run, not per MiB."""
    direct, (up_tunnel, down_tunnel, echo_tunnel), _ = parties
    asyncio.run(direct.upload(MIB, backends))
    backends.send_bytes = MIB
    asyncio.run(direct.download(MIB))
    asyncio.run(tunnel_upload(up_tunnel.port, MIB, backends))
    asyncio.run(tunnel_download(down_tunnel.port, MIB))
    asyncio.run(tcp_setup_samples(echo_tunnel.port, 3))
    asyncio.run(direct.setup_samples(3))
    asyncio.run(direct.round_trip_samples(10))
    tunnel_round_trips(echo_tunnel, 10)


class CpuMeter:
    """CPU per MiB of every process in a one-stream transfer: on two cores, every party's CPU shares them, so a
    transfer's rate is bounded by the sum of its parties' CPU per MiB. Recorded per step: the emulator, the
    backends, this process (the ceiling's client, or the tunnel's local client) and the tunnel."""

    def __init__(self, record, emulator, backends):
        self.record = record
        self.parties = {'emulator': emulator.cpu_s, 'backends': _process_cpu(backends.pid), 'client': _own_cpu}

    def measure(self, step, mib, transfer, tunnel=None):
        """Run ``transfer`` (returns its seconds); record ``{step}_{party}_cpu_ms_per_MiB``; return the seconds."""
        parties = dict(self.parties, **({'tunnel': lambda: tunnel.usage()['cpu_s']} if tunnel else {}))
        before = {name: read() for name, read in parties.items()}
        elapsed = transfer()
        total = 0.0
        for name, read in parties.items():
            per_mib = (read() - before[name]) * 1000 / mib
            total += per_mib
            self.record.add(f'{step}_{name}_cpu_ms_per_MiB', per_mib)
        self.record.add(f'{step}_all_cpu_ms_per_MiB', total)
        return elapsed


def _own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid):
    process = psutil.Process(pid)

    def read():
        times = process.cpu_times()
        return times.user + times.system
    return read


class EmulatorHandle:
    """The emulator process as the rounds need it: its test hooks and its CPU time (all threads, clock ticks:
    fine over hundreds of connections)."""

    def __init__(self, emulator):
        self.get = emulator.get
        self._process = psutil.Process(emulator.ready['pid'])

    def cpu_s(self):
        times = self._process.cpu_times()
        return times.user + times.system


def targets_of(figures, held, memory):
    if not figures:     # --memory-only
        rows = []
    else:
        rows = _throughput_and_latency_targets(figures, held)
    for name, step in memory['steps'].items():
        if step['connections'] > 1:
            rows.append((f'{name}_rss_growth_MiB_per_connection', step['growth_MiB_per_connection'], '<=',
                         MEMORY_BUDGET_PER_CONNECTION_MIB))
        rows.append((f'{name}_rss_after_minus_idle_MiB', step['rss_after_MiB'] - step['rss_idle_MiB'], '<=',
                     MEMORY_RETURNED_WITHIN_MIB))
    return {name: {'value': value, 'threshold': threshold, 'comparison': comparison,
                   'pass': value >= threshold if comparison == '>=' else value <= threshold}
            for name, value, comparison, threshold in rows}


def _throughput_and_latency_targets(figures, held):
    def median(name):
        return figures[name]['median']
    return [
        ('round_trip_vs_ceiling', median('tunnel_round_trip_p50_us') / median('ceiling_round_trip_p50_us'), '<=', 1.1),
        ('cpu_us_per_round_trip', median('tunnel_cpu_us_per_round_trip'), '<=', ROUND_TRIP_CPU_BUDGET_US),
        ('upload_vs_ceiling', median('tunnel_upload_1_MiBps') / median('ceiling_upload_MiBps'), '>=', 0.95),
        ('download_vs_ceiling', median('tunnel_download_1_MiBps') / median('ceiling_download_MiBps'), '>=', 0.95),
        ('upload_16_vs_ceiling', median('tunnel_upload_16_MiBps') / median('ceiling_upload_16_MiBps'), '>=', 0.95),
        ('download_16_vs_ceiling', median('tunnel_download_16_MiBps') / median('ceiling_download_16_MiBps'),
         '>=', 0.95),
        ('upload_cpu_ms_per_MiB', median('tunnel_upload_tunnel_cpu_ms_per_MiB'), '<=', 2.0),
        ('download_cpu_ms_per_MiB', median('tunnel_download_tunnel_cpu_ms_per_MiB'), '<=', 2.0),
        ('setup_vs_direct_client', median('setup_vs_direct_client'), '<=', 1.0),
        ('held_connections_echoed', held['echoed'], '>=', held['connections']),
    ]


def cpu_bound(figures):
    """The tunnel's one-stream rate as a share of the ceiling's that the CPU sums alone predict: with every
    party's CPU sharing two cores, a rate is at most 2 cores / (all parties' CPU per MiB)."""
    if 'tunnel_upload_all_cpu_ms_per_MiB' not in figures:
        return {}
    return {direction: figures[f'ceiling_{direction}_all_cpu_ms_per_MiB']['median']
            / figures[f'tunnel_{direction}_all_cpu_ms_per_MiB']['median'] for direction in ('upload', 'download')}


def report(result, json_path):
    figures, targets = result['figures'], result['targets']
    width = max(len(name) for name in list(figures) + list(targets)) + 2
    print(f"tunnel on {result['tunnel_loop']}'s event loop")
    print(f"{'figure (median of ' + str(result['repeats']) + ' rounds)':<{width}}  median     min     max")
    for name, figure in figures.items():
        print(f"{name:<{width}}  {figure['median']:7.2f} {figure['min']:7.2f} {figure['max']:7.2f}")
    held, memory = result['held'], result['memory']
    if held:
        print(f"{'RSS idle / with ' + str(held['connections']) + ' held / peak (MiB)':<{width}}  "
              f"{held['rss_idle_MiB']:.0f} / {held['rss_held_MiB']:.0f} / {held['peak_rss_MiB']:.0f}")
    idle = ', '.join(f'{direction} {rss:.1f}' for direction, rss in memory['rss_idle_MiB'].items())
    print(f"fresh tunnels' RSS idle (MiB): {idle}; before / peak / after (MiB):")
    for name, step in memory['steps'].items():
        print(f"  {name:<{width - 2}}  {step['rss_before_MiB']:.1f} / {step['rss_peak_MiB']:.1f} / "
              f"{step['rss_after_MiB']:.1f}  ({step['growth_MiB_per_connection']:.3f} MiB per connection)")
    for direction, ratio in result['cpu_bound'].items():
        print(f"{direction}: all parties' CPU per MiB, ceiling / tunnel = {ratio:.2f} (the rate ratio two cores allow)")
    for name, target in targets.items():
        verdict = 'PASS' if target['pass'] else 'FAIL'
        print(f"target {name:<{width - 7}}  {target['value']:7.2f}  {target['comparison']} {target['threshold']:<6} "
              f"{verdict}")
    write_result(result, json_path)


def write_result(result, json_path):
    """The whole result as JSON: into ``json_path``, or printed."""
    text = json.dumps(result, indent=2)
    if json_path:
        Path(json_path).write_text(text + '\n', encoding='utf-8')
    else:
        print(text)


def main():  # pylint: disable=too-many-locals
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--size-mib', type=int, default=512, help='bytes per throughput run (MiB)')
    parser.add_argument('--repeats', type=int, default=3, help='rounds; figures are the median over rounds')
    parser.add_argument('--latency-samples', type=int, default=200, help='connections per set-up figure per round')
    parser.add_argument('--latency-gap-ms', type=float, default=10.0,
                        help='pause between set-up samples (the direct client deletes untimed, between samples)')
    parser.add_argument('--held', type=int, default=256, help='concurrent idle connections held open')
    parser.add_argument('--round-trips', type=int, default=2000, help='1-byte round trips per figure per round')
    parser.add_argument('--transfer-mib', type=int, default=256, help='size of the memory figure\'s one upload')
    parser.add_argument('--memory-only', action='store_true', help='only the memory figures (no rounds)')
    parser.add_argument('--asyncio-loop', action='store_true',
                        help="run the tunnel on asyncio's own loop even where uvloop is installed")
    parser.add_argument('--json', help='write the JSON here (else print it)')
    args = parser.parse_args()
    size = args.size_mib * MIB
    uvloop = not args.asyncio_loop

    from bastion_emulator.testing.sandbox import AzCli, EmulatorProcess, az_environment
    workdir = Path(tempfile.mkdtemp(prefix='bastion-bench-'))
    emulator = EmulatorProcess(workdir / 'emulator').start()
    backends = Backends().start()
    tunnels = []
    try:
        az = AzCli(az_environment(emulator, workdir / 'az'))
        token = az('account', 'get-access-token', '--query', 'accessToken', '-o', 'json').json
        host = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json').json['dnsName']
        vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', VM)
        for vm_port, port in ((PORT_SINK, backends.sink_port), (PORT_SOURCE, backends.source_port),
                              (PORT_ECHO, backends.echo_port)):
            emulator.set_vm_endpoint(VM, vm_port, '127.0.0.1', port)
            tunnels.append(TunnelProcess(host, vm_id, vm_port, emulator.ca_bundle, token, uvloop=uvloop))
        parties = (DirectClient(host, vm_id, token, emulator.ca_bundle), tunnels, EmulatorHandle(emulator))
        record, held = Recorder(), {}
        if not args.memory_only:
            warm_up(parties, backends)
            for round_number in range(args.repeats):
                run_round(record, parties, backends, size, args.latency_samples, swap=round_number % 2 == 1,
                          gap=args.latency_gap_ms / 1000, round_trips=args.round_trips)
            echo_tunnel = tunnels[2]
            idle = echo_tunnel.usage()
            echoed, usage = asyncio.run(hold_connections(echo_tunnel, args.held))
            held = {'connections': args.held, 'echoed': echoed, 'rss_idle_MiB': idle['rss_mib'],
                    'rss_held_MiB': usage['rss_mib'], 'peak_rss_MiB': usage['peak_rss_mib']}
        tunnels += [TunnelProcess(host, vm_id, port, emulator.ca_bundle, token, uvloop=uvloop)
                    for port in (PORT_SINK, PORT_SOURCE)]
        memory = memory_figures(tunnels[-2], tunnels[-1], backends, args.transfer_mib)
    finally:
        for tunnel in tunnels:
            tunnel.stop()
        backends.stop()
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = record.figures()
    import importlib.util
    loop = 'uvloop' if uvloop and importlib.util.find_spec('uvloop') else 'asyncio'
    result = {'size_MiB': args.size_mib, 'repeats': args.repeats, 'tunnel_loop': loop,
              'latency_samples': args.latency_samples,
              'latency_gap_ms': args.latency_gap_ms,
              'figures': figures, 'held': held, 'memory': memory, 'targets': targets_of(figures, held, memory),
              'cpu_bound': cpu_bound(figures)}
    report(result, args.json)


if __name__ == '__main__':
    main()
