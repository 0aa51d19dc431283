#!/usr/bin/env python
"""Tunnel benchmark (DESIGN.md section 8). One command:

    .venv/bin/python bench/run.py [--size-mib 128] [--json results.json]

Starts the emulator (subprocess) and loopback sink/source servers, logs the real ``az`` in once to get an ARM
token, then runs the relay engine (TunnelServer + DataPlaneClient, exactly what ``az network bastion tunnel``
runs after its one ARM GET) in a separate process, so that its CPU time and memory are its own. ``az`` itself
is not in the loop: its start-up and ARM GET happen once per tunnel, not per byte or per connection.

Reports a table and JSON: the emulator's own ceiling (a websockets client feeding it directly), tunnel upload
and download (1 stream; 16 streams aggregate), tunnel CPU ms per MiB each way, connection set-up p50/p99 (and
direct TCP for scale), peak RSS with 256 concurrent connections, and the DESIGN.md targets as ratios.
"""
import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)
VM = 'linux-vm'
PORT_SINK, PORT_SOURCE, PORT_ECHO = 7101, 7102, 7103


# -- the tunnel process -----------------------------------------------------------------------------
def serve_tunnel(endpoint_host, vm_id, vm_port, ca_bundle):
    """Child mode: run the engine and print its port; ARM token from BENCH_ARM_TOKEN."""
    from azext_bastion_native.dataplane.client import DataPlaneClient
    from azext_bastion_native.dataplane.protocol import Endpoint, Target
    from azext_bastion_native.dataplane.settings import ConnectionSettings
    from azext_bastion_native.relay.tunnel import TunnelServer, run_tunnel
    token = os.environ['BENCH_ARM_TOKEN']
    client = DataPlaneClient(Endpoint(endpoint_host), lambda: token,
                             settings=ConnectionSettings(verify=True, ca_bundle=ca_bundle))
    server = TunnelServer(client, Target(vm_id, int(vm_port)))
    run_tunnel(server, on_ready=lambda _a, port: print(port, flush=True))


class TunnelProcess:
    def __init__(self, endpoint_host, vm_id, vm_port, ca_bundle, token):
        env = dict(os.environ, BENCH_ARM_TOKEN=token)
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, __file__, '--serve-tunnel', endpoint_host, vm_id, str(vm_port), ca_bundle],
            env=env, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def cpu_seconds(self):
        fields = Path(f'/proc/{self.process.pid}/stat').read_text().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def rss_mib(self):
        status = Path(f'/proc/{self.process.pid}/status').read_text()
        values = dict(line.split(':', 1) for line in status.splitlines() if ':' in line)
        return int(values['VmRSS'].split()[0]) / 1024, int(values['VmHWM'].split()[0]) / 1024

    def stop(self):
        self.process.send_signal(2)
        self.process.wait(30)


# -- a sink that counts as it goes (the emulator's backends record a connection only when it ends) ---
class CountingSink:
    def __init__(self):
        import socket
        import threading
        self.received = 0
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        import threading
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        buffer = bytearray(4 * MIB)
        with conn:
            while True:
                count = conn.recv_into(buffer)
                if not count:
                    return
                self.received += count

    def stop(self):
        self._listener.close()


