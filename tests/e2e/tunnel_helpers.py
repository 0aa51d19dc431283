"""Running `az network bastion tunnel` as a long-lived subprocess, and what the e2e tests check after it."""

import json
import select
import signal
import subprocess
import time

from bastion_emulator.testing.az_login import az_executable

RG, HOST = 'demo-rg', 'demo-bastion'


class RunningTunnel:
    """``az network bastion tunnel ... -o json`` (or another listening ``command``, e.g. forward) started with Popen;
    ``ready``: its JSON ready line, ``address`` and ``port`` from it when it has them."""

    def __init__(self, az_env, *args, stderr_path=None, host=HOST, command='tunnel'):
        self.stderr_path = stderr_path
        # pylint: disable-next=consider-using-with
        stderr = open(stderr_path, 'w', encoding='utf-8') if stderr_path else subprocess.DEVNULL
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [az_executable(), 'network', 'bastion', command, '-g', RG, '-n', host, '-o', 'json', *map(str, args)],
            env=az_env, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
        if stderr_path:
            stderr.close()
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ''
        if not line:
            self.stop()
            raise AssertionError(f'the tunnel never printed its ready line: {self.stderr()[-2000:]}')
        self.ready = json.loads(line)
        self.address, self.port = self.ready.get('address'), self.ready.get('port')

    def stderr(self):
        if not self.stderr_path:
            return ''
        with open(self.stderr_path, encoding='utf-8', errors='replace') as handle:
            return handle.read()

    def wait(self, timeout=20):
        return self.process.wait(timeout)

    def stop(self):
        """Ctrl+C, as a user would (so the tunnel deletes its sessions); kill only if that hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def sessions_drain(emulator, timeout=5.0):
    """True when the emulator has no live data-plane session within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        sessions = emulator.get('/_emulator/sessions').json()
        if not sessions:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
