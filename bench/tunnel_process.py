"""The tunnel under test, in its own process: the relay engine exactly as ``az network bastion tunnel`` runs it
after its one ARM GET (TunnelServer + DataPlaneClient), plus a control line on stdin/stdout so the benchmark can
read this process's own CPU time (``getrusage``: all threads, microsecond resolution, not /proc clock ticks)
and memory at any moment, and the peak RSS over a stretch of time (``watch`` ... ``peak``: sampled every
few milliseconds by a thread that runs only in between, so it costs nothing while CPU is measured).

    python bench/tunnel_process.py ENDPOINT_HOST VM_ID VM_PORT CA_BUNDLE      (ARM token in BENCH_ARM_TOKEN)

BENCH_TUNNEL_LOG=INFO shows the engine's one line per connection (how each ended). BENCH_NO_UVLOOP=1 runs the
engine on asyncio's own loop even where uvloop is installed (what an install without uvloop runs).
"""
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mib():
    with open('/proc/self/statm', encoding='ascii') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def _usage():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {'cpu_s': usage.ru_utime + usage.ru_stime, 'rss_mib': _rss_mib(), 'peak_rss_mib': usage.ru_maxrss / 1024}


class _PeakWatch:
    """RSS sampled every ``interval`` seconds on a thread, from ``start()`` until ``stop()`` (returns the peak)."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = 0.0
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        self.peak = _rss_mib()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True, name='bench-rss')
        self._thread.start()

    def _sample(self):
        while not self._stopping.wait(self.interval):
            self.peak = max(self.peak, _rss_mib())

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        return max(self.peak, _rss_mib())


def _answer_usage_requests():
    watch = _PeakWatch()
    for line in sys.stdin:
        command = line.strip()
        if command == 'watch':
            watch.start()
            print('{}', flush=True)
        elif command == 'peak':
            print(json.dumps(dict(_usage(), watched_peak_rss_mib=watch.stop())), flush=True)
        else:
            print(json.dumps(_usage()), flush=True)


def serve(endpoint_host, vm_id, vm_port, ca_bundle):
    sys.path.insert(0, str(REPO))
    if os.environ.get('BENCH_NO_UVLOOP'):
        sys.modules['uvloop'] = None        # import uvloop now raises ImportError: relay.event_loop takes asyncio's
    from azext_bastion_native.dataplane.client import DataPlaneClient
    from azext_bastion_native.dataplane.protocol import Endpoint, Target
    from azext_bastion_native.dataplane.settings import ConnectionSettings
    from azext_bastion_native.relay.tunnel import TunnelServer, run_tunnel
    import logging
    logging.basicConfig(level=os.environ.get('BENCH_TUNNEL_LOG', 'WARNING'), format='tunnel %(levelname)s %(message)s')
    token = os.environ['BENCH_ARM_TOKEN']
    client = DataPlaneClient(Endpoint(endpoint_host), lambda: token,
                             settings=ConnectionSettings(verify=True, ca_bundle=ca_bundle))
    server = TunnelServer(client, Target(vm_id, int(vm_port)))

    def ready(_address, port):
        print(port, flush=True)
        threading.Thread(target=_answer_usage_requests, daemon=True, name='bench-usage').start()
    run_tunnel(server, on_ready=ready)


class TunnelProcess:
    """The parent's handle: ``port``, ``usage()`` -> {cpu_s, rss_mib, peak_rss_mib}, ``watch()`` then ``peak()``
    (usage plus watched_peak_rss_mib, the highest RSS since ``watch()``), ``stop()``."""

    def __init__(self, endpoint_host, vm_id, vm_port, ca_bundle, token, uvloop=True):
        env = dict(os.environ, BENCH_ARM_TOKEN=token, **({} if uvloop else {'BENCH_NO_UVLOOP': '1'}))
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, __file__, endpoint_host, vm_id, str(vm_port), ca_bundle],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def _ask(self, command):
        self.process.stdin.write(command + '\n')
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def usage(self):
        return self._ask('usage')

    def watch(self):
        self._ask('watch')

    def peak(self):
        return self._ask('peak')

    def stop(self):
        self.process.send_signal(2)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


if __name__ == '__main__':
    serve(*sys.argv[1:5])