# -- load generators -------------------------------------------------------------------------------
async def upload(port, size, sink, streams=1):
    """Send ``size`` bytes (split over ``streams``) into the tunnel; done when the sink has them all."""
    loop = asyncio.get_running_loop()
    before = sink.received

    async def one(share):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        sent = 0
        while sent < share:
            chunk = BLOCK[:min(MIB, share - sent)]
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        return writer
    started = loop.time()
    writers = await asyncio.gather(*(one(size // streams) for _ in range(streams)))
    while sink.received - before < (size // streams) * streams:
        await asyncio.sleep(0.002)
    elapsed = loop.time() - started
    for writer in writers:
        writer.close()
    return elapsed


async def download(port, size, streams=1):
    loop = asyncio.get_running_loop()

    async def one():
        reader, writer = await asyncio.open_connection('127.0.0.1', port, limit=4 * MIB)
        got = 0
        while got < size // streams:
            data = await reader.read(4 * MIB)
            if not data:
                break
            got += len(data)
        writer.close()
        return got
    started = loop.time()
    got = await asyncio.gather(*(one() for _ in range(streams)))
    return loop.time() - started, sum(got)


async def setup_latency(port, count):
    """Connect, send one byte to the echo target, wait for it back: the user's wait for a usable connection."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(b'x')
        await reader.readexactly(1)
        samples.append((time.perf_counter() - started) * 1000)
        writer.close()
        await writer.wait_closed()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def hold_connections(port, count):
    pairs = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(b'x')
        pairs.append((reader, writer))
    await asyncio.gather(*(reader.readexactly(1) for reader, _ in pairs))
    return pairs


async def ceiling(endpoint_host, vm_id, token, ca_bundle, size, sink):
    """The emulator's own ceiling: a websockets client minting and feeding it directly (no tunnel)."""
    import requests
    from websockets.asyncio.client import connect
    context = ssl.create_default_context(cafile=ca_bundle)
    results = {}
    for direction, port in (('upload', PORT_SINK), ('download', PORT_SOURCE)):
        answer = requests.post(f'https://{endpoint_host}/api/tokens', verify=ca_bundle, timeout=10, data={
            'resourceId': vm_id, 'protocol': 'tcptunnel', 'workloadHostPort': str(port), 'aztoken': token,
            'token': ''}).json()
        url = f"wss://{endpoint_host}/webtunnelv2/{answer['websocketToken']}?X-Node-Id={answer['nodeId']}"
        async with connect(url, ssl=context, compression=None, max_size=None) as websocket:
            loop = asyncio.get_running_loop()
            started = loop.time()
            if direction == 'upload':
                before = sink.received
                for offset in range(0, size, 64 * 1024):
                    await websocket.send(BLOCK[offset % MIB: offset % MIB + 64 * 1024])
                while sink.received - before < size:
                    await asyncio.sleep(0.002)
            else:
                got = 0
                while got < size:
                    got += len(await websocket.recv())
            results[direction] = size / MIB / (loop.time() - started)
        requests.delete(f"https://{endpoint_host}/api/tokens/{answer['authToken']}", verify=ca_bundle, timeout=10,
                        headers={'X-Node-Id': answer['nodeId']})
    return results


def main():  # pylint: disable=too-many-locals
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--size-mib', type=int, default=128, help='bytes per throughput run (MiB)')
    parser.add_argument('--latency-samples', type=int, default=200)
    parser.add_argument('--held', type=int, default=256, help='concurrent connections for the memory figure')
    parser.add_argument('--json', help='also write the JSON here')
    args = parser.parse_args()
    size = args.size_mib * MIB

    from bastion_emulator.dataplane_backends import start_echo_server, start_sink_source
    from bastion_emulator.sandbox import AzCli, EmulatorProcess, az_environment
    workdir = Path(tempfile.mkdtemp(prefix='bastion-bench-'))
    emulator = EmulatorProcess(workdir / 'emulator').start()
    servers = [CountingSink(), start_sink_source(send_bytes=size), start_echo_server()]
    tunnels = []
    try:
        az = AzCli(az_environment(emulator, workdir / 'az'))
        token = az('account', 'get-access-token', '--query', 'accessToken', '-o', 'json').json
        host = az('network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json').json['dnsName']
        vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', VM)
        sink, source, echo = servers
        for port, server in ((PORT_SINK, sink), (PORT_SOURCE, source), (PORT_ECHO, echo)):
            emulator.set_vm_endpoint(VM, port, server.host, server.port)

        def tunnel_to(port):
            tunnels.append(TunnelProcess(host, vm_id, port, emulator.ca_bundle, token))
            return tunnels[-1]
        up_tunnel, down_tunnel, echo_tunnel = tunnel_to(PORT_SINK), tunnel_to(PORT_SOURCE), tunnel_to(PORT_ECHO)
        figures = {}
        figures['ceiling_MBps'] = asyncio.run(ceiling(host, vm_id, token, emulator.ca_bundle, size, sink))

        cpu = up_tunnel.cpu_seconds()
        seconds = asyncio.run(upload(up_tunnel.port, size, sink))
        figures['upload_1_MBps'] = size / MIB / seconds
        figures['upload_cpu_ms_per_MiB'] = (up_tunnel.cpu_seconds() - cpu) * 1000 / (size / MIB)
        figures['upload_16_MBps'] = size / MIB / asyncio.run(upload(up_tunnel.port, size, sink, streams=16))

        cpu = down_tunnel.cpu_seconds()
        seconds, got = asyncio.run(download(down_tunnel.port, size))
        assert got == size, f'download got {got} of {size} bytes'
        figures['download_1_MBps'] = size / MIB / seconds
        figures['download_cpu_ms_per_MiB'] = (down_tunnel.cpu_seconds() - cpu) * 1000 / (size / MIB)
        source_16 = start_sink_source(send_bytes=size // 16)
        servers.append(source_16)
        emulator.set_vm_endpoint(VM, PORT_SOURCE, source_16.host, source_16.port)
        seconds, got = asyncio.run(download(down_tunnel.port, size, streams=16))
        figures['download_16_MBps'] = got / MIB / seconds

        p50, p99 = asyncio.run(setup_latency(echo_tunnel.port, args.latency_samples))
        direct50, _ = asyncio.run(setup_latency(echo.port, args.latency_samples))
        figures.update(setup_p50_ms=p50, setup_p99_ms=p99, direct_tcp_p50_ms=direct50)

        async def held():
            pairs = await hold_connections(echo_tunnel.port, args.held)
            rss, peak = echo_tunnel.rss_mib()
            for _, writer in pairs:
                writer.close()
            return rss, peak
        rss_before = echo_tunnel.rss_mib()[0]
        rss, peak = asyncio.run(held())
        figures.update(rss_idle_MiB=rss_before, rss_held_MiB=rss, peak_rss_MiB=peak, held_connections=args.held)
    finally:
        for tunnel in tunnels:
            tunnel.stop()
        for server in servers:
            server.stop()
        emulator.stop()
    report(figures, args.json)


def report(figures, json_path):
    ceiling_up, ceiling_down = figures['ceiling_MBps']['upload'], figures['ceiling_MBps']['download']
    targets = {
        'upload_vs_ceiling (>= 0.9)': figures['upload_1_MBps'] / ceiling_up,
        'download_vs_ceiling (>= 0.9)': figures['download_1_MBps'] / ceiling_down,
        'upload_cpu_ms_per_MiB (<= 2)': figures['upload_cpu_ms_per_MiB'],
        'download_cpu_ms_per_MiB (<= 2)': figures['download_cpu_ms_per_MiB'],
        'setup_p50_ms (<= 4)': figures['setup_p50_ms'],
    }
    rows = [('emulator ceiling upload / download (MiB/s)', f'{ceiling_up:.0f} / {ceiling_down:.0f}'),
            ('tunnel upload, 1 stream (MiB/s)', f"{figures['upload_1_MBps']:.0f}"),
            ('tunnel upload, 16 streams aggregate (MiB/s)', f"{figures['upload_16_MBps']:.0f}"),
            ('tunnel download, 1 stream (MiB/s)', f"{figures['download_1_MBps']:.0f}"),
            ('tunnel download, 16 streams aggregate (MiB/s)', f"{figures['download_16_MBps']:.0f}"),
            ('tunnel CPU per MiB up / down (ms)',
             f"{figures['upload_cpu_ms_per_MiB']:.2f} / {figures['download_cpu_ms_per_MiB']:.2f}"),
            ('set-up p50 / p99 (ms; direct TCP p50)',
             f"{figures['setup_p50_ms']:.1f} / {figures['setup_p99_ms']:.1f} ({figures['direct_tcp_p50_ms']:.2f})"),
            (f"RSS idle / with {figures['held_connections']} connections / peak (MiB)",
             f"{figures['rss_idle_MiB']:.0f} / {figures['rss_held_MiB']:.0f} / {figures['peak_rss_MiB']:.0f}")]
    rows += [(f'target: {name}', f'{value:.2f}') for name, value in targets.items()]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f'{name:<{width}}  {value}')
    figures['targets'] = targets
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + '\n', encoding='utf-8')


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--serve-tunnel':
        serve_tunnel(*sys.argv[2:6])
    else:
        main()
